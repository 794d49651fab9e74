"""`enrichctl`: the developer/operator command line of the IMDB enrichment pipeline.

Subcommands register themselves in `build_parser()`; each has a `_cmd_<name>(args) -> int`.
Exit codes: 0 the run SUCCEEDED, 1 it FAILED (or crashed), 2 bad usage or configuration
(one line on stderr says why).

    enrichctl local [--rows N] [--max-concurrency N] [--api-latency-ms MS]
                    [--api-fail-rate P] [--api-fail-status CODE] [--retry-waits real|skip]
                    [--output-dir DIR] [--snowflake-secret-file PATH] [--api-url URL]
                    [--scheduled-time TIME] [--nights N] [--full] [--refresh-after-days D] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from enrichctl.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from enrichctl.paths import use_repo_code

use_repo_code()
#: The largest `limit` the pipeline accepts: above it the run would start, fail in QueryIds
#: and page whoever is on call.
from enrich_shared.models import MAX_LIMIT as MAX_RUN_LIMIT  # noqa: E402


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage in one line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def _run_limit(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_RUN_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} must be at most {MAX_RUN_LIMIT:,} rows")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The `enrichctl` parser with every subcommand."""
    from enrichctl.local_run.moto_hooks import RETRY_WAIT_MODES
    from enrichctl.local_run.options import DEFAULT_OUTPUT_DIR, MAX_NIGHTS

    parser = _Parser(
        prog="enrichctl",
        description="Run and operate the nightly IMDB enrichment pipeline.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    local = commands.add_parser(
        "local",
        help="run the synthesized state machine on this machine (moto, no AWS account)",
        description=(
            "Synthesize the stack (or reuse cdk.out), start an embedded Snowflake and a local "
            "enrichment API on 127.0.0.1, and run the deployed state machine under moto with "
            "the real handlers in-process. Exit 0 if the run SUCCEEDED, 1 if it FAILED, "
            "2 for bad usage or configuration."
        ),
    )
    local.add_argument(
        "--rows",
        type=int,
        metavar="N",
        help="seed N synthetic rows instead of the shipped EIDR sample",
    )
    local.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="Distributed Map MaxConcurrency (synthesized with this context override)",
    )
    local.add_argument(
        "--api-latency-ms",
        type=int,
        default=0,
        metavar="MS",
        help="delay of every local API answer (default 0)",
    )
    local.add_argument(
        "--api-fail-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of requests the local API answers with an error (0..1, default 0)",
    )
    local.add_argument(
        "--api-fail-status",
        type=int,
        default=503,
        metavar="CODE",
        help="status of those failed answers (default 503)",
    )
    local.add_argument(
        "--retry-waits",
        choices=sorted(RETRY_WAIT_MODES),
        default="skip",
        help="sleep the state machine's backoff waits, or record and skip them (default)",
    )
    local.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        metavar="DIR",
        help="where enriched records, the run's S3 objects and logs go (default enrich-output)",
    )
    local.add_argument(
        "--snowflake-secret-file",
        type=Path,
        metavar="PATH",
        help="JSON Snowflake secret of a real account to query instead of the embedded one",
    )
    local.add_argument(
        "--api-url", metavar="URL", help="a real enrichment API to call instead of the local one"
    )
    local.add_argument(
        "--scheduled-time",
        metavar="TIME",
        help="start with the schedule's input for this ISO 8601 time, as EventBridge Scheduler "
        "does (run ID scheduled-<UTC time>, derived by QueryIds)",
    )
    local.add_argument(
        "--nights",
        type=int,
        default=1,
        metavar="N",
        help="run N consecutive nights against the same embedded Snowflake, each with its own "
        f"run ID (1-{MAX_NIGHTS}, default 1): night 2 pulls only what night 1 left stale",
    )
    local.add_argument(
        "--full",
        action="store_true",
        help='the first night ignores the state table (the manual input {"full": true})',
    )
    local.add_argument(
        "--refresh-after-days",
        type=int,
        metavar="D",
        help="snowflake.incremental.refreshAfterDays for this run (default: cdk.json's; "
        "null there means every night pulls every ID)",
    )
    local.add_argument(
        "--json",
        action="store_true",
        help="print only each night's summary, one JSON object per line",
    )
    local.set_defaults(handler=_cmd_local)
    _add_ops_commands(commands)
    _add_perf_commands(commands)
    _add_setup_commands(commands)
    return parser


def _add_setup_commands(commands: Any) -> None:
    """snowflake-setup: the one-time Snowflake SQL (logic in enrichctl.snowflake_setup)."""
    from enrichctl import snowflake_setup

    setup = commands.add_parser(
        "snowflake-setup",
        help="print the one-time Snowflake SQL for loading results (--check: what is missing)",
        description="Print the SQL a Snowflake administrator runs once: the storage "
        "integration (assuming the stack's fixed-name IAM role), the stage(s), the three "
        "tables and the pipeline role's grants, then DESC INTEGRATION, whose two values go "
        "into cdk.json (load.snowflakeIamUserArn, load.externalId). With --check, connect "
        "with the pipeline's Snowflake secret and report object by object what is missing "
        "(exit 1 if anything is, 2 for bad usage or configuration).",
    )
    snowflake_setup.add_arguments(setup)
    setup.set_defaults(handler=snowflake_setup.cmd_snowflake_setup)


def _add_perf_commands(commands: Any) -> None:
    """cost/bench: the cost model and the local benchmark (logic in enrichctl.bench)."""
    from enrichctl.bench import cli as perf

    cost = commands.add_parser("cost", help="modelled AWS cost of N IDs a night vs the EC2 agent")
    perf.add_cost_arguments(cost)
    cost.set_defaults(handler=perf.cmd_cost)
    bench = commands.add_parser("bench", help="measure the local pipeline at 1k..1M rows")
    perf.add_bench_arguments(bench)
    bench.set_defaults(handler=perf.cmd_bench)


def _add_ops_commands(commands: Any) -> None:
    """run/status/show/retry/smoke/graph: operate the deployed stack (logic in enrichctl.ops)."""
    from enrichctl.ops import commands as ops
    from enrichctl.paths import REPO_ROOT

    run = commands.add_parser(
        "run",
        help="start a run of the deployed pipeline now",
        description="Start an execution now (name manual-<UTC time>-<random>). --dry-run "
        "queries and builds the batches, sends nothing, and lists what would have been sent. "
        "--full ignores the incremental pull's state table for this one run.",
    )
    ops.add_aws_arguments(run)
    run.add_argument("--limit", type=_run_limit, metavar="N", help="query at most N rows")
    run.add_argument("--dry-run", action="store_true", help="build the batches, send nothing")
    run.add_argument(
        "--full",
        action="store_true",
        help='ignore the state table for this run: send every ID (input {"full": true})',
    )
    run.add_argument("--wait", action="store_true", help="follow it, then print the summary")
    run.set_defaults(handler=ops.cmd_run)

    status = commands.add_parser("status", help="recent runs of the deployed pipeline")
    ops.add_aws_arguments(status)
    status.add_argument("--last", type=_positive_int, default=10, metavar="N", help="(default 10)")
    status.set_defaults(handler=ops.cmd_status)

    show = commands.add_parser("show", help="one run: state timeline, failed batches, console URL")
    ops.add_aws_arguments(show)
    show.add_argument("execution", metavar="EXECUTION", help="execution name or ARN")
    show.add_argument("--ids", action="store_true", help="list every ID of the failed batches")
    show.set_defaults(handler=ops.cmd_show)

    retry = commands.add_parser(
        "retry",
        help="send again only what failed (redrive, or a new run over the failed batches)",
    )
    ops.add_aws_arguments(retry)
    retry.add_argument("execution", metavar="EXECUTION", help="execution name or ARN")
    retry.add_argument("--wait", action="store_true", help="follow it, then print the summary")
    retry.set_defaults(handler=ops.cmd_retry)

    smoke = commands.add_parser(
        "smoke",
        help="check the deployed stack after `cdk deploy`, then prove it with a dry run",
        description="Check that the schedule is enabled, the alarm topic has a confirmed "
        "subscription and lets CloudWatch publish, and the secrets exist; then start a dry run "
        "and wait for it (its success clears MissedRun). One line per check with the fix; "
        "exit 1 if any check failed.",
    )
    ops.add_aws_arguments(smoke)
    smoke.add_argument("--no-run", action="store_true", help="skip the dry run")
    smoke.add_argument("--json", action="store_true", help="print the results as one JSON object")
    smoke.set_defaults(handler=ops.cmd_smoke)

    graph = commands.add_parser("graph", help="the state machine as a Mermaid diagram")
    mode = graph.add_mutually_exclusive_group()
    mode.add_argument("--update-readme", action="store_true", help="rewrite README's diagram")
    mode.add_argument("--check", action="store_true", help="exit 1 if README's diagram drifted")
    graph.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md", metavar="PATH")
    graph.set_defaults(handler=ops.cmd_graph)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `enrichctl` console script and `python -m enrichctl`."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) and bad usage (2) return instead of exiting
        return int(exc.code or 0)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print(f"enrichctl {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# --------------------------------------------------------------------------- local
def _cmd_local(args: argparse.Namespace) -> int:
    from rich.console import Console

    from enrichctl.local_run.options import LocalRunError, LocalRunOptions
    from enrichctl.local_run.runner import run_nights
    from enrichctl.run_view import RunView

    options = LocalRunOptions(
        rows=args.rows,
        max_concurrency=args.max_concurrency,
        api_latency_ms=args.api_latency_ms,
        api_fail_rate=args.api_fail_rate,
        api_fail_status=args.api_fail_status,
        retry_waits=args.retry_waits,
        output_dir=args.output_dir,
        snowflake_secret_file=args.snowflake_secret_file,
        api_url=args.api_url,
        scheduled_time=args.scheduled_time,
        nights=args.nights,
        full=args.full,
        refresh_after_days=args.refresh_after_days,
    )
    try:
        options.validate()  # before any output: bad usage prints one line and nothing else
    except LocalRunError as exc:
        print(f"enrichctl local: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    console = Console(file=sys.stdout, highlight=False)
    view = None if args.json else RunView(console)
    if view:
        console.print("[bold]enrichctl local[/]: the synthesized state machine, under moto")
    stdout = sys.stdout  # the run redirects sys.stdout to lambda.log while it goes

    def on_event(kind: str, value: Any) -> None:
        if view:
            view.on_event(kind, value)
        elif kind == "night_done":  # one line per night as it ends (a long loop streams)
            print(json.dumps(value.summary()), file=stdout, flush=True)

    started = time.monotonic()
    try:
        nights = run_nights(options, on_event=on_event)
    except LocalRunError as exc:
        if view:
            view.stop()
        print(f"enrichctl local: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # one line, not a traceback, for an operator
        if view:
            view.stop()
        print(f"enrichctl local: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if view:
        view.stop()
        view.show_report(nights.last, time.monotonic() - started, nights=nights)
    # The exit code is the last night's: a loop that heals (night 2 re-pulls what night 1
    # failed) ends 0, one that breaks on its last night ends 1.
    return EXIT_OK if nights.last.status == "SUCCEEDED" else EXIT_FAILED
