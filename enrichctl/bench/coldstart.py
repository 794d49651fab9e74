"""Cold start: each handler's import time in a fresh interpreter, and its bundle's size.

Import time is what Lambda's init phase spends on our code and its libraries before the
first event (the runtime's own start is not ours to change). Measured here on this
machine's Python, not Lambda's 3.12 on arm64: compare the figures with each other.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLERS = {
    "query_ids": "query_ids.handler",
    "build_url": "build_url.handler",
    "invoke_enrich": "invoke_enrich.handler",
}
#: What Lambda sets and the handlers read at import (Powertools, the X-Ray SDK). Without
#: LAMBDA_TASK_ROOT the X-Ray SDK takes its off-Lambda path and builds two botocore X-Ray
#: clients at import (its centralized sampler), which Lambda never does: that alone made
#: the imports look ~0.1-0.2 s slower than they are.
IMPORT_ENV = {
    "POWERTOOLS_SERVICE_NAME": "imdb-enrichment",
    "POWERTOOLS_METRICS_NAMESPACE": "ImdbEnrichment",
    "AWS_DEFAULT_REGION": "us-east-1",
    "LAMBDA_TASK_ROOT": str(REPO_ROOT / "lambdas"),
    "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
}
_TIMER = (
    "import time, importlib, sys; t = time.perf_counter(); importlib.import_module(sys.argv[1]); "
    "print(time.perf_counter() - t)"
)


def _env() -> dict[str, str]:
    env = {**os.environ, **IMPORT_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "lambdas"), env.get("PYTHONPATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def import_time_s(module: str, repeat: int = 5) -> float:
    """Median seconds to import `module` in a fresh interpreter (byte code already cached)."""
    samples = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", _TIMER, module],
            capture_output=True, text=True, env=_env(), check=True,
        )  # fmt: skip
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def heaviest_imports(module: str, top: int = 8) -> list[tuple[str, float]]:
    """The top-level packages that cost the most (cumulative, `python -X importtime`)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, env=_env(), check=True,
    )  # fmt: skip
    costs: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if not match:
            continue
        cumulative, indent, name = int(match.group(1)), match.group(2), match.group(3)
        if len(indent) <= 1:  # imported directly by the handler's import chain
            root = name.split(".")[0]
            costs[root] = costs.get(root, 0.0) + cumulative / 1e6
    return sorted(costs.items(), key=lambda item: -item[1])[:top]


def import_times(repeat: int = 5) -> dict[str, Any]:
    """Per handler: median import seconds and its heaviest packages."""
    return {
        step: {"median_s": import_time_s(module, repeat), "heaviest": heaviest_imports(module)}
        for step, module in HANDLERS.items()
    }


def bundle_sizes() -> dict[str, Any]:
    """Unzipped size (MB) of each function's bundle, built by stacks/bundling.py."""
    from stacks.bundling import bundle_size, bundle_step

    sizes: dict[str, Any] = {}
    for step in HANDLERS:
        target = Path(tempfile.mkdtemp(prefix=f"bench-bundle-{step}-"))
        try:
            bundle_step(step, target)
            top = sorted(
                (
                    (p.name, bundle_size(p) if p.is_dir() else p.stat().st_size)
                    for p in target.iterdir()
                ),
                key=lambda item: -item[1],
            )[:5]
            sizes[step] = {
                "mb": bundle_size(target) / 1e6,
                "largest": [(name, size / 1e6) for name, size in top],
            }
        except Exception as exc:  # no network for pip: say so, keep the rest
            sizes[step] = {"mb": None, "error": str(exc).splitlines()[0][:300]}
        finally:
            shutil.rmtree(target, ignore_errors=True)
    return sizes
