"""What the operator commands know about executions of the deployed state machine.

Facts come from the execution itself (DescribeExecution: input, output, error), the tail of
its history (one GetExecutionHistory page, newest first, for runs without an output), the
Distributed Map's item counts (ListMapRuns/DescribeMapRun) and the run's objects in S3
(`runs/<run_id>/failed/`, `runs/<run_id>/batches.json`). The states table and the summary
are the ones `enrichctl local` prints (`enrichctl.local_run.report`, `.history`), fed from AWS
instead.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from enrichctl.local_run.history import (
    event_details,
    execution_history,
    json_or_none,
    state_errors,
    state_rows,
)
from enrichctl.local_run.report import TERMINAL, RunReport, run_id_in
from enrichctl.ops.aws import Deployment, OpsError, aws_errors
from enrichctl.paths import use_repo_code

use_repo_code()  # the S3 key layout lives with the handlers
from enrich_shared.storage import (  # noqa: E402
    batches_key,
    failed_prefix,
    failed_record_keys,
    get_json,
    run_prefix,
)

#: Step Functions redrives an execution only within 14 days of its stop.
REDRIVE_WINDOW = timedelta(days=14)
#: Execution names: 1-80 of letters, digits, - and _.
NAME_MAX = 80
#: The Fail state that means "every batch was attempted, some failed for good".
BATCHES_FAILED = "BatchesFailed"
#: The Fail state that means "a failed batch could not be recorded": the record is incomplete,
#: so neither a retry over it nor a redrive covers the night (see stacks/workflow.py).
FAILURE_RECORD_INCOMPLETE = "FailureRecordIncomplete"
#: The states that call the enrichment API's builders: entering the map means enrichment began.
MAP_STATE_EVENTS = ("MapStateEntered", "MapRunStarted")
#: History events to read, newest first, for the counts of a run that has no output.
TAIL_EVENTS = 12


def utc_stamp(now: datetime | None = None) -> str:
    """`20261125T020000Z`: the time part of execution names."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def new_execution_name(prefix: str, now: datetime | None = None) -> str:
    """`<prefix>-<UTC time>-<6 hex>`: unique, sortable, and says who started it."""
    return f"{prefix}-{utc_stamp(now)}-{secrets.token_hex(3)}"


def retry_execution_name(original: str, now: datetime | None = None) -> str:
    """`retry-of-<original name>-<UTC time>`, shortened to Step Functions' 80 characters."""
    suffix = f"-{utc_stamp(now)}"
    head = re.sub(r"[^A-Za-z0-9_-]", "-", f"retry-of-{original}")
    return head[: NAME_MAX - len(suffix)] + suffix


def _seconds(start: Any, end: Any) -> float | None:
    if start is None:
        return None
    end = end or datetime.now(UTC)
    try:
        return max(0.0, (end - start).total_seconds())
    except TypeError:
        return None


# --------------------------------------------------------------------------- describing
def describe(dep: Deployment, name_or_arn: str) -> dict[str, Any]:
    """DescribeExecution for a name or ARN; an unknown one is one clear error line."""
    with aws_errors(dep.target, execution=name_or_arn):
        arn = dep.execution_arn(name_or_arn)
        return dep.sfn.describe_execution(executionArn=arn)


def history(dep: Deployment, arn: str, *, newest_first: int | None = None) -> list[dict[str, Any]]:
    """The execution's events in order; with `newest_first=N`, only its last N (one call)."""
    with aws_errors(dep.target, execution=arn):
        return execution_history(dep.sfn, arn, newest_first=newest_first)


@dataclass
class Counts:
    """IDs, batches and failed batches of a run, where known (None: not reached)."""

    ids: int | None = None
    invalid_ids: int | None = None
    duplicate_ids: int | None = None
    batches: int | None = None
    failed_batches: int | None = None
    dry_run: bool = False
    #: QueryIds' IDs left out as fresh; LoadResults' IDs recorded OK (`$.loaded.ids_ok`).
    skipped_fresh_ids: int | None = None
    loaded_ids: int | None = None

    def absorb(self, payload: Any) -> None:
        """Take what a step's input/output tells (QueryResult, BuildResult, judged state)."""
        if not isinstance(payload, dict):
            return
        for attr, key in (
            ("ids", "ids_count"),
            ("invalid_ids", "invalid_count"),
            ("duplicate_ids", "duplicate_count"),
            ("batches", "batch_count"),
            ("skipped_fresh_ids", "skipped_fresh_ids"),
        ):
            if getattr(self, attr) is None and isinstance(payload.get(key), int):
                setattr(self, attr, payload[key])
        failed = payload.get("failed")
        if (
            self.failed_batches is None
            and isinstance(failed, dict)
            and isinstance(failed.get("count"), int)
        ):
            self.failed_batches = failed["count"]
        loaded = payload.get("loaded")
        if (
            self.loaded_ids is None
            and isinstance(loaded, dict)
            and isinstance(loaded.get("ids_ok"), int)
        ):
            self.loaded_ids = loaded["ids_ok"]
        self.dry_run = self.dry_run or payload.get("dry_run") is True


def counts_from_events(events: list[dict[str, Any]]) -> Counts:
    """Counts from the newest step payloads in `events` (newest wins)."""
    counts = Counts()
    for event in reversed(events):
        details = event_details(event)
        for key in ("output", "input"):
            counts.absorb(json_or_none(details.get(key)))
    return counts


@dataclass
class RunFacts:
    """One line of `enrichctl status`."""

    name: str
    arn: str
    status: str
    trigger: str
    run_id: str
    start: datetime | None
    stop: datetime | None
    counts: Counts
    error: str | None = None
    cause: str | None = None
    retry_of: str | None = None
    redrive_count: int = 0

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to stop (to now while it runs)."""
        return _seconds(self.start, self.stop)


def trigger_of(run_input: dict[str, Any], name: str) -> str:
    """schedule, manual or retry: the input's `trigger`, else guessed from the name."""
    trigger = run_input.get("trigger")
    if isinstance(trigger, str) and trigger:
        return trigger
    if run_input.get("retry_of_run_id"):
        return "retry"
    if name.startswith("scheduled-"):
        return "schedule"
    return "manual" if name.startswith("manual-") else "-"


def run_facts(
    dep: Deployment, described: dict[str, Any], events: list[dict[str, Any]] | None = None
) -> RunFacts:
    """Facts of one execution from its description and `events` (its history, if at hand).

    Without `events`, a run that has no output (failed, aborted) costs one more call: the
    last TAIL_EVENTS events of its history, where its latest step payloads are.
    """
    run_input = json_or_none(described.get("input")) or {}
    name = str(described.get("name") or described["executionArn"].rsplit(":", 1)[-1])
    counts = counts_from_events(events or [])
    counts.absorb(json_or_none(described.get("output")))
    if events is None and counts.ids is None and described["status"] != "RUNNING":
        tail = history(dep, described["executionArn"], newest_first=TAIL_EVENTS)
        counts = counts_from_events(tail)
    if described["status"] == "SUCCEEDED" and counts.failed_batches is None:
        counts.failed_batches = 0  # a run that succeeded has no failed batch, by definition
    counts.dry_run = counts.dry_run or run_input.get("dry_run") is True
    return RunFacts(
        name=name,
        arn=described["executionArn"],
        status=str(described["status"]),
        trigger=trigger_of(run_input, name),
        run_id=run_id_in(run_input, name),
        start=described.get("startDate"),
        stop=described.get("stopDate"),
        counts=counts,
        error=described.get("error"),
        cause=described.get("cause"),
        retry_of=run_input.get("retry_of_run_id"),
        redrive_count=int(described.get("redriveCount", 0) or 0),
    )


def recent_runs(dep: Deployment, last: int) -> list[RunFacts]:
    """The `last` most recent executions, newest first (1 + N calls, + 1 per failed run)."""
    with aws_errors(dep.target):
        pages = dep.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=dep.state_machine_arn,
            PaginationConfig={"MaxItems": last, "PageSize": min(last, 1000)},
        )
        listed = [execution for page in pages for execution in page["executions"]]
        listed.sort(key=lambda e: e["startDate"], reverse=True)
        return [run_facts(dep, describe(dep, e["executionArn"])) for e in listed[:last]]


# --------------------------------------------------------------------------- one run in full
@dataclass
class MapRunCounts:
    """Item counts of one Distributed Map run (DescribeMapRun)."""

    arn: str
    status: str
    total: int
    succeeded: int
    failed: int
    running: int
    pending: int

    @property
    def done(self) -> int:
        """Items finished either way."""
        return max(0, self.total - self.running - self.pending)


def map_runs(dep: Deployment, arn: str) -> list[MapRunCounts]:
    """The Distributed Map runs of an execution with their item counts."""
    found: list[MapRunCounts] = []
    with aws_errors(dep.target, execution=arn):
        for run in dep.sfn.list_map_runs(executionArn=arn).get("mapRuns", []):
            described = dep.sfn.describe_map_run(mapRunArn=run["mapRunArn"])
            items = described.get("itemCounts", {})
            found.append(
                MapRunCounts(
                    arn=run["mapRunArn"],
                    status=str(described.get("status", "")),
                    total=int(items.get("total", 0)),
                    succeeded=int(items.get("succeeded", 0)),
                    failed=int(items.get("failed", 0))
                    + int(items.get("timedOut", 0))
                    + int(items.get("aborted", 0)),
                    running=int(items.get("running", 0)),
                    pending=int(items.get("pending", 0)),
                )
            )
    return found


@dataclass
class RunDetail:
    """Everything `show` and `run --wait` print about one execution."""

    facts: RunFacts
    report: RunReport
    errors: dict[str, str]
    map_runs: list[MapRunCounts]
    failed: list[dict[str, Any]] = field(default_factory=list)


def failure_record(dep: Deployment, run_id: str) -> list[dict[str, Any]]:
    """The run's failed batches from `runs/<run_id>/failed/` (batch_id, ids, error)."""
    records: list[dict[str, Any]] = []
    with aws_errors(dep.target):
        for key in failed_record_keys(dep.bucket, run_id, dep.s3):  # the Lambdas' listing
            record = get_json(dep.bucket, key, client=dep.s3)
            record.setdefault("batch_id", key.rsplit("/", 1)[-1].removesuffix(".json"))
            records.append(record)
    return sorted(records, key=lambda r: str(r["batch_id"]))


def batch_list(dep: Deployment, run_id: str) -> list[dict[str, Any]]:
    """The run's batches (`runs/<run_id>/batches.json`): what was (or would be) sent."""
    with aws_errors(dep.target):
        return list(get_json(dep.bucket, batches_key(run_id), client=dep.s3))


def failure_text(record: dict[str, Any]) -> str:
    """`ErrorName: message` of a failed batch record."""
    error = record.get("error") or {}
    cause = json_or_none(error.get("Cause")) if isinstance(error, dict) else None
    message = cause.get("errorMessage") if isinstance(cause, dict) else error.get("Cause")
    name = error.get("Error", "error") if isinstance(error, dict) else "error"
    return f"{name}: {str(message or '').strip().splitlines()[0] if message else ''}".rstrip(": ")


def detail(dep: Deployment, described: dict[str, Any]) -> RunDetail:
    """The full picture of one execution: history, map counts, failure record."""
    arn = described["executionArn"]
    events = history(dep, arn)
    facts = run_facts(dep, described, events)
    rows, transitions = state_rows(events)  # the parent's; children are Express
    started = any(e["type"] in MAP_STATE_EVENTS for e in events)
    maps = map_runs(dep, arn) if started else []
    failed = failure_record(dep, facts.run_id) if started else []
    counts = facts.counts
    report = RunReport(
        status=facts.status,
        run_id=facts.run_id,
        execution_arn=arn,
        error=facts.error,
        cause=facts.cause,
        ids=counts.ids or 0,
        invalid_ids=counts.invalid_ids or 0,
        duplicate_ids=counts.duplicate_ids or 0,
        batches=counts.batches or 0,
        failed_batches=len(failed),
        failed_batch_ids=[str(r["batch_id"]) for r in failed],
        # Children are Express executions: their attempts are not in this history; each
        # processed map item is one batch sent at least once.
        http_requests=sum(m.done for m in maps),
        state_transitions=transitions,
        duration_s=facts.duration_s or 0.0,
        output_dir=f"s3://{dep.bucket}/{run_prefix(facts.run_id)}",
        states=rows,
        history=events,
        output=json_or_none(described.get("output")),
        loaded_ids=counts.loaded_ids or 0,
        skipped_fresh_ids=counts.skipped_fresh_ids or 0,
    )
    return RunDetail(facts, report, state_errors(events), maps, failed)


# --------------------------------------------------------------------------- starting, following
def start_run(
    dep: Deployment, *, limit: int | None = None, dry_run: bool = False, full: bool = False
) -> tuple[str, str, dict[str, Any]]:
    """Start a manual run now; return (name, ARN, input). `full` ignores the state table."""
    name = new_execution_name("manual")
    run_input: dict[str, Any] = {"run_id": name, "trigger": "manual"}
    if limit is not None:
        run_input["limit"] = limit
    if dry_run:
        run_input["dry_run"] = True
    if full:
        run_input["full"] = True
    with aws_errors(dep.target):
        arn = dep.sfn.start_execution(
            stateMachineArn=dep.state_machine_arn, name=name, input=json.dumps(run_input)
        )["executionArn"]
    return name, arn, run_input


def follow(
    dep: Deployment,
    arn: str,
    *,
    poll_s: float,
    on_progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Poll until the execution ends; report the map's (done, total) batches as it goes.

    Per poll: DescribeExecution, plus ListMapRuns until the map has started, then
    DescribeMapRun. Returns the final DescribeExecution.
    """
    import time

    sleep = sleep or time.sleep
    map_arn: str | None = None
    with aws_errors(dep.target, execution=arn):
        while True:
            described = dep.sfn.describe_execution(executionArn=arn)
            if on_progress is not None:
                map_arn = _report_progress(dep, arn, map_arn, on_progress)
            if described["status"] in TERMINAL:
                return described
            sleep(poll_s)


def _report_progress(
    dep: Deployment, arn: str, map_arn: str | None, on_progress: Callable[[int, int], None]
) -> str | None:
    """One progress update; returns the map run's ARN once known.

    The bar is cosmetic: a failed map-run lookup skips one update instead of ending the
    follow (moto answers ListMapRuns with an error until its worker has started).
    """
    try:
        if map_arn is None:
            listed = dep.sfn.list_map_runs(executionArn=arn).get("mapRuns", [])
            map_arn = listed[0]["mapRunArn"] if listed else None
        if map_arn is not None:
            items = dep.sfn.describe_map_run(mapRunArn=map_arn).get("itemCounts", {})
            total = int(items.get("total", 0))
            waiting = int(items.get("running", 0)) + int(items.get("pending", 0))
            on_progress(max(0, total - waiting), total)
    except Exception:  # the bar is cosmetic, see the docstring
        return map_arn
    return map_arn


# --------------------------------------------------------------------------- retry
@dataclass
class RetryPlan:
    """What `enrichctl retry` will do: `redrive` the execution, or `rerun` its failures."""

    action: str
    reason: str
    execution_arn: str
    name: str | None = None
    run_input: dict[str, Any] | None = None
    batches: int = 0
    ids: int = 0


def plan_retry(
    dep: Deployment, described: dict[str, Any], now: datetime | None = None
) -> RetryPlan:
    """Decide how to send again only what failed, or raise `OpsError` saying why not."""
    now = now or datetime.now(UTC)
    arn = described["executionArn"]
    name = str(described.get("name") or arn.rsplit(":", 1)[-1])
    status = str(described["status"])
    run_input = json_or_none(described.get("input")) or {}
    run_id = run_id_in(run_input, name)
    if status in ("RUNNING", "PENDING_REDRIVE"):
        raise OpsError(f"refused: {name} is still {status}; wait for it (`enrichctl show {name}`)")
    if status == "SUCCEEDED":
        raise OpsError(f"refused: {name} SUCCEEDED; there is nothing to retry")
    if described.get("error") == FAILURE_RECORD_INCOMPLETE:
        raise OpsError(
            f"refused: {name} ended {FAILURE_RECORD_INCOMPLETE}: a failed batch could not be "
            f"written to s3://{dep.bucket}/{failed_prefix(run_id)}, so the failure record "
            "misses IDs; fix S3 access, then start a new run for the whole night with "
            "`enrichctl run`"
        )
    if described.get("error") == BATCHES_FAILED:
        records = failure_record(dep, run_id)
        if not records:
            raise OpsError(
                f"refused: nothing to retry; the failure record s3://{dep.bucket}/"
                f"{failed_prefix(run_id)} of {name} is empty (run data expires after the "
                "stack's retention.runDataDays): start a fresh run with `enrichctl run`"
            )
        new_name = retry_execution_name(name, now)
        return RetryPlan(
            action="rerun",
            reason=f"{len(records)} batch(es) failed after every retry",
            execution_arn=arn,
            name=new_name,
            run_input={"run_id": new_name, "trigger": "retry", "retry_of_run_id": run_id},
            batches=len(records),
            ids=sum(len(r.get("ids", [])) for r in records),
        )
    # Failed before (or outside) the batches: resume it where it stopped.
    if described.get("redriveStatus") == "NOT_REDRIVABLE":
        why = described.get("redriveStatusReason") or "Step Functions says it is not redrivable"
        raise OpsError(f"refused: {name} cannot be redriven ({why}); start a fresh `enrichctl run`")
    stopped = described.get("stopDate")
    if stopped is not None and now - stopped > REDRIVE_WINDOW:
        days = (now - stopped).days
        raise OpsError(
            f"refused: {name} is too old to redrive (stopped {days} days ago; Step Functions "
            f"redrives only within {REDRIVE_WINDOW.days} days): start a fresh run with "
            "`enrichctl run`"
        )
    error = described.get("error") or status
    return RetryPlan(
        action="redrive",
        reason=f"{status} with {error} before its batches were judged",
        execution_arn=arn,
    )


def execute_retry(dep: Deployment, plan: RetryPlan) -> str:
    """Carry out a plan; return the ARN of the execution that now runs."""
    with aws_errors(dep.target, execution=plan.execution_arn):
        if plan.action == "redrive":
            dep.sfn.redrive_execution(executionArn=plan.execution_arn)
            return plan.execution_arn
        return dep.sfn.start_execution(
            stateMachineArn=dep.state_machine_arn,
            name=plan.name,
            input=json.dumps(plan.run_input),
        )["executionArn"]
