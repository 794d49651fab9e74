"""`enrichctl bench`: the local pipeline at growing sizes, measured.

For each size it seeds the embedded Snowflake with that many synthetic rows, then
1. measures QueryIds and BuildUrls alone, one invocation each in a fresh process
   (`memory_probe`: peak RSS, then again under tracemalloc for the Python heap);
2. runs the whole synthesized state machine under moto against the local API at a fixed
   latency (skipped above `--full-run-max-rows`: the table then says "not run"), timing the
   run and splitting its CPU between our handlers, the local API and the rest (moto);
3. prices the night with `enrichctl.cost`, from the counts and durations it measured;
4. measures the LoadResults step alone at that many IDs (`load_probe`: COPY + MERGEs of
   ceil(N / 70) stored answers from a `file://` stage, duration and peak memory of the Python
   side and of the fakesnow server).
Then the cold start (import time of each handler in a fresh interpreter, unzipped bundle
sizes), a JSON file of everything under `bench-results/`, and a PNG plot.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enrichctl.bench.table import BenchRow, HandlerMemory
from enrichctl.cost import Workload, estimate, template_counts
from enrichctl.paths import REPO_ROOT

DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
DEFAULT_OUTPUT_DIR = Path("bench-results")
STEPS = ("query_ids", "build_url", "invoke_enrich")


class BenchError(Exception):
    """The bench cannot run as asked."""


@dataclass
class BenchOptions:
    """Flags of `enrichctl bench`."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    latency_ms: int = 50
    max_concurrency: int | None = None  # None: the stack's configured value
    full_run_max_rows: int = 1_000_000
    output_dir: Path = DEFAULT_OUTPUT_DIR
    memory: bool = True
    cold_start: bool = True
    bundles: bool = True
    plot: bool = True
    #: Measure the LoadResults step at each size (`load_probe`).
    load: bool = True
    timeout_s: float = 3600.0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- accounting
class CpuAccount:
    """Thread CPU and wall time spent inside wrapped callables, per label (thread-safe)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def wrap(self, label: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """`func`, with its thread CPU time and wall time added to `label`."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
                with self._lock:
                    self.cpu[label] = self.cpu.get(label, 0.0) + cpu
                    self.wall[label] = self.wall.get(label, 0.0) + wall
                    self.calls[label] = self.calls.get(label, 0) + 1

        return timed


# --------------------------------------------------------------------------- one size
def _probe_memory(template_path: Path, secret: dict[str, Any], rows: int, mode: str) -> dict:
    request = {"template": str(template_path), "snowflake_secret": secret, "rows": rows}
    request["mode"] = mode
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(request, handle)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "enrichctl.bench.memory_probe", handle.name],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=False,
        )
    finally:
        Path(handle.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise BenchError(f"memory probe ({mode}, {rows} rows) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _handler_memory(rss: dict, traced: dict | None, step: str, memory_mb: dict) -> HandlerMemory:
    figures = rss[step]
    return HandlerMemory(
        duration_s=figures["duration_s"],
        cpu_s=figures["cpu_s"],
        rss_before_mb=figures["rss_before_mb"],
        rss_peak_mb=figures["rss_peak_mb"],
        py_peak_mb=traced[step]["py_peak_mb"] if traced else None,
        configured_mb=memory_mb.get(step),
    )


def _full_run(
    template: dict[str, Any], secret: dict[str, Any], api: Any, rows: int, timeout_s: float
) -> dict[str, Any]:
    from enrichctl.local_run.logs import handler_output_to
    from enrichctl.local_run.pipeline import LocalPipeline

    account = CpuAccount()
    original_handle = api._handle
    api._handle = account.wrap("api", original_handle)
    try:
        with (
            open(os.devnull, "w") as devnull,
            LocalPipeline(
                template,
                snowflake_secret=secret,
                embedded_snowflake=secret,
                api_base_url=api.base_url,
                log_stream=devnull,
                api_request_count=lambda: api.request_count,
            ) as pipeline,
            handler_output_to(devnull),
        ):
            for step, function in pipeline.functions.items():
                function.handler = account.wrap(step, function.resolve_handler())
            cpu0 = time.process_time()
            report = pipeline.run(
                {"run_id": f"bench-{rows}", "trigger": "manual"}, timeout_s=timeout_s
            )
            cpu_total = time.process_time() - cpu0
    finally:
        api._handle = original_handle
    if report.status != "SUCCEEDED":
        raise BenchError(f"the {rows}-row run ended {report.status}: {report.error} {report.cause}")
    ours = sum(account.cpu.get(step, 0.0) for step in STEPS)
    api_cpu = account.cpu.get("api", 0.0)
    children = report.batches
    enrich_calls = max(1, account.calls.get("invoke_enrich", 0))
    return {
        "report": report,
        "cpu_total_s": cpu_total,
        "cpu_ours_s": ours,
        "cpu_api_s": api_cpu,
        "cpu_moto_s": max(0.0, cpu_total - ours - api_cpu),
        "cpu_by_step_s": dict(account.cpu),
        "wall_by_step_s": dict(account.wall),
        "calls": dict(account.calls),
        "parent_transitions": report.state_transitions - children,
        "enrich_mean_ms": 1000 * account.wall.get("invoke_enrich", 0.0) / enrich_calls,
    }


def _cost(
    row: BenchRow,
    counts: dict[str, Any],
    run: dict[str, Any] | None,
    latency_ms: float,
) -> dict[str, Any]:
    query = row.query_ids
    build = row.build_url
    workload = Workload(
        ids=row.ids,
        batches=row.batches,
        # Under moto 10 handlers share 2 cores, so their wall time is inflated; AWS gives
        # each its own: the API's latency plus our handler's own CPU time per call (which
        # the cost model scales to the configured memory's CPU share).
        enrich_ms=latency_ms,
        enrich_cpu_ms=(
            1000 * run["cpu_by_step_s"].get("invoke_enrich", 0.0) / max(1, row.batches)
            if run
            else 5.0
        ),
        query_ms_fixed=1000 * query.duration_s if query else Workload(0).query_ms_fixed,
        query_us_per_id=0.0 if query else Workload(0).query_us_per_id,
        build_ms_fixed=1000 * build.duration_s if build else Workload(0).build_ms_fixed,
        build_us_per_id=0.0 if build else Workload(0).build_us_per_id,
        parent_transitions=run["parent_transitions"] if run else Workload(0).parent_transitions,
        memory_mb=counts["memory_mb"],
        alarms=counts["alarms"] or Workload(0).alarms,
    )
    return estimate(workload).to_dict() | {"workload": workload.__dict__}


def bench_size(
    rows: int,
    options: BenchOptions,
    *,
    snow: Any,
    api: Any,
    template: dict[str, Any],
    template_path: Path,
    max_concurrency: int,
    counts: dict[str, Any],
    echo: Callable[[str], None],
) -> tuple[BenchRow, dict[str, Any]]:
    """Measure one size; returns its row and the raw figures for the JSON file."""
    started = time.perf_counter()
    snow.seed_synthetic(rows)
    raw: dict[str, Any] = {"rows": rows, "seed_s": time.perf_counter() - started}
    secret = snow.secret()
    memory_mb = counts["memory_mb"]

    rss = traced = None
    if options.memory:
        echo(f"  {rows:>9,} rows: QueryIds + BuildUrls alone (peak RSS)")
        rss = _probe_memory(template_path, secret, rows, "rss")
        echo(f"  {rows:>9,} rows: QueryIds + BuildUrls alone (tracemalloc)")
        traced = _probe_memory(template_path, secret, rows, "tracemalloc")
        raw["probe_rss"], raw["probe_tracemalloc"] = rss, traced

    run = None
    # Any number of batches per Map worker: the local runner's moto hooks iterate where
    # moto 5.2.5's worker recursed once per item (and died past ~1,000).
    if rows <= options.full_run_max_rows:
        echo(f"  {rows:>9,} rows: whole state machine under moto")
        run = _full_run(template, secret, api, rows, options.timeout_s)
        report = run.pop("report")
        raw["run"] = run | {"summary": report.summary()}
        ids, batches = report.ids, report.batches
    elif rss is not None:
        ids, batches = rss["ids"], rss["batches"]
    else:
        raise BenchError(f"{rows} rows: neither a full run nor the probe was asked for")

    row = BenchRow(
        rows=rows,
        ids=ids,
        batches=batches,
        latency_ms=options.latency_ms,
        max_concurrency=max_concurrency,
        full_run=run is not None,
        http_requests=report.http_requests if run else None,
        state_transitions=report.state_transitions if run else None,
        wall_s=report.duration_s if run else None,
        cpu_ours_s=run["cpu_ours_s"] if run else None,
        cpu_api_s=run["cpu_api_s"] if run else None,
        cpu_moto_s=run["cpu_moto_s"] if run else None,
        query_ids=_handler_memory(rss, traced, "query_ids", memory_mb) if rss else None,
        build_url=_handler_memory(rss, traced, "build_url", memory_mb) if rss else None,
    )
    if run is None:
        row.notes.append(
            f"state machine not run above {options.full_run_max_rows:,} rows "
            "(--full-run-max-rows); QueryIds and BuildUrls measured, Map counts from BuildUrls"
        )
    if options.load:
        from enrichctl.bench.load_probe import measure_load

        echo(f"  {rows:>9,} rows: LoadResults alone (COPY + MERGEs, {rows:,} IDs)")
        with tempfile.TemporaryDirectory(prefix="bench-load-") as workdir:
            raw["load"] = measure_load(snow, rows, Path(workdir))
    cost = _cost(row, counts, run, options.latency_ms)
    row.cost_night_usd = cost["night_usd"]
    row.cost_month_usd = cost["month_usd"]
    row.agent_month_usd = cost["agent_month_usd"]
    raw["cost"] = cost
    return row, raw


# --------------------------------------------------------------------------- the bench
def run_bench(options: BenchOptions, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every size, the cold-start measurements, write JSON (+ PNG); return the results."""
    from enrichctl.embedded_snowflake import EmbeddedSnowflake
    from enrichctl.local_api import LocalEnrichApi
    from enrichctl.local_run.template import load_template

    if not options.sizes or any(size < 1 for size in options.sizes):
        raise BenchError(f"--sizes {options.sizes}: use one or more row counts of 1 or more")
    if options.latency_ms < 0:
        raise BenchError(f"--latency-ms {options.latency_ms}: use 0 or more")
    output_dir = Path(options.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    overrides = {}
    if options.max_concurrency is not None:
        overrides["pipeline.enrichment.maxConcurrency"] = options.max_concurrency
    template, source = load_template(overrides)
    echo(f"template: {source}")
    counts = template_counts(template)
    max_concurrency = _map_concurrency(template) or options.max_concurrency or 10
    template_path = output_dir / "template.json"
    template_path.write_text(json.dumps(template))

    rows_out: list[BenchRow] = []
    raw_out: list[dict[str, Any]] = []
    started = datetime.now(UTC)
    with (
        EmbeddedSnowflake() as snow,
        LocalEnrichApi(
            latency_ms=options.latency_ms,
            max_lifetime_s=options.timeout_s * len(options.sizes) + 600,
        ) as api,
    ):
        for rows in sorted(options.sizes):
            row, raw = bench_size(
                rows,
                options,
                snow=snow,
                api=api,
                template=template,
                template_path=template_path,
                max_concurrency=max_concurrency,
                counts=counts,
                echo=echo,
            )
            rows_out.append(row)
            raw_out.append(raw)

    cold: dict[str, Any] = {}
    if options.cold_start:
        from enrichctl.bench.coldstart import bundle_sizes, import_times

        echo("cold start: handler import times in fresh interpreters")
        cold["import_s"] = import_times()
        if options.bundles:
            echo("cold start: unzipped bundle sizes (stacks/bundling.py, pip cache in .build/)")
            cold["bundle_mb"] = bundle_sizes()

    results = {
        "started": started.isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "latency_ms": options.latency_ms,
        "max_concurrency": max_concurrency,
        "full_run_max_rows": options.full_run_max_rows,
        "function_memory_mb": counts["memory_mb"],
        "rows": [row.to_dict() for row in rows_out],
        "raw": raw_out,
        "cold_start": cold,
        "notes": list(options.notes),
    }
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    json_path = output_dir / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    (output_dir / "latest.json").write_text(json_path.read_text())
    results["json_path"] = str(json_path)
    results["_rows"] = rows_out
    if options.plot:
        from enrichctl.bench.plot import plot_results

        png = output_dir / f"bench-{stamp}.png"
        with contextlib.suppress(ImportError):
            plot_results(rows_out, png)
            results["png_path"] = str(png)
    return results


def _map_concurrency(template: dict[str, Any]) -> int | None:
    """MaxConcurrency of the Distributed Map in the synthesized definition."""
    from enrichctl.local_run.definition import local_definition

    pending: list[Any] = [local_definition(template).states]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("Type") == "Map" and node.get("MaxConcurrency"):
                return int(node["MaxConcurrency"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return None


__all__ = ["BenchError", "BenchOptions", "CpuAccount", "run_bench"]
