"""Local (Docker-free) bundling of the Lambda steps.

A bundle is: the step's pip requirements installed for Lambda's platform (Python 3.12 on
arm64, binary wheels only), then `lambdas/<step>/` copied as `<step>/` and
`lambdas/enrich_shared/` as `enrich_shared/`. Installed dependencies are cached under
`.build/deps/<step>-<hash of requirements + platform>/` and pip's downloads under
`.build/pip-cache/`, so bundling again after a code change is a directory copy.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
SHARED_PACKAGE = "enrich_shared"
BUILD_DIR = REPO_ROOT / ".build"
PYTHON_VERSION = "3.12"
#: Both tags are needed: snowflake-connector-python 5.x ships manylinux_2_28 wheels only
#: for some releases, other dependencies manylinux2014 only.
PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "tests")


def pip_command(target: Path, requirements: Path, architecture: str) -> list[str]:
    """The pip invocation that installs `requirements` for Lambda into `target`."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(target),
        "--requirement",
        str(requirements),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--cache-dir",
        str(BUILD_DIR / "pip-cache"),
    ]
    for platform in PLATFORMS[architecture]:
        cmd += ["--platform", platform]
    if sys.version_info[:2] != (3, 12):
        # Byte code compiled by another Python would never be used by Lambda's 3.12.
        cmd.append("--no-compile")
    return cmd


def install_dependencies(step: str, architecture: str = "arm64") -> Path | None:
    """Install (or reuse from the cache) the step's requirements; None when it has none."""
    requirements = LAMBDAS_DIR / step / "requirements.txt"
    if not requirements.is_file() or not _has_requirements(requirements):
        return None
    key = hashlib.sha256(
        requirements.read_bytes()
        + "|".join([architecture, PYTHON_VERSION, *PLATFORMS[architecture]]).encode()
    ).hexdigest()[:16]
    cached = BUILD_DIR / "deps" / f"{step}-{key}"
    if cached.is_dir():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Install beside the cache and rename: a concurrent or interrupted bundling never
    # leaves a half-filled cache directory behind.
    work = Path(tempfile.mkdtemp(prefix=f"{step}-", dir=cached.parent))
    result = subprocess.run(
        pip_command(work, requirements, architecture), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(
            f"pip could not install {requirements.relative_to(REPO_ROOT)} for Lambda "
            f"(Python {PYTHON_VERSION}, {architecture}, binary wheels only):\n{result.stderr}\n"
            "Fix: pin versions that publish manylinux wheels for that platform."
        )
    try:
        work.rename(cached)
    except OSError:  # another process finished first; theirs is as good as ours
        shutil.rmtree(work, ignore_errors=True)
    return cached


def _has_requirements(requirements: Path) -> bool:
    lines = requirements.read_text().splitlines()
    return any(line.strip() and not line.strip().startswith("#") for line in lines)


def bundle_step(step: str, output_dir: Path, architecture: str = "arm64") -> None:
    """Write the complete bundle of `step` into `output_dir` (which may already exist)."""
    source = LAMBDAS_DIR / step
    if not (source / "handler.py").is_file():
        raise RuntimeError(
            f"{source.relative_to(REPO_ROOT)}/handler.py is missing: the stack points Lambda "
            f"at {step}.handler.lambda_handler"
        )
    deps = install_dependencies(step, architecture)
    if deps is not None:
        top = Path(deps)
        left_out = RUNTIME_PROVIDED - pinned_packages(source / "requirements.txt")

        def ignore(directory: str, names: list[str]) -> set[str]:
            skipped = {n for n in names if n == "__pycache__"}
            at_top = Path(directory) == top
            return skipped | (_top_level_ignored(names, left_out) if at_top else set())

        shutil.copytree(deps, output_dir, dirs_exist_ok=True, ignore=ignore)
    shutil.copytree(source, output_dir / step, dirs_exist_ok=True, ignore=_IGNORE)
    shutil.copytree(
        LAMBDAS_DIR / SHARED_PACKAGE, output_dir / SHARED_PACKAGE, dirs_exist_ok=True,
        ignore=_IGNORE,
    )  # fmt: skip


#: The Lambda Python runtime ships these (the step contract: requirements list only what a
#: step imports beyond boto3). Transitive copies (aws-xray-sdk and the Snowflake connector
#: pull in botocore) would add ~25 MB to every bundle and shadow the runtime's own. A step
#: that PINS one of them in its requirements.txt gets its pinned copy bundled instead: the
#: runtime's boto3 varies by region and date, and QueryIds' run claim needs S3 IfNoneMatch
#: (in botocore's S3 model since the 2024-08-20 update). Lambda puts the bundle
#: (/var/task) before the runtime's libraries on sys.path (https://docs.aws.amazon.com/lambda/latest/dg/python-package.html).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==")


def pinned_packages(requirements: Path) -> set[str]:
    """Normalized names of the packages `requirements` pins exactly (`name==version`)."""
    if not requirements.is_file():
        return set()
    names = set()
    for line in requirements.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            names.add(_normalize(match.group(1)))
    return names


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _top_level_ignored(names: list[str], left_out: frozenset[str] | set[str]) -> set[str]:
    """Top-level entries of a pip target dir that must not go into the bundle."""
    ignored = set()
    for name in names:
        package = name.split("-")[0] if name.endswith(".dist-info") else name
        if _normalize(package) in left_out or name == "bin":
            ignored.add(name)
    return ignored


@jsii.implements(ILocalBundling)
class LocalPythonBundler:
    """ILocalBundling for one step: CDK calls `try_bundle` instead of running Docker."""

    def __init__(self, step: str, architecture: str = "arm64") -> None:
        self.step = step
        self.architecture = architecture

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        """Bundle into `output_dir`; True tells CDK no Docker fallback is needed."""
        bundle_step(self.step, Path(output_dir), self.architecture)
        return True


def step_code(step: str, architecture: str = "arm64") -> lambda_.Code:
    """Lambda code for `step`, bundled locally (Docker is only named, never run)."""
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR / step),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Never pulled: LocalPythonBundler always succeeds or raises.
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{PYTHON_VERSION}"),
            local=LocalPythonBundler(step, architecture),
            environment={"STEP": step},
        ),
    )


def bundle_size(path: Path) -> int:
    """Total size in bytes of the files below `path` (an unzipped bundle)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


__all__ = [
    "LocalPythonBundler",
    "bundle_size",
    "bundle_step",
    "install_dependencies",
    "pinned_packages",
    "pip_command",
    "step_code",
]
