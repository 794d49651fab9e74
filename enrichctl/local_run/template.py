"""Get the synthesized CloudFormation template: reuse `cdk.out`, a local cache, or synth.

Synth costs 10-20 s (jsii starts node), so the result is cached under
`.build/local-synth/<hash>.json`, keyed on the content of everything that shapes the template
(`app.py`, `cdk.json`, `stacks/**/*.py`) and the context overrides. An up-to-date
`cdk.out/*.template.json` (newer than those sources) is reused when there are no overrides.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from enrichctl.paths import REPO_ROOT, use_repo_code

CACHE_DIR = REPO_ROOT / ".build" / "local-synth"
#: jsii prints a banner on stderr for Node versions it considers old; it is noise here.
JSII_QUIET = {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20,22",
    # Deprecation notices of CDK APIs belong to `cdk synth`, not to a local run's screen.
    "JSII_DEPRECATED": "quiet",
}


class SynthError(Exception):
    """The CDK app could not be synthesized (bad config, missing app)."""


def _sources(root: Path) -> list[Path]:
    files = [root / "app.py", root / "cdk.json"]
    files += sorted((root / "stacks").rglob("*.py"))
    return [f for f in files if f.exists()]


def sources_hash(root: Path = REPO_ROOT, overrides: dict[str, Any] | None = None) -> str:
    """Hash of the template's inputs (file contents + overrides)."""
    digest = hashlib.sha256()
    for path in _sources(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps(overrides or {}, sort_keys=True).encode())
    for package in ("aws-cdk-lib", "cdk-nag"):  # a CDK upgrade changes the template too
        with contextlib.suppress(metadata.PackageNotFoundError):
            digest.update(f"{package}=={metadata.version(package)}".encode())
    return digest.hexdigest()[:16]


def _pipeline_template_in(cdk_out: Path) -> Path | None:
    for path in sorted(cdk_out.glob("*.template.json")):
        try:
            resources = json.loads(path.read_text()).get("Resources", {})
        except (OSError, json.JSONDecodeError):
            continue
        if any(r.get("Type") == "AWS::StepFunctions::StateMachine" for r in resources.values()):
            return path
    return None


def load_template(
    context_overrides: dict[str, Any] | None = None,
    *,
    root: Path = REPO_ROOT,
    use_cache: bool = True,
) -> tuple[dict[str, Any], str]:
    """Return (template, where it came from: "cdk.out", "cache" or "synth")."""
    sources = _sources(root)
    if not context_overrides and use_cache:
        cdk_out = _pipeline_template_in(root / "cdk.out")
        newest_source = max((p.stat().st_mtime for p in sources), default=0.0)
        if cdk_out is not None and cdk_out.stat().st_mtime > newest_source:
            return json.loads(cdk_out.read_text()), f"cdk.out ({cdk_out.name})"
    cache = CACHE_DIR / f"{sources_hash(root, context_overrides)}.json"
    if use_cache and cache.exists():
        return json.loads(cache.read_text()), "cache"
    template = synth(context_overrides)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(template))
    tmp.replace(cache)  # atomic: parallel test workers may write the same entry
    _prune(cache.parent)
    return template, "synth"


def _prune(directory: Path, keep: int = 12) -> None:
    """Keep the newest `keep` cached templates (every edit of stacks/ adds one)."""
    entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        with contextlib.suppress(OSError):
            stale.unlink()


def synth(context_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Synthesize the pipeline stack in-process through `stacks.synth.synth_template`."""
    for key, value in JSII_QUIET.items():
        os.environ.setdefault(key, value)
    use_repo_code()  # the CDK app lives beside the package
    try:
        from stacks.synth import synth_template
    except ImportError as exc:
        raise SynthError(
            f"cannot import stacks.synth.synth_template ({exc}); the CDK app is not in place"
        ) from exc
    try:
        return synth_template(context_overrides=context_overrides, bundle=False)
    except Exception as exc:
        # Config errors carry the fix in their message; keep it, drop the jsii traceback.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SynthError(f"cdk synth failed: {first}") from exc
