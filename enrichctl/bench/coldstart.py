"""Cold start: each handler's import time from its BUNDLE, and the bundle's size.

Import time is what Lambda's init phase spends on our code and its libraries before the
first event (the runtime's own start is not ours to change). Each step is bundled by
stacks/bundling.py (for this machine's architecture, so the native parts load) and its
handler imported from the bundle directory, as from /var/task: by a Python of the runtime's
version, in a fresh interpreter, with Lambda's environment variables, median of `repeat`.
Measured twice: as bundled (with byte code) and with the byte code removed (what every cold
start paid before the bundles carried it; Lambda's /var/task is read-only, so nothing is
cached between cold starts). This machine is not Lambda's arm64: compare the figures with
each other.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HANDLERS = {
    "query_ids": "query_ids.handler",
    "build_url": "build_url.handler",
    "invoke_enrich": "invoke_enrich.handler",
    "count_failed": "count_failed.handler",
    "load_results": "load_results.handler",
}
#: What Lambda sets and the handlers read at import (Powertools, the X-Ray SDK). Without
#: LAMBDA_TASK_ROOT the X-Ray SDK takes its off-Lambda path and builds two botocore X-Ray
#: clients at import (its centralized sampler), which Lambda never does: that alone made
#: the imports look ~0.1-0.2 s slower than they are.
IMPORT_ENV = {
    "POWERTOOLS_SERVICE_NAME": "imdb-enrichment",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
}
#: CPU (process) and wall seconds of the import alone, after the interpreter's own start.
_TIMER = (
    "import time, importlib, sys; c = time.process_time(); t = time.perf_counter(); "
    "importlib.import_module(sys.argv[1]); "
    "print(time.process_time() - c, time.perf_counter() - t)"
)


def host_architecture() -> str:
    """This machine's architecture in stacks/bundling.py's terms."""
    return "arm64" if platform.machine().lower() in {"aarch64", "arm64"} else "x86_64"


def runtime_sdk_dir() -> Path:
    """Stand-in for Lambda's /var/runtime: boto3 and friends at QueryIds' pins, compiled.

    Most bundles leave the SDK to the runtime, so the import needs one beside the bundle.
    """
    from stacks.bundling import (
        BUILD_DIR,
        LAMBDAS_DIR,
        RUNTIME_PROVIDED,
        _normalize,
        install_requirements,
    )

    pins = [
        line.strip()
        for line in (LAMBDAS_DIR / "query_ids" / "requirements.txt").read_text().splitlines()
        if _normalize(line.split("==")[0].strip()) in RUNTIME_PROVIDED and "==" in line
    ]
    # Kept beside the caches (they are keyed by its content) so pip errors can name it.
    requirements = BUILD_DIR / "bench-runtime-requirements.txt"
    requirements.parent.mkdir(parents=True, exist_ok=True)
    requirements.write_text("\n".join(pins) + "\n")
    return install_requirements(
        requirements, "bench-runtime", host_architecture(), shown_as="/var/runtime"
    )


def _env(bundle: Path, sdk: Path) -> dict[str, str]:
    env = {**os.environ, **IMPORT_ENV, "LAMBDA_TASK_ROOT": str(bundle)}
    # As on Lambda: the bundle first, then the runtime's SDK; nothing of the repo's.
    env["PYTHONPATH"] = os.pathsep.join([str(bundle), str(sdk)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # /var/task is read-only
    return env


def import_time_s(
    python: str, bundle: Path, sdk: Path, module: str, repeat: int = 5
) -> dict[str, float]:
    """Median CPU and wall seconds to import `module` from `bundle` in fresh interpreters."""
    cpu, wall = [], []
    for _ in range(repeat):
        done = subprocess.run(
            [python, "-c", _TIMER, module], capture_output=True, text=True,
            env=_env(bundle, sdk), cwd=bundle, check=True,
        )  # fmt: skip
        c, w = done.stdout.strip().splitlines()[-1].split()
        cpu.append(float(c))
        wall.append(float(w))
    return {"cpu_s": statistics.median(cpu), "wall_s": statistics.median(wall)}


def heaviest_imports(
    python: str, bundle: Path, sdk: Path, module: str, top: int = 8
) -> list[tuple[str, float]]:
    """The top-level packages that cost the most: `python -X importtime`'s own time of
    each module, summed per top-level package (so a library counts once, wherever it is
    imported from in the handler's chain)."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, env=_env(bundle, sdk), cwd=bundle, check=True,
    )  # fmt: skip
    costs: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)", line)
        if match:
            root = match.group(2).split(".")[0]
            costs[root] = costs.get(root, 0.0) + int(match.group(1)) / 1e6
    return sorted(costs.items(), key=lambda item: -item[1])[:top]


def _without_bytecode(bundle: Path, into: Path) -> Path:
    shutil.copytree(bundle, into, ignore=shutil.ignore_patterns("__pycache__"))
    return into


def import_times(repeat: int = 5) -> dict[str, Any]:
    """Per handler, imported from its bundle: median wall (`median_s`) and CPU seconds, the
    same without byte code, and the heaviest packages. A step that cannot be measured (no
    Python 3.12, no pip index) is left out with a line on stderr."""
    from stacks.bundling import PYTHON_VERSION, bundle_step, runtime_python

    python = runtime_python()
    if python is None:  # runtime_python() has printed why and the fix
        return {}
    sdk = runtime_sdk_dir()
    out: dict[str, Any] = {}
    for step, module in HANDLERS.items():
        work = Path(tempfile.mkdtemp(prefix=f"bench-import-{step}-"))
        try:
            bundle = work / "task"
            bundle_step(step, bundle, host_architecture())
            with_pyc = import_time_s(python.executable, bundle, sdk, module, repeat)
            bare = _without_bytecode(bundle, work / "no-pyc")
            without = import_time_s(python.executable, bare, sdk, module, repeat)
            out[step] = {
                "median_s": with_pyc["wall_s"],
                "cpu_s": with_pyc["cpu_s"],
                "no_bytecode_wall_s": without["wall_s"],
                "no_bytecode_cpu_s": without["cpu_s"],
                "heaviest": heaviest_imports(python.executable, bundle, sdk, module),
                "python": PYTHON_VERSION,
                "architecture": host_architecture(),
            }
        except Exception as exc:  # no network for pip: say so, keep the rest
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            print(f"cold start of {step} not measured: {reason}", file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


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
