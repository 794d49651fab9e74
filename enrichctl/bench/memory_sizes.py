"""Each function's peak memory on realistic work, and the memory size that follows from it.

    python -m enrichctl.bench.memory_sizes [--ids 100000,1000000] [--load-ids 100000]
                                           [--output bench-results/memory.json]

For each step it measures, in fresh processes, at each size of `--ids` (the largest work wins):

- `import_mb`: peak RSS of a fresh interpreter that imported the step's handler module (the
  interpreter, our code and its libraries: what a Lambda sandbox holds before the first event);
- `work_mb`: what one invocation on a night of `--ids` IDs adds to the process's peak RSS
  (VmHWM reset just before the call; see `memory_probe`). QueryIds + BuildUrls run through
  `memory_probe` against the embedded Snowflake seeded with that many rows, LoadResults
  through `load_probe` (COPY + MERGEs of ceil(ids / 70) stored answers) at `--load-ids`
  only (fakesnow's COPY of 14,286 files failed here with "connection is busy"; LoadResults'
  Python side holds counts, not rows, and waits on Snowflake), InvokeEnrich on
  70-ID batches against the local API (the worst of `INVOKE_CALLS` warm calls: a container is
  reused), CountFailedBatches on a night whose every batch failed (ceil(ids / 70) records).
  moto's S3 runs in the same process, so `work_mb` also holds the objects moto keeps (above
  64 KB moto spills them to disk): an upper bound of what the function itself needs.

`needed_mb` = import + work, and `memory_mb` = `needed_mb` x (1 + `MARGIN`) rounded up to a
multiple of 64 MB, at least Lambda's 128 MB. The result is written as JSON (committed as
bench-results/memory.json; stacks/memory.py sets the sizes the stack deploys and the cost
model prices, and tests/infra/test_memory_sizes.py keeps them equal to the file). Measured
on this machine's CPython, not Lambda's 3.12 on arm64: Lambda's own runtime client adds a
few MB, which the margin covers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enrichctl.paths import LAMBDAS_DIR, REPO_ROOT, use_repo_code

DEFAULT_OUTPUT = REPO_ROOT / "bench-results" / "memory.json"
STEPS = ("query_ids", "build_url", "invoke_enrich", "count_failed", "load_results")
#: Head room over the measured need: other inputs (longer answers, more invalid IDs), a
#: different CPython build, Lambda's runtime client.
MARGIN = 0.5
MIN_MB = 128  # Lambda's smallest size
STEP_MB = 64
IDS_PER_BATCH = 70
INVOKE_CALLS = 20
BUCKET = "memory-probe-bucket"
_IMPORT_RSS = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "print([ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0].split()[1])"
)


def size_for(needed_mb: float, margin: float = MARGIN) -> int:
    """The memory size for a measured need: + margin, up to a multiple of 64 MB, >= 128."""
    return max(MIN_MB, math.ceil(needed_mb * (1 + margin) / STEP_MB) * STEP_MB)


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "POWERTOOLS_SERVICE_NAME": "imdb-enrichment",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env["PYTHONPATH"] = os.pathsep.join([str(LAMBDAS_DIR), env.get("PYTHONPATH", "")])
    return env


def import_mb(step: str) -> float:
    """Peak RSS (MB) of a fresh interpreter after importing `<step>.handler`."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_RSS, f"{step}.handler"],
        capture_output=True, text=True, env=_env(), check=True, cwd=REPO_ROOT,
    )  # fmt: skip
    return int(done.stdout.strip().splitlines()[-1]) / 1024


# --------------------------------------------------------------------------- small steps
def _probe_small(ids: int) -> dict[str, Any]:
    """InvokeEnrich and CountFailedBatches under moto S3 and the local API (this process)."""
    os.environ.update({k: v for k, v in _env().items() if k != "PYTHONPATH"})
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "BUCKET_NAME": BUCKET,
            "HTTP_CONNECT_TIMEOUT_S": "2",
            "HTTP_READ_TIMEOUT_S": "10",
            "API_KEY_HEADER": "X-Api-Key",
            "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(64 * 1024),
        }
    )
    use_repo_code()
    import boto3
    from moto import mock_aws

    from build_url.urls import build_urls
    from count_failed import handler as count_handler
    from enrich_shared import storage
    from enrichctl.bench.memory_probe import _measure
    from enrichctl.local_api import LocalEnrichApi
    from enrichctl.local_run.moto_hooks import LambdaContext, LocalFunction
    from invoke_enrich import handler as invoke_handler

    probe_function = LocalFunction(
        name="probe",
        arn="arn:aws:lambda:us-east-1:123456789012:function:probe",
        handler="probe",
        timeout_s=60,
    )

    def context() -> LambdaContext:
        """A fresh context per call, as Lambda gives one (its own request ID)."""
        return LambdaContext(probe_function)

    batches = max(1, math.ceil(ids / IDS_PER_BATCH))
    out: dict[str, Any] = {}
    with (
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
        mock_aws(),
        LocalEnrichApi() as api,
    ):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        ids_list = [f"tt{n:07d}" for n in range(1, IDS_PER_BATCH * INVOKE_CALLS + 1)]
        items = [
            b.to_dict() | {"run_id": "probe-run"}
            for b in build_urls(api.base_url, ids_list, IDS_PER_BATCH)
        ]
        invoke_handler.lambda_handler(items[0], context())  # warm: the cold start is import_mb
        worst: dict[str, float] = {}
        for item in items[1:]:
            _, figures = _measure(lambda i=item: invoke_handler.lambda_handler(i, context()), "rss")
            if figures["rss_peak_mb"] - figures["rss_before_mb"] >= worst.get("work_mb", -1):
                worst = figures | {"work_mb": figures["rss_peak_mb"] - figures["rss_before_mb"]}
        out["invoke_enrich"] = worst | {"work": f"{IDS_PER_BATCH} IDs a call, worst of "
                                        f"{len(items) - 1} warm calls"}  # fmt: skip
        for n in range(1, batches + 1):
            key = f"{storage.failed_prefix('probe-failed')}{n:06d}.json"
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
        result, figures = _measure(
            lambda: count_handler.lambda_handler({"run_id": "probe-failed"}, context()), "rss"
        )
        assert result["count"] == batches, result
        out["count_failed"] = figures | {
            "work_mb": figures["rss_peak_mb"] - figures["rss_before_mb"],
            "work": f"{batches:,} failure records (every batch of {ids:,} IDs failed)",
        }
    return out


def _run_small(ids: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "enrichctl.bench.memory_sizes", "--probe-small", str(ids)],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"small-step probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- snowflake steps
def _snowflake_steps(ids: int, load: bool) -> dict[str, Any]:
    """QueryIds + BuildUrls (memory_probe) and, if `load`, LoadResults (load_probe)."""
    from enrichctl.bench.load_probe import measure_load
    from enrichctl.bench.runner import _probe_memory
    from enrichctl.embedded_snowflake import EmbeddedSnowflake
    from enrichctl.local_run.template import load_template

    template, _ = load_template({})
    out: dict[str, Any] = {}
    with EmbeddedSnowflake() as snow, tempfile.TemporaryDirectory() as workdir:
        snow.seed_synthetic(ids)
        template_path = Path(workdir) / "template.json"
        template_path.write_text(json.dumps(template))
        probe = _probe_memory(template_path, snow.secret(), ids, "rss")
        for step, work in (("query_ids", "rows fetched, cleaned, written"),
                           ("build_url", "IDs read, batched, written")):  # fmt: skip
            figures = probe[step]
            out[step] = figures | {
                "work_mb": figures["rss_peak_mb"] - figures["rss_before_mb"],
                "work": f"{probe['ids']:,} {work}",
            }
        if not load:
            return out
        load_figures = measure_load(snow, ids, Path(workdir))
        out["load_results"] = {
            "duration_s": load_figures["duration_s"],
            "rss_before_mb": load_figures["rss_before_mb"],
            "rss_peak_mb": load_figures["rss_peak_mb"],
            "work_mb": load_figures["rss_peak_mb"] - load_figures["rss_before_mb"],
            "work": f"COPY + MERGEs of {math.ceil(ids / IDS_PER_BATCH):,} stored answers",
        }
    return out


def measure(
    sizes: list[int], load_ids: int, configured: dict[str, int] | None = None
) -> dict[str, Any]:
    """Every step's figures (the largest work over `sizes`) and the memory size that
    follows; JSON-ready."""
    runs: list[tuple[int, dict[str, Any]]] = []
    for ids in sorted(set(sizes) | {load_ids}):
        steps = _snowflake_steps(ids, load=ids == load_ids)
        if ids == max(sizes):
            steps.update(_run_small(ids))
        runs.append((ids, steps))
    steps = {}
    for ids, found in runs:
        for step, figures in found.items():
            if step not in steps or figures["work_mb"] > steps[step]["work_mb"]:
                steps[step] = figures | {"ids": ids}
    result: dict[str, Any] = {
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "ids": sorted(sizes),
        "load_ids": load_ids,
        "margin": MARGIN,
        "rule": f"memory_mb = needed_mb x {1 + MARGIN:g}, up to a multiple of {STEP_MB} MB, "
        f">= {MIN_MB} MB; needed_mb = import_mb + work_mb",
        "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count()},
        "steps": {},
    }
    for step in STEPS:
        figures = steps[step]
        imported = import_mb(step)
        needed = imported + max(0.0, figures["work_mb"])
        result["steps"][step] = {
            "import_mb": round(imported, 1),
            "work_mb": round(figures["work_mb"], 1),
            "needed_mb": round(needed, 1),
            "memory_mb": size_for(needed),
            "work": figures["work"],
            "at_ids": figures["ids"],
            "duration_s": round(figures["duration_s"], 3),
            # What the stack had when this was measured (compare with memory_mb).
            **({"configured_when_measured_mb": configured[step]} if configured else {}),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure and write the JSON file (or, internally, run the small-step probe)."""
    parser = argparse.ArgumentParser(prog="python -m enrichctl.bench.memory_sizes")
    parser.add_argument(
        "--ids",
        type=lambda text: [int(x) for x in text.replace("_", "").split(",")],
        default=[100_000, 1_000_000],
        help="IDs of the nights measured, comma-separated (default 100000,1000000)",
    )
    parser.add_argument(
        "--load-ids", type=int, default=100_000, help="IDs of the night LoadResults loads"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--probe-small", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_small is not None:
        stdout = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            out = _probe_small(args.probe_small)
        stdout.write(json.dumps(out) + "\n")
        return 0
    use_repo_code()
    from stacks.memory import FUNCTION_MEMORY_MB

    result = measure(args.ids, args.load_ids, dict(FUNCTION_MEMORY_MB))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for step, figures in result["steps"].items():
        print(
            f"{step:14} import {figures['import_mb']:6.1f} MB + work {figures['work_mb']:6.1f} MB"
            f" = {figures['needed_mb']:6.1f} MB -> {figures['memory_mb']} MB"
            f" (at {figures['at_ids']:,} IDs)"
        )
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
