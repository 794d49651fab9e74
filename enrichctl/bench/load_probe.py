"""Measure the LoadResults step at N IDs against the embedded Snowflake.

`measure_load(snow, ids, workdir)` (called by `enrichctl bench` for each size, and by its
test at a small size) prepares what the step finds on a night of N enriched IDs: fresh
landing/results/state tables, a `file://` stage over `workdir` (the local stand-in for the
external stage over the bucket, as in `enrichctl local`) and ceil(N / 70) stored answers in
InvokeEnrich's format, each with the local API's records. Then, in a fresh process
(`python -m enrichctl.bench.load_probe REQUEST.json`, so the figures are the step's and not
the bench's), it runs the loader once (COPY + MERGE results + MERGE state + counts) and
once more (the rerun a redrive makes, which must load nothing), and reports:

- `duration_s`, `cpu_s`, `rss_before_mb`, `rss_peak_mb` of the Python side (the Lambda's
  process: the connector waiting on Snowflake; see `memory_probe` for what RSS counts);
- `server_rss_peak_mb`: the fakesnow server's peak resident memory during the load (its
  VmHWM, reset just before through /proc/<pid>/clear_refs; None where that is impossible).
  fakesnow is DuckDB, not a warehouse: its time and memory say how the SQL scales locally,
  not what a Snowflake warehouse takes.
- `rerun_s`, and the loader's results of both calls (`files_loaded`, `ids_ok`, ...).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from enrichctl.bench.memory_probe import _measure
from enrichctl.paths import REPO_ROOT, use_repo_code

IDS_PER_BATCH = 70
FETCHED_AT = "2026-12-01T02:01:00+00:00"


def _server_hwm_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(ln for ln in lines if ln.startswith("VmHWM:")).split()[1]) / 1024
    return None


def _reset_server_hwm(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def write_answers(folder: Path, run_id: str, ids: int) -> int:
    """Write ceil(ids / 70) stored answers under `folder/run_id/results/`; return the count."""
    from enrichctl.local_api import fake_record

    target = folder / run_id / "results"
    target.mkdir(parents=True, exist_ok=True)
    batches = math.ceil(ids / IDS_PER_BATCH)
    for batch in range(batches):
        batch_ids = [
            f"tt{n:07d}"
            for n in range(batch * IDS_PER_BATCH + 1, min(ids, (batch + 1) * IDS_PER_BATCH) + 1)
        ]
        doc = {
            "run_id": run_id,
            "batch_id": f"b{batch:06d}",
            "fetched_at": FETCHED_AT,
            "ids": batch_ids,
            "status": 200,
            "body": {"records": [fake_record(i) for i in batch_ids]},
        }
        (target / f"b{batch:06d}.json").write_text(json.dumps(doc))
    return batches


def measure_load(snow: Any, ids: int, workdir: Path) -> dict[str, Any]:
    """Prepare a night of `ids` enriched IDs and measure LoadResults on it (see module)."""
    suffix = uuid.uuid4().hex[:8].upper()
    secret = snow.secret()
    schema = f"{secret['database']}.{secret['schema']}"
    names = {
        "stage": f"{schema}.BENCH_RUNS_{suffix}",
        "landing_table": f"{schema}.BENCH_LANDING_{suffix}",
        "results_table": f"{schema}.BENCH_RESULTS_{suffix}",
        "state_table": f"{schema}.BENCH_STATE_{suffix}",
    }
    use_repo_code()
    from enrich_shared.load_sql import create_tables

    snow.create_table()  # creates the database and schema if the server is fresh
    for statement in create_tables(
        names["landing_table"], names["results_table"], names["state_table"]
    ):
        snow.execute(statement)
    folder = workdir / f"stage-{suffix}"
    folder.mkdir(parents=True)
    snow.execute(f"CREATE STAGE {names['stage']} URL='file://{folder}/'")
    run_id = f"bench-load-{suffix.lower()}"
    batches = write_answers(folder, run_id, ids)

    request = {"snowflake_secret": secret, "names": names, "run_id": run_id}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(request, handle)
    try:
        reset = _reset_server_hwm(snow.pid)
        result = subprocess.run(
            [sys.executable, "-m", "enrichctl.bench.load_probe", handle.name],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO_ROOT,
        )
        server_peak = _server_hwm_mb(snow.pid) if reset else None
    finally:
        os.unlink(handle.name)
    if result.returncode != 0:
        raise RuntimeError(f"load probe failed: {result.stderr.strip()[-2000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out.update(ids=ids, batches=batches, server_rss_peak_mb=server_peak)
    return out


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """In the probe process: run the loader twice on the prepared run; return the figures."""
    use_repo_code()
    from enrich_shared.models import LoadRequest
    from enrich_shared.snowflake_conn import SnowflakeCredentials
    from load_results.loader import LoadSettings, load_run

    settings = LoadSettings(secret_name="bench", login_timeout_s=30, **request["names"])  # noqa: S106 (a name, no secret)
    creds = SnowflakeCredentials.from_secret(request["snowflake_secret"], "bench")
    load = LoadRequest(request["run_id"], None)
    first, figures = _measure(lambda: load_run(load, settings, creds), "rss")
    second, again = _measure(lambda: load_run(load, settings, creds), "rss")
    return {
        **figures,
        "rerun_s": again["duration_s"],
        "first": first.to_dict(),
        "rerun": second.to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: one JSON request file in, one JSON line out (stdout)."""
    args = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(args[0]).read_text())
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = probe(request)
    stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
