"""Entry points of `enrichctl run|status|show|retry|smoke|graph` (registered in `enrichctl.cli`).

Each `cmd_<name>(args) -> int` prints for a person (rich tables) and returns the exit code:
0 done (for `run --wait`/`retry --wait`: the run SUCCEEDED), 1 the run FAILED, 2 a problem
the operator must fix (no credentials, stack not deployed, unknown execution, a refused
retry), said in one line on stderr. AWS is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enrichctl.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from enrichctl.run_view import RunView

#: Seconds between polls of a run being followed (tests set it lower).
POLL_SECONDS = 5.0
#: Batches listed by `run --dry-run` (the rest are in S3).
DRY_RUN_SHOWN = 10
#: IDs shown per failed batch by `show` without --ids.
IDS_SHOWN = 5


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    """--profile, --region and --stack (defaults: the boto3 chain and the CDK stack name)."""
    parser.add_argument("--profile", metavar="NAME", help="AWS profile (default: boto3's chain)")
    parser.add_argument("--region", metavar="REGION", help="AWS region (default: the profile's)")
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="CloudFormation stack of the pipeline (default: $ENRICHCTL_STACK or ImdbEnrichment)",
    )


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=True, width=_width())


def _width() -> int | None:
    # Pipes and tests get a fixed width so tables never wrap into unreadable columns.
    return None if sys.stdout.isatty() else 160


def _deployment(args: argparse.Namespace) -> Any:
    from enrichctl.ops.aws import Deployment, Target

    return Deployment(Target.from_args(args))


def _run(command: str, body: Any, args: argparse.Namespace) -> int:
    from enrichctl.ops.aws import OpsError

    try:
        return int(body(args))
    except OpsError as exc:
        print(f"enrichctl {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _when(value: Any) -> str:
    if not isinstance(value, datetime):
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


_COLOURS = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "ABORTED": "red"}


def _status(status: str) -> str:
    return f"[{_COLOURS.get(status, 'yellow')}]{status}[/]"


# --------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    """`enrichctl run [--limit N] [--dry-run] [--full] [--wait]`."""
    return _run("run", _run_body, args)


def _run_body(args: argparse.Namespace) -> int:
    from enrichctl.ops import executions as ex

    dep = _deployment(args)
    console = _console()
    name, arn, run_input = ex.start_run(dep, limit=args.limit, dry_run=args.dry_run, full=args.full)
    what = ", ".join(
        ["dry run" if args.dry_run else "manual"]
        + ([f"limit {args.limit:,}"] if args.limit is not None else [])
        + (["full: state table ignored"] if args.full else [])
    )
    console.print(f"[bold]started[/] {name} ({what})")
    console.print(f"  execution  {arn}")
    console.print(f"  console    {dep.console_url(arn)}")
    if args.dry_run:  # it ends after BuildUrls: waiting costs seconds, and is the point
        described = ex.follow(dep, arn, poll_s=POLL_SECONDS)
        return _dry_run_report(dep, console, described, run_input["run_id"])
    if not args.wait:
        console.print(f"follow it with: enrichctl show {name}   (or run with --wait)")
        return EXIT_OK
    return _wait_and_summarise(dep, console, arn)


def _wait_and_summarise(dep: Any, console: Any, arn: str) -> int:
    """Follow a run with the progress bar, then print `enrichctl local`'s tables."""
    import time

    from enrichctl.ops import executions as ex

    view = RunView(console)  # `enrichctl local`'s progress bar and tables
    started = time.monotonic()
    try:
        described = ex.follow(
            dep,
            arn,
            poll_s=POLL_SECONDS,
            on_progress=lambda done, total: view.on_event("progress", (done, total)),
        )
    finally:
        view.stop()
    run = ex.detail(dep, described)
    view.show_report(run.report, time.monotonic() - started)
    if run.failed:
        console.print(f"retry the failed batches with: enrichctl retry {run.facts.name}")
    return EXIT_OK if described["status"] == "SUCCEEDED" else EXIT_FAILED


def _dry_run_report(dep: Any, console: Any, described: dict[str, Any], run_id: str) -> int:
    from rich.table import Table

    from enrichctl.ops import executions as ex

    facts = ex.run_facts(dep, described, ex.history(dep, described["executionArn"]))
    if described["status"] != "SUCCEEDED":
        console.print(f"{_status(facts.status)} dry run {facts.name}: {facts.error}: {facts.cause}")
        console.print(f"see: enrichctl show {facts.name}")
        return EXIT_FAILED
    counts = facts.counts
    if not counts.batches:
        console.print(
            f"[bold]dry run[/]: nothing would have been sent ({_count(counts.ids)} IDs, "
            f"{_count(counts.invalid_ids)} rejected)"
        )
        return EXIT_OK
    batches = ex.batch_list(dep, run_id)
    console.print(
        f"[bold]dry run[/]: {len(batches):,} requests carrying {_count(counts.ids)} IDs would "
        f"have been sent ({_count(counts.invalid_ids)} invalid and "
        f"{_count(counts.duplicate_ids)} duplicate IDs dropped); nothing was sent"
    )
    table = Table(show_header=True, title_justify="left")
    table.add_column("batch")
    table.add_column("IDs", justify="right")
    table.add_column("URL length", justify="right")
    table.add_column("URL")
    for batch in batches[:DRY_RUN_SHOWN]:
        url = str(batch["url"])
        table.add_row(
            str(batch["batch_id"]),
            str(len(batch["ids"])),
            str(len(url)),
            url if len(url) <= 90 else url[:87] + "...",
        )
    console.print(table)
    if len(batches) > DRY_RUN_SHOWN:
        console.print(f"... and {len(batches) - DRY_RUN_SHOWN:,} more")
    console.print(f"every batch: s3://{dep.bucket}/{ex.batches_key(run_id)}")
    return EXIT_OK


# --------------------------------------------------------------------------- status
def cmd_status(args: argparse.Namespace) -> int:
    """`enrichctl status [--last N]`."""
    return _run("status", _status_body, args)


def _status_body(args: argparse.Namespace) -> int:
    from rich.table import Table

    from enrichctl.ops import executions as ex

    dep = _deployment(args)
    runs = ex.recent_runs(dep, args.last)
    console = _console()
    if not runs:
        console.print(f"no runs yet of {dep.state_machine_arn}: start one with `enrichctl run`")
        return EXIT_OK
    table = Table(title=f"Last {len(runs)} runs of {dep.target.stack}", title_justify="left")
    for column, justify in (
        ("started (UTC)", "left"),
        ("execution", "left"),
        ("trigger", "left"),
        ("status", "left"),
        ("duration", "right"),
        ("IDs", "right"),
        ("batches", "right"),
        ("failed", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for run in runs:
        status = _status(run.status)
        if run.redrive_count:
            status += f" (redriven x{run.redrive_count})"
        trigger = run.trigger + (" (dry run)" if run.counts.dry_run else "")
        failed = run.counts.failed_batches
        table.add_row(
            _when(run.start),
            run.name,
            trigger,
            status,
            _duration(run.duration_s),
            _count(run.counts.ids),
            _count(run.counts.batches),
            f"[red]{failed}[/]" if failed else _count(failed),
        )
    console.print(table)
    return EXIT_OK


# --------------------------------------------------------------------------- show
def cmd_show(args: argparse.Namespace) -> int:
    """`enrichctl show EXECUTION [--ids]`."""
    return _run("show", _show_body, args)


def _show_body(args: argparse.Namespace) -> int:
    from rich.table import Table

    from enrichctl.ops import executions as ex

    dep = _deployment(args)
    run = ex.detail(dep, ex.describe(dep, args.execution))
    facts, counts = run.facts, run.facts.counts
    console = _console()
    console.print(f"[bold]{facts.name}[/]  {_status(facts.status)}")
    rows = [
        ("execution", facts.arn),
        ("trigger", facts.trigger + (f" of run {facts.retry_of}" if facts.retry_of else "")),
        ("run id", facts.run_id),
        ("started", _when(facts.start)),
        ("stopped", _when(facts.stop)),
        ("duration", _duration(facts.duration_s)),
        (
            "IDs",
            f"{_count(counts.ids)} ({_count(counts.invalid_ids)} invalid, "
            f"{_count(counts.duplicate_ids)} duplicates dropped)",
        ),
        ("batches", f"{_count(counts.batches)} ({len(run.failed)} failed)"),
    ]
    if facts.redrive_count:
        rows.append(("redriven", f"{facts.redrive_count} time(s)"))
    if facts.error:
        rows.append(("error", f"{facts.error}: {(facts.cause or '').strip()[:300]}"))
    rows.append(("console", dep.console_url(facts.arn)))
    for label, value in rows:
        console.print(f"  {label:<10} {value}", soft_wrap=True)

    timeline = Table(title="States", title_justify="left")
    for column, justify in (
        ("state", "left"),
        ("status", "left"),
        ("attempts", "right"),
        ("duration", "right"),
        ("error", "left"),
    ):
        timeline.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in run.report.states:
        timeline.add_row(
            row.name,
            _status(row.status),
            str(row.attempts),
            f"{row.duration_s:.2f}s",
            run.errors.get(row.name, ""),
        )
        if row.name == "EnrichBatches":
            for m in run.map_runs:
                timeline.add_row(
                    "  > batches",
                    m.status,
                    "",
                    "",
                    f"{m.total} items: {m.succeeded} done, {m.failed} failed, "
                    f"{m.running + m.pending} open (failures are recorded, see below)",
                )
    console.print(timeline)

    if run.failed:
        failed = Table(title=f"Failed batches ({len(run.failed)})", title_justify="left")
        failed.add_column("batch")
        failed.add_column("error")
        failed.add_column("IDs", justify="right")
        failed.add_column("IDs" if args.ids else f"first {IDS_SHOWN} IDs")
        for record in run.failed:
            ids = [str(i) for i in record.get("ids", [])]
            shown = ids if args.ids else ids[:IDS_SHOWN]
            more = "" if len(shown) == len(ids) else f" (+{len(ids) - len(shown)})"
            failed.add_row(
                str(record["batch_id"]),
                ex.failure_text(record),
                str(len(ids)),
                " ".join(shown) + more,
            )
        console.print(failed)
        console.print(f"failure record: s3://{dep.bucket}/{ex.failed_prefix(facts.run_id)}")
    if facts.status not in ("SUCCEEDED", "RUNNING", "PENDING_REDRIVE"):
        console.print(f"retry what failed with: enrichctl retry {facts.name}")
    return EXIT_OK


# --------------------------------------------------------------------------- retry
def cmd_retry(args: argparse.Namespace) -> int:
    """`enrichctl retry EXECUTION [--wait]`."""
    return _run("retry", _retry_body, args)


def _retry_body(args: argparse.Namespace) -> int:
    from enrichctl.ops import executions as ex

    dep = _deployment(args)
    described = ex.describe(dep, args.execution)
    plan = ex.plan_retry(dep, described)
    console = _console()
    original = str(described.get("name"))
    if plan.action == "redrive":
        console.print(f"[bold]redriving[/] {original}: {plan.reason}")
        console.print("  Step Functions resumes it at the state that failed (same run ID)")
    else:
        console.print(
            f"[bold]retrying[/] {plan.batches} failed batch(es) ({plan.ids:,} IDs) of "
            f"{original} as new run {plan.name}"
        )
    arn = ex.execute_retry(dep, plan)
    console.print(f"  execution  {arn}")
    console.print(f"  console    {dep.console_url(arn)}")
    if not args.wait:
        name = plan.name or original
        console.print(f"follow it with: enrichctl show {name}   (or retry with --wait)")
        return EXIT_OK
    return _wait_and_summarise(dep, console, arn)


# --------------------------------------------------------------------------- smoke
def cmd_smoke(args: argparse.Namespace) -> int:
    """`enrichctl smoke [--no-run] [--json]`: exit 0 if every check passed, 1 if one failed."""
    return _run("smoke", _smoke_body, args)


def _smoke_body(args: argparse.Namespace) -> int:
    import json

    from enrichctl.ops import smoke

    dep = _deployment(args)
    dep.outputs  # noqa: B018  (a stack that cannot be read at all ends here: exit 2)
    console = None if args.json else _console()
    if console is not None:
        console.print(f"[bold]enrichctl smoke[/]: stack {dep.target.stack} in {dep.region}")
    checks: list[Any] = []
    for check in smoke.static_checks(dep):
        checks.append(check)
        if console is not None:
            _print_check(console, check)
    if not args.no_run:
        check = smoke.guarded("dry run", lambda: _smoke_dry_run(dep, console))
        checks.append(check)
        if console is not None:
            _print_check(console, check)
    failed = [c for c in checks if not c.ok]
    if console is None:
        print(
            json.dumps(
                {
                    "stack": dep.target.stack,
                    "region": dep.region,
                    "ok": not failed,
                    "checks": [c.as_dict() for c in checks],
                }
            )
        )
    elif failed:
        console.print(f"[red]{len(failed)} of {len(checks)} checks failed[/]")
    else:
        skipped = " (dry run skipped: --no-run)" if args.no_run else ""
        console.print(f"[green]all {len(checks)} checks passed[/]{skipped}")
    return EXIT_FAILED if failed else EXIT_OK


def _print_check(console: Any, check: Any) -> None:
    mark = "[green]ok  [/]" if check.ok else "[red]FAIL[/]"
    line = f"{mark} {check.name}: {check.detail}"
    if check.fix:
        line += f" -> fix: {check.fix}"
    console.print(line, soft_wrap=True)


def _smoke_dry_run(dep: Any, console: Any) -> Any:
    """The dry run check, with a spinner and the elapsed time on a terminal."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from enrichctl.ops import smoke

    if console is None:
        return smoke.check_dry_run(dep, poll_s=POLL_SECONDS)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,  # the check's own line replaces it
        disable=not console.is_terminal,
    )

    def started(name: str, arn: str) -> None:
        progress.start()
        progress.add_task(f"dry run {name}", total=None)

    try:
        return smoke.check_dry_run(dep, poll_s=POLL_SECONDS, started=started)
    finally:
        progress.stop()


# --------------------------------------------------------------------------- graph
def cmd_graph(args: argparse.Namespace) -> int:
    """`enrichctl graph [--update-readme | --check] [--readme PATH]`."""
    from enrichctl.local_run.template import SynthError
    from enrichctl.ops.graph import mermaid, readme_diagram, synthesized_definition, update_readme

    try:
        diagram = mermaid(synthesized_definition())
    except SynthError as exc:
        print(f"enrichctl graph: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    readme = Path(args.readme)
    if args.update_readme or args.check:
        if not readme.exists():
            print(f"enrichctl graph: error: {readme} does not exist", file=sys.stderr)
            return EXIT_USAGE
        if args.check:
            if readme_diagram(readme.read_text()) == diagram:
                print(f"{readme}: the diagram matches the synthesized state machine")
                return EXIT_OK
            print(
                f"enrichctl graph: {readme}'s diagram differs from the synthesized state "
                "machine: run `enrichctl graph --update-readme`",
                file=sys.stderr,
            )
            return EXIT_FAILED
        changed = update_readme(readme, diagram)
        print(f"{readme}: diagram {'updated' if changed else 'already up to date'}")
        return EXIT_OK
    sys.stdout.write(diagram)
    return EXIT_OK
