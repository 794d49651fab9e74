"""Starting one execution under moto and waiting for it to end.

moto's interpreter runs the execution, its program and each Map worker in threads; a dead
worker leaves its job open and the execution RUNNING for ever. So the wait also watches for
thread failures (recorded by `moto_hooks`) and stops the run with INTERNAL_ERROR and the
thread's exception instead of waiting for the timeout.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

from enrichctl.local_run.moto_hooks import ThreadFailure
from enrichctl.local_run.options import LocalRunError
from enrichctl.local_run.report import TERMINAL, default_run_id, run_id_in

#: The error of a run stopped because a thread of moto's interpreter (or of ours) died.
INTERNAL_ERROR = "LocalRunInternalError"
INTERNAL_ERROR_FILE = "internal-error.txt"
#: Seconds between DescribeExecution polls (moto answers in-process: cheap).
POLL_SECONDS = 0.05


def execution_start(
    execution_input: dict[str, Any] | None, name: str | None
) -> tuple[str, dict[str, Any]]:
    """The execution's name and input: a schedule-shaped input keeps no run_id (the pipeline
    derives it, as on AWS); any other gets `run_id` (given, the name, or `local-<time>`)."""
    execution_input = dict(execution_input or {})
    if "scheduled_time" in execution_input and not execution_input.get("run_id"):
        run_id = run_id_in(execution_input, name or default_run_id())
    else:
        run_id = execution_input.get("run_id") or name or default_run_id()
        execution_input.setdefault("run_id", run_id)
    return name or re.sub(r"[^A-Za-z0-9_-]", "-", run_id)[:80], execution_input


def start_execution(sfn: Any, state_machine_arn: str, name: str, run_input: dict[str, Any]) -> str:
    """StartExecution; return its ARN."""
    return sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(run_input)
    )["executionArn"]


def wait_for(
    sfn: Any,
    execution_arn: str,
    *,
    timeout_s: float,
    thread_failure: Callable[[], ThreadFailure | None],
    on_progress: Callable[[int, int], None] | None = None,
    known_total: Callable[[], int] = lambda: 0,
) -> dict[str, Any]:
    """Poll until the execution ends (or a thread died: see the module docstring); report Map
    progress as (done, total) batches, the total at least `known_total()` (BuildUrls')."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if on_progress is not None:
            done, total = map_progress(sfn, execution_arn)
            # moto's item count grows while it reads the file; BuildUrls knows the total.
            on_progress(done, max(total, known_total()))
        if described["status"] in TERMINAL:
            return described
        failure = thread_failure()
        if failure is not None:
            return stop_for_internal_error(sfn, described, failure)
        if time.monotonic() > deadline:
            sfn.stop_execution(executionArn=execution_arn, cause="enrichctl local timeout")
            raise LocalRunError(f"the execution did not finish within {timeout_s:.0f} s")
        time.sleep(POLL_SECONDS)


def stop_for_internal_error(
    sfn: Any, described: dict[str, Any], failure: ThreadFailure
) -> dict[str, Any]:
    """Stop the execution; return its description as FAILED with INTERNAL_ERROR."""
    # Short enough for the one-line result (200 characters); the rest goes to the file.
    cause = (
        f"{failure.describe()} in a thread of moto's interpreter (a fault of the local "
        f"runner, not of the pipeline); run stopped, traceback in {INTERNAL_ERROR_FILE}"
    )
    with contextlib.suppress(Exception):  # moto may be past helping; the report is ours
        sfn.stop_execution(
            executionArn=described["executionArn"], error=INTERNAL_ERROR, cause=cause[:256]
        )
    return {
        **described,
        "status": "FAILED",
        "error": INTERNAL_ERROR,
        "cause": cause,
        "internal_error": f"thread {failure.thread!r} died in {failure.where}\n\n"
        + failure.traceback,
    }


def map_progress(sfn: Any, execution_arn: str) -> tuple[int, int]:
    """(done, total) items over the execution's Map runs; (0, 0) before they exist."""
    done = total = 0
    with contextlib.suppress(Exception):
        for run in sfn.list_map_runs(executionArn=execution_arn)["mapRuns"]:
            counts = sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]
            total += counts["total"]
            done += counts["succeeded"] + counts["failed"] + counts["aborted"]
            done += counts["timedOut"]
    return done, total
