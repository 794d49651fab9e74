"""Flags and handlers of `enrichctl cost` and `enrichctl bench` (registered in enrichctl/cli.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from enrichctl.cost import (
    HOURS_PER_MONTH,
    LOADING,
    NIGHT,
    NIGHTS_PER_MONTH,
    PRICES,
    Workload,
    estimate,
    usd,
)
from enrichctl.exit_codes import EXIT_OK, EXIT_USAGE


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use row counts like 1000,10000") from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be 1 or more")
    return sizes


def _count(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `enrichctl cost`."""
    parser.add_argument("--ids", type=_count, required=True, metavar="N", help="IDs a night")
    parser.add_argument(
        "--enrich-ms",
        type=float,
        default=Workload(0).enrich_ms,
        metavar="MS",
        help="the enrichment API's answer time per batch (default %(default).0f ms)",
    )
    parser.add_argument(
        "--ids-per-batch", type=int, default=70, metavar="N", help="IDs per request (default 70)"
    )
    parser.add_argument(
        "--fresh-share",
        type=_fresh_share,
        default=0.0,
        metavar="P",
        help="share of the IDs the incremental pull skips as fresh (0..1, default 0): "
        "fewer batches, requests, children and stored answers",
    )
    parser.add_argument(
        "--no-load", action="store_true", help="price a stack with load.enabled=false"
    )
    parser.add_argument(
        "--warehouse-usd-per-hour",
        type=float,
        default=0.0,
        metavar="USD",
        help="also show the Snowflake warehouse time of QueryIds + LoadResults at this price "
        "(an assumption: Snowflake bills it, not AWS; default 0 = not shown)",
    )
    parser.add_argument("--json", action="store_true", help="print the model as JSON")


def _fresh_share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be a share between 0 and 1 (0.95 = 95 %)")
    return value


def cmd_cost(args: argparse.Namespace) -> int:
    """Print the modelled AWS bill of `--ids` IDs a night beside the EC2 agent."""
    if args.ids_per_batch < 1 or args.enrich_ms < 0 or args.warehouse_usd_per_hour < 0:
        print(
            "enrichctl cost: error: --ids-per-batch must be >= 1, --enrich-ms and "
            "--warehouse-usd-per-hour >= 0",
            file=sys.stderr,
        )
        return EXIT_USAGE
    report = estimate(
        Workload(
            ids=args.ids,
            ids_per_batch=args.ids_per_batch,
            enrich_ms=args.enrich_ms,
            fresh_share=args.fresh_share,
            load=not args.no_load,
            warehouse_usd_per_hour=args.warehouse_usd_per_hour,
        )
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    fresh = (
        f", {report.skipped_fresh_ids:,} skipped as fresh ({args.fresh_share:.0%})"
        if report.skipped_fresh_ids
        else ""
    )
    table = Table(
        title=f"{report.ids:,} IDs a night{fresh} = {report.batches:,} batches "
        f"(API answers in {args.enrich_ms:.0f} ms)",
        title_justify="left",
    )
    for column in ("service", "what", "per night", "per month"):
        table.add_column(column, justify="left" if column in ("service", "what") else "right")

    def section(group: str, fixed: list[Any], subtotal: str, month: float) -> None:
        for line in report.lines:
            if line.group == group:
                table.add_row(line.service, line.detail, usd(line.night), usd(line.month))
        for line in fixed:
            table.add_row(line.service + " (fixed)", line.detail, "", usd(line.month))
        night = usd(report.group_night(group))
        table.add_row(f"[bold]{subtotal}[/]", "", night, f"[bold]{usd(month)}[/]", end_section=True)

    # The night's own work and the fixed costs first (comparable with the figures from
    # before results loading), then what loading the answers back adds, then the total.
    section(
        NIGHT, report.fixed_month, "subtotal without results loading", report.month_without_loading
    )
    section(LOADING, [], "subtotal results loading", report.month_loading)
    table.add_row(
        "[bold]total[/]",
        f"{NIGHTS_PER_MONTH:.1f} nights",
        usd(report.night),
        f"[bold]{usd(report.month)}[/]",
    )
    hourly = f"{HOURS_PER_MONTH:g} h x ${PRICES.ec2_t2_micro_per_hour:g}"
    table.add_row("EC2 t2.micro agent (replaced)", hourly, "", usd(report.agent_month))
    console = Console(highlight=False)
    console.print(table)
    if report.snowflake:
        line = report.snowflake
        console.print(
            f"{line.service}: {line.detail} = {usd(line.night)} a night, {usd(line.month)} a "
            "month (your price assumption; billed by Snowflake, not in the AWS total)"
        )
    else:
        console.print(
            "Not AWS, not in the total: the Snowflake warehouse time of QueryIds and "
            "LoadResults (price it with --warehouse-usd-per-hour)."
        )
    console.print("Prices and sources: enrichctl/cost.py (us-east-1 list prices, no free tier).")
    return EXIT_OK


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `enrichctl bench`."""
    from enrichctl.bench.runner import DEFAULT_OUTPUT_DIR, DEFAULT_SIZES

    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        metavar="N,N,...",
        help="row counts to run (default 1000,10000,100000,1000000)",
    )
    parser.add_argument(
        "--latency-ms", type=_count, default=50, metavar="MS", help="local API latency (50)"
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="Distributed Map MaxConcurrency (default: the stack's configured value)",
    )
    parser.add_argument(
        "--full-run-max-rows",
        type=_count,
        default=100_000,
        metavar="N",
        help="run the whole state machine only up to N rows; above, QueryIds and BuildUrls "
        "are measured alone (default 100000: 1,000,000 rows through moto's Map take ~15 min)",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, metavar="DIR",
        help="where the JSON results and the PNG go (default bench-results)",
    )  # fmt: skip
    parser.add_argument("--no-memory", action="store_true", help="skip the per-handler probes")
    parser.add_argument("--no-cold-start", action="store_true", help="skip import times/bundles")
    parser.add_argument("--no-bundles", action="store_true", help="skip bundle sizes")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--no-load-step", action="store_true", help="skip the LoadResults measurement"
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the bench and print its table."""
    from rich.console import Console
    from rich.table import Table

    from enrichctl.bench.runner import BenchError, BenchOptions, run_bench
    from enrichctl.bench.table import COLUMNS, table_cells

    # Wide enough for the 12 columns when piped (make bench | tee): rich would squeeze to 80.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 220)
    options = BenchOptions(
        sizes=args.sizes,
        latency_ms=args.latency_ms,
        max_concurrency=args.max_concurrency,
        full_run_max_rows=args.full_run_max_rows,
        output_dir=args.output_dir,
        memory=not args.no_memory,
        cold_start=not args.no_cold_start,
        bundles=not args.no_bundles,
        plot=not args.no_plot,
        load=not args.no_load_step,
    )
    try:
        results = run_bench(options, echo=lambda text: console.print(f"[dim]{text}[/]"))
    except BenchError as exc:
        print(f"enrichctl bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    table = Table(
        title=f"enrichctl bench: API latency {results['latency_ms']} ms, "
        f"MaxConcurrency {results['max_concurrency']}, memory in MB",
        title_justify="left",
    )
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for row in results["_rows"]:
        table.add_row(*table_cells(row))
    console.print(table)
    _print_load_step(console, results["raw"])
    _print_cold_start(console, results["cold_start"])
    for row in results["_rows"]:
        for note in row.notes:
            console.print(f"[yellow]note[/] {row.rows:,} rows: {note}")
    console.print(f"results: {results['json_path']}" + (
        f", plot: {results['png_path']}" if results.get("png_path") else ""
    ))  # fmt: skip
    return EXIT_OK


def _print_load_step(console: Any, raw: list[dict[str, Any]]) -> None:
    loads = [entry["load"] for entry in raw if entry.get("load")]
    if not loads:
        return
    from rich.table import Table

    table = Table(
        title="LoadResults alone (embedded Snowflake = DuckDB: how the SQL scales here, "
        "not a warehouse's time)",
        title_justify="left",
    )
    for column in ("IDs", "files", "load s", "rerun s", "Python peak RSS MB",
                   "fakesnow peak RSS MB", "IDs OK"):  # fmt: skip
        table.add_column(column, justify="right")
    for load in loads:
        server = load.get("server_rss_peak_mb")
        table.add_row(
            f"{load['ids']:,}", f"{load['first']['files_loaded']:,}", f"{load['duration_s']:.1f}",
            f"{load['rerun_s']:.1f}", f"{load['rss_peak_mb']:.0f}",
            "-" if server is None else f"{server:.0f}", f"{load['first']['ids_ok']:,}",
        )  # fmt: skip
    console.print(table)


def _print_cold_start(console: Any, cold: dict[str, Any]) -> None:
    if not cold:
        return
    from rich.table import Table

    table = Table(title="Cold start (the bundled handlers, Python 3.12)", title_justify="left")
    for column in ("function", "import s", "heaviest imports", "bundle MB (unzipped)"):
        table.add_column(column)
    for step, figures in cold.get("import_s", {}).items():
        heavy = ", ".join(f"{name} {secs:.2f}" for name, secs in figures["heaviest"][:3])
        bundle = cold.get("bundle_mb", {}).get(step, {})
        size = f"{bundle['mb']:.1f}" if bundle.get("mb") is not None else bundle.get("error", "-")
        table.add_row(step, f"{figures['median_s']:.3f}", heavy, size)
    console.print(table)
