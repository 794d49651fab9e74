"""What is known about a finished execution: its report, the `--json` summary, run IDs.

Shared by `enrichctl local` (filled from moto and the in-process handlers) and the operator
commands `show`/`run --wait` (`enrichctl.ops.executions`, filled from AWS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from enrichctl.local_run.moto_hooks import Invocation, RetryWait
from enrichctl.paths import use_repo_code

#: Keys of the `--json` summary of a night, in order: a contract with scripts that read
#: `enrichctl local --json` (docs/local-run.md); `loaded_ids` and `skipped_fresh_ids`
#: came last, with the incremental pull and the results loading.
SUMMARY_KEYS = (
    "status",
    "ids",
    "invalid_ids",
    "batches",
    "failed_batches",
    "http_requests",
    "state_transitions",
    "duration_s",
    "output_dir",
    "loaded_ids",
    "skipped_fresh_ids",
)
#: Execution statuses after which nothing changes any more.
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@dataclass
class StateRow:
    """One line of the states table."""

    name: str
    status: str
    attempts: int
    duration_s: float


@dataclass
class RunReport:
    """Everything known about one finished execution."""

    status: str
    run_id: str
    execution_arn: str
    error: str | None
    cause: str | None
    ids: int
    invalid_ids: int
    duplicate_ids: int
    batches: int
    failed_batches: int
    failed_batch_ids: list[str]
    http_requests: int
    state_transitions: int
    duration_s: float
    output_dir: str | None
    states: list[StateRow] = field(default_factory=list)
    retry_waits: list[RetryWait] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    #: Traceback of the thread failure that stopped the run (error INTERNAL_ERROR), if any.
    internal_error: str | None = None
    #: IDs LoadResults recorded in the state table as OK for this run (its `ids_ok`).
    loaded_ids: int = 0
    #: IDs the incremental query left out because they were enriched recently (QueryIds).
    skipped_fresh_ids: int = 0

    def summary(self) -> dict[str, Any]:
        """The one-object summary printed by `--json` (exactly SUMMARY_KEYS)."""
        values = {
            "status": self.status,
            "ids": self.ids,
            "invalid_ids": self.invalid_ids,
            "batches": self.batches,
            "failed_batches": self.failed_batches,
            "http_requests": self.http_requests,
            "state_transitions": self.state_transitions,
            "duration_s": round(self.duration_s, 2),
            "output_dir": self.output_dir,
            "loaded_ids": self.loaded_ids,
            "skipped_fresh_ids": self.skipped_fresh_ids,
        }
        return {key: values[key] for key in SUMMARY_KEYS}


def run_id_in(run_input: dict[str, Any], execution_name: str) -> str:
    """The run ID the pipeline gives an execution with this input (QueryIds' rule,
    `enrich_shared.models.run_id_of`: run_id, else from scheduled_time, else the name).

    Falls back to the execution name when the input is unusable (that run failed in
    QueryIds, and its name is what an operator looks for).
    """
    use_repo_code()
    from enrich_shared.errors import InvalidInputError
    from enrich_shared.models import run_id_of

    try:
        return run_id_of(run_input, execution_name)
    except InvalidInputError:
        return execution_name


def default_run_id() -> str:
    """`local-<UTC timestamp>`: unique enough for runs on one machine."""
    return "local-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
