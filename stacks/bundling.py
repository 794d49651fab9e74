"""Local (Docker-free) bundling of the Lambda steps.

A bundle is: the step's pip requirements installed for Lambda's platform (Python 3.12 on
arm64, binary wheels only), then `lambdas/<step>/` copied as `<step>/` and
`lambdas/enrich_shared/` as `enrich_shared/`. Installed dependencies are cached under
`.build/deps/<step>-<hash of requirements + platform + byte code>/` and pip's downloads
under `.build/pip-cache/`, so bundling again after a code change is a directory copy.

Every bundle carries byte code compiled by a Python of the runtime's version (see
`runtime_python`): Lambda's /var/task is read-only, so without it every module is compiled
again at every cold start (measured: InvokeEnrich's packages import in 0.73 s of CPU
without byte code, 0.46 s with it).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
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
    # pip's byte code is timestamp-checked (useless once CDK zips the files with other
    # mtimes) and, from any Python but 3.12, never read by Lambda: `compile_tree` writes it.
    cmd.append("--no-compile")
    return cmd


@dataclass(frozen=True)
class RuntimePython:
    """A local interpreter of Lambda's Python version, used to write the bundles' byte code."""

    executable: str
    magic: str  # importlib.util.MAGIC_NUMBER, hex: the .pyc header Lambda's Python accepts


_PROBE = (
    "import sys, importlib.util; "
    "print('%d.%d' % sys.version_info[:2], importlib.util.MAGIC_NUMBER.hex())"
)


def _python_candidates() -> list[str]:
    """Where a Python of the runtime's version may be: this one, PATH, pyenv's versions."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found = [sys.executable, shutil.which(f"python{PYTHON_VERSION}")]
    found += sorted(
        glob.glob(f"{pyenv_root}/versions/{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}")
    )
    return [c for c in dict.fromkeys(found) if c]


@functools.cache
def runtime_python() -> RuntimePython | None:
    """The first candidate that really runs as Python 3.12 (a pyenv shim may not), or None."""
    for candidate in _python_candidates():
        try:
            probe = subprocess.run(
                [candidate, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
            )
        except OSError:
            continue
        version, _, magic = probe.stdout.strip().partition(" ")
        if probe.returncode == 0 and version == PYTHON_VERSION and magic:
            return RuntimePython(candidate, magic)
    print(
        f"WARNING: no Python {PYTHON_VERSION} found (PATH, pyenv): the Lambda bundles carry no "
        "byte code, so every cold start compiles every module (~0.3 s more per cold start). "
        f"Fix: install Python {PYTHON_VERSION} (python{PYTHON_VERSION} on PATH or via pyenv) "
        "and synth again.",
        file=sys.stderr,
    )
    return None


def bytecode_tag() -> str:
    """Part of the dependency cache key: a cache built without (or with other) byte code
    is rebuilt once the runtime's Python is found."""
    python = runtime_python()
    return f"pyc-{python.magic}" if python else "no-pyc"


def compile_tree(directory: Path, shown_as: str, *, strict: bool = True) -> bool:
    """Write unchecked-hash byte code for every module below `directory`.

    `shown_as` is the directory's path inside Lambda (/var/task/...): the file names in the
    byte code, hence in tracebacks, are Lambda's, and the bytes do not depend on where the
    bundle was built (the asset hash stays stable). Unchecked-hash byte code stays valid
    whatever mtimes the zip gives the sources; a fixed hash seed makes set constants
    marshal in the same order every time. Returns False when there is no runtime Python.
    """
    python = runtime_python()
    if python is None:
        return False
    result = subprocess.run(
        [python.executable, "-m", "compileall", "-q", "-j0", "--invalidation-mode",
         "unchecked-hash", "-d", shown_as, str(directory)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    if result.returncode != 0 and strict:
        raise RuntimeError(
            f"Python {PYTHON_VERSION} could not compile {directory}:\n"
            f"{result.stdout}{result.stderr}\nFix: the code must be valid Python {PYTHON_VERSION}."
        )
    # Third-party packages may carry files no Python 3.12 compiles (never imported, e.g.
    # Python 2 examples); pip skips those too, and so does this.
    return True


def install_dependencies(step: str, architecture: str = "arm64") -> Path | None:
    """Install (or reuse from the cache) the step's requirements; None when it has none."""
    requirements = LAMBDAS_DIR / step / "requirements.txt"
    if not requirements.is_file() or not _has_requirements(requirements):
        return None
    return install_requirements(requirements, step, architecture)


def install_requirements(
    requirements: Path, name: str, architecture: str = "arm64", shown_as: str = "/var/task"
) -> Path:
    """Install (or reuse) `requirements` for Lambda in `.build/deps/<name>-<hash>/`, with
    byte code naming `shown_as` (where Lambda finds them). `name` is one per use: its
    cache folders hold byte code for one `shown_as`."""
    key = hashlib.sha256(
        requirements.read_bytes()
        + "|".join(
            [architecture, PYTHON_VERSION, *PLATFORMS[architecture], bytecode_tag()]
        ).encode()
    ).hexdigest()[:16]
    cached = BUILD_DIR / "deps" / f"{name}-{key}"
    if cached.is_dir():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Install beside the cache and rename: a concurrent or interrupted bundling never
    # leaves a half-filled cache directory behind.
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=cached.parent))
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
    compile_tree(work, shown_as, strict=False)
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
            at_top = Path(directory) == top
            return _top_level_ignored(names, left_out) if at_top else set()

        shutil.copytree(deps, output_dir, dirs_exist_ok=True, ignore=ignore)
    shutil.copytree(source, output_dir / step, dirs_exist_ok=True, ignore=_IGNORE)
    shutil.copytree(
        LAMBDAS_DIR / SHARED_PACKAGE, output_dir / SHARED_PACKAGE, dirs_exist_ok=True,
        ignore=_IGNORE,
    )  # fmt: skip
    # The copies above leave the host's own __pycache__ behind (another version, timestamp
    # checked); Lambda gets byte code of its own Python.
    for package in (step, SHARED_PACKAGE):
        compile_tree(output_dir / package, f"/var/task/{package}")


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
    "RuntimePython",
    "bundle_size",
    "bundle_step",
    "bytecode_tag",
    "compile_tree",
    "install_dependencies",
    "install_requirements",
    "pinned_packages",
    "pip_command",
    "runtime_python",
    "step_code",
]
