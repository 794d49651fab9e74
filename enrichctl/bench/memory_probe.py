"""Measure QueryIds and BuildUrls, one invocation each, in a process of their own.

`python -m enrichctl.bench.memory_probe REQUEST.json` (run by `enrichctl bench`): builds
the synthesized pipeline's functions under moto (LocalPipeline, no state machine run),
invokes QueryIds against the given Snowflake and then BuildUrls on its result, and prints
one JSON line with, for each handler:

- `rss_peak_mb`: the process's peak resident memory during the invocation (Linux VmHWM,
  reset just before it through /proc/self/clear_refs). Like Lambda's "Max Memory Used" it
  counts the interpreter and every imported library; unlike Lambda it also counts moto's
  in-process S3 (objects above 64 KB are spilled to disk, request bodies are not). An upper
  bound of what the function needs.
- `rss_before_mb`: resident memory just before (interpreter + imports + moto).
- `py_peak_mb` (mode "tracemalloc"): Python allocations at their peak during the call,
  from tracemalloc (run separately: tracing itself costs memory and time).
- `duration_s`, `cpu_s`: wall and CPU time of the invocation.

Handlers are imported before measuring: the cold start is measured on its own.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

#: moto keeps S3 objects above this size in a temp file, not in our process's memory.
MOTO_KEY_BUFFER_BYTES = 64 * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _measure(call: Any, mode: str) -> tuple[Any, dict[str, float]]:
    gc.collect()
    rss_before = _status_kb("VmRSS")
    reset_peak_rss()
    if mode == "tracemalloc":
        tracemalloc.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = call()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    figures = {
        "duration_s": wall,
        "cpu_s": cpu,
        "rss_before_mb": rss_before / 1024,
        "rss_peak_mb": _status_kb("VmHWM") / 1024,
    }
    if mode == "tracemalloc":
        figures["py_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1024 / 1024
        tracemalloc.stop()
    return result, figures


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """Run both handlers once as `request` says; return their figures."""
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(MOTO_KEY_BUFFER_BYTES))
    from enrichctl.local_run.logs import handler_output_to
    from enrichctl.local_run.pipeline import LocalPipeline

    template = json.loads(Path(request["template"]).read_text())
    mode = request.get("mode", "rss")
    run_id = request.get("run_id", "bench-probe")
    with (
        open(os.devnull, "w") as devnull,
        LocalPipeline(
            template,
            snowflake_secret=request["snowflake_secret"],
            # QueryIds' incremental pull reads the state table created with the stage.
            embedded_snowflake=request["snowflake_secret"],
            api_base_url="http://127.0.0.1:9/lamba-tmdb",  # never called here
            log_stream=devnull,
        ) as pipeline,
        handler_output_to(devnull),
    ):
        runtime = pipeline.runtime
        query_fn, build_fn = pipeline.functions["query_ids"], pipeline.functions["build_url"]
        query_fn.resolve_handler()
        build_fn.resolve_handler()
        event = {
            "input": {"run_id": run_id, "trigger": "manual"},
            "execution_id": f"arn:aws:states:us-east-1:123456789012:execution:bench:{run_id}",
            "execution_name": run_id,
        }
        out: dict[str, Any] = {"mode": mode, "rows": request.get("rows")}
        payload, out["query_ids"] = _measure(
            lambda: runtime.invoke(query_fn, json.dumps(event), {}), mode
        )
        query = json.loads(payload)
        if "errorType" in query:
            raise RuntimeError(f"QueryIds failed: {query}")
        payload, out["build_url"] = _measure(
            lambda: runtime.invoke(build_fn, json.dumps(query), {}), mode
        )
        build = json.loads(payload)
        if "errorType" in build:
            raise RuntimeError(f"BuildUrls failed: {build}")
        out["ids"] = query["ids_count"]
        out["batches"] = build["batch_count"]
        with contextlib.suppress(Exception):
            import boto3

            s3 = boto3.client("s3")
            for name, key in (
                ("ids_json_bytes", query["ids_key"]),
                ("batches_json_bytes", build["batches_key"]),
            ):
                out[name] = s3.head_object(Bucket=pipeline.bucket, Key=key)["ContentLength"]
        return out


def main(argv: list[str] | None = None) -> int:
    """Entry point: one JSON request file in, one JSON line out (stdout)."""
    args = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(args[0]).read_text())
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # only our JSON line goes to stdout
        result = probe(request)
    stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
