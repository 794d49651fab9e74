"""Events and results of the pipeline steps.

Every step parses its event into one of these models first (clear `InvalidInputError`
on bad input) and returns `to_dict()` of a result model. Results stay small: counts,
S3 keys and statuses; ID lists travel through S3 (see `storage.py`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from enrich_shared.errors import InvalidInputError

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,119}$")
#: The largest `limit` a run accepts; far above any real night, it only stops typos.
MAX_LIMIT = 100_000_000
#: Keys a run's input (the state machine input) may carry.
RUN_INPUT_KEYS = frozenset(
    {"run_id", "trigger", "scheduled_time", "limit", "dry_run", "retry_of_run_id", "full"}
)
TRIGGERS = frozenset({"schedule", "manual", "retry"})
#: Run IDs of scheduled nights: `scheduled-` + the scheduled time in UTC, to the second.
SCHEDULED_RUN_ID_PREFIX = "scheduled-"
SCHEDULED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _as_dict(event: Any, what: str) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got {type(event).__name__}")
    return event


def validate_run_id(value: Any, field_name: str = "run_id") -> str:
    """Return `value` if it is a usable run ID (it becomes part of S3 keys)."""
    if not isinstance(value, str) or not RUN_ID_PATTERN.match(value):
        raise InvalidInputError(
            f"{field_name}={value!r} is not a valid run ID: use 1-120 characters from "
            "letters, digits and . _ : + - (starting with a letter or digit)"
        )
    return value


def scheduled_run_id(scheduled_time: Any) -> str:
    """`scheduled-<UTC time>` for a Scheduler's `<aws.scheduler.scheduled-time>` value.

    Scheduler passes the keyword only as a whole JSON value (its documented use), so the
    run ID is derived here rather than in the schedule's input. Any ISO 8601 time with a
    zone is accepted and normalized to UTC (`2026-11-25T02:00:00Z`), so every start of
    the same night, however spelled, gets the same run ID and QueryIds' claim stops repeats.
    """
    if isinstance(scheduled_time, str):
        try:
            when = datetime.fromisoformat(scheduled_time.strip())
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            utc = when.astimezone(UTC).strftime(SCHEDULED_TIME_FORMAT)
            return SCHEDULED_RUN_ID_PREFIX + utc
    raise InvalidInputError(
        f"scheduled_time={scheduled_time!r} is not an ISO 8601 time with a zone (e.g. "
        "2026-11-25T02:00:00Z), so no run ID can be derived from it. The schedule passes "
        "<aws.scheduler.scheduled-time> there; for a manual start give run_id instead"
    )


def run_id_of(run_input: dict[str, Any], execution_name: Any) -> str:
    """The run ID of an execution: `run_id` if given, else derived from `scheduled_time`,
    else the execution's name. Raises `InvalidInputError` when that is not usable."""
    if run_input.get("run_id"):
        return validate_run_id(run_input["run_id"])
    if "scheduled_time" in run_input:
        return scheduled_run_id(run_input["scheduled_time"])
    return validate_run_id(execution_name)


def _require(event: dict[str, Any], key: str, kind: type, what: str) -> Any:
    if key not in event:
        raise InvalidInputError(f"{what} is missing the field {key!r}")
    value = event[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInputError(
            f"{what} field {key!r} must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


@dataclass(frozen=True)
class RunRequest:
    """A run as the state machine was asked for it (schedule, manual start or retry).

    Built from `{"input": <execution input>, "execution_id": ..., "execution_name": ...}`,
    the payload the state machine sends to the first step of a run.
    """

    run_id: str
    execution_id: str
    trigger: str = "manual"
    limit: int | None = None
    dry_run: bool = False
    retry_of_run_id: str | None = None
    #: Ignore the state table for this run: pull every ID (incremental pull only).
    full: bool = False

    @classmethod
    def from_event(cls, event: Any) -> RunRequest:
        """Validate the payload; unknown input keys and bad values are `InvalidInputError`."""
        event = _as_dict(event, "step event")
        run_input = _as_dict(event.get("input", {}), "execution input")
        unknown = sorted(set(run_input) - RUN_INPUT_KEYS)
        if unknown:
            raise InvalidInputError(
                f"execution input has unknown field(s) {unknown}; allowed: {sorted(RUN_INPUT_KEYS)}"
            )
        execution_id = _require(event, "execution_id", str, "step event")
        run_id = run_id_of(run_input, event.get("execution_name"))
        trigger = run_input.get("trigger", "manual")
        if trigger not in TRIGGERS:
            raise InvalidInputError(f"trigger={trigger!r} must be one of {sorted(TRIGGERS)}")
        limit = run_input.get("limit")
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool):
                raise InvalidInputError(f"limit={limit!r} must be a whole number of rows")
            if not 1 <= limit <= MAX_LIMIT:
                raise InvalidInputError(f"limit={limit} must be between 1 and {MAX_LIMIT:,}")
        dry_run = run_input.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise InvalidInputError(f"dry_run={dry_run!r} must be true or false")
        retry_of = run_input.get("retry_of_run_id")
        if retry_of is not None:
            retry_of = validate_run_id(retry_of, "retry_of_run_id")
        full = run_input.get("full", False)
        if not isinstance(full, bool):
            raise InvalidInputError(f"full={full!r} must be true or false")
        return cls(run_id, execution_id, trigger, limit, dry_run, retry_of, full)


@dataclass(frozen=True)
class QueryResult:
    """What QueryIds returns. `status` is `claimed` (go on) or `already_ran` (stop)."""

    run_id: str
    dry_run: bool
    status: str
    ids_key: str | None = None
    ids_count: int = 0
    invalid_count: int = 0
    duplicate_count: int = 0
    #: IDs the incremental query left out because they were enriched recently.
    skipped_fresh_ids: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The step's JSON result."""
        return asdict(self)

    @classmethod
    def from_event(cls, event: Any) -> QueryResult:
        """Parse a QueryIds result handed on to the next step."""
        event = _as_dict(event, "step event")
        return cls(
            run_id=validate_run_id(event.get("run_id")),
            dry_run=bool(event.get("dry_run", False)),
            status=_require(event, "status", str, "QueryIds result"),
            ids_key=_require(event, "ids_key", str, "QueryIds result"),
            ids_count=_require(event, "ids_count", int, "QueryIds result"),
            invalid_count=int(event.get("invalid_count", 0)),
            duplicate_count=int(event.get("duplicate_count", 0)),
            skipped_fresh_ids=int(event.get("skipped_fresh_ids", 0)),
        )


@dataclass(frozen=True)
class Batch:
    """One request's worth of IDs: an item of `batches.json` and InvokeEnrich's event."""

    batch_id: str
    url: str
    ids: list[str] = field(default_factory=list)
    #: Set on Map items (the state machine adds it); absent in `batches.json`.
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The batch as stored in `batches.json`."""
        return {"batch_id": self.batch_id, "url": self.url, "ids": self.ids}

    @classmethod
    def from_event(cls, event: Any) -> Batch:
        """Parse a batch item; the Map state passes it through unchanged."""
        event = _as_dict(event, "batch event")
        ids = _require(event, "ids", list, "batch event")
        if not all(isinstance(i, str) for i in ids):
            raise InvalidInputError("batch event field 'ids' must be a list of strings")
        return cls(
            batch_id=_require(event, "batch_id", str, "batch event"),
            url=_require(event, "url", str, "batch event"),
            ids=ids,
            run_id=validate_run_id(event["run_id"]) if "run_id" in event else None,
        )


@dataclass(frozen=True)
class BuildResult:
    """What BuildUrls returns."""

    run_id: str
    dry_run: bool
    batches_key: str
    batch_count: int
    ids_count: int

    def to_dict(self) -> dict[str, Any]:
        """The step's JSON result."""
        return asdict(self)


@dataclass(frozen=True)
class EnrichResult:
    """What InvokeEnrich returns for a batch the API accepted."""

    batch_id: str
    http_status: int
    ids_count: int
    elapsed_ms: int

    def to_dict(self) -> dict[str, Any]:
        """The step's JSON result."""
        return asdict(self)


@dataclass(frozen=True)
class FailureCountRequest:
    """CountFailedBatches' event: which run's failure record to count."""

    run_id: str

    @classmethod
    def from_event(cls, event: Any) -> FailureCountRequest:
        """Parse `{"run_id": ...}` (the state machine passes the run's `$.run_id`)."""
        event = _as_dict(event, "CountFailedBatches event")
        return cls(run_id=validate_run_id(event.get("run_id")))


@dataclass(frozen=True)
class FailureCount:
    """What CountFailedBatches returns: the exact number of failed batches of a run.

    The state machine keeps it at `$.failed`; the outcome Choice, the BatchesFailed cause
    and the FailedBatches metric all read `count`.
    """

    count: int
    prefix: str

    def to_dict(self) -> dict[str, Any]:
        """The step's JSON result."""
        return asdict(self)


@dataclass(frozen=True)
class LoadRequest:
    """LoadResults' event: which run's answers and failure records to load into Snowflake.

    The state machine passes the run's state; only `run_id` is read (extra keys ignored).
    """

    run_id: str
    #: When the run started (ISO-8601, the execution's `$$.Execution.StartTime`): the time
    #: of its failed attempts, which carry no time of their own. None: the load's time.
    started_at: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> LoadRequest:
        """Validate the event; a missing or malformed run ID is `InvalidInputError`."""
        event = _as_dict(event, "step event")
        if "run_id" not in event:
            raise InvalidInputError("LoadResults event is missing the field 'run_id'")
        started_at = event.get("started_at")
        if started_at is not None:
            try:
                datetime.fromisoformat(started_at)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"started_at={started_at!r} must be an ISO-8601 time such as "
                    "'2026-12-01T02:00:00Z'"
                ) from None
        return cls(run_id=validate_run_id(event["run_id"]), started_at=started_at)


@dataclass(frozen=True)
class LoadResult:
    """What LoadResults returns: what this invocation changed and the run's outcome per ID.

    `files_loaded` and `results_merged` count this invocation's work (0 on a rerun);
    `ids_ok` / `ids_failed` are the run's IDs recorded in the state table with that
    status (the same on a rerun).
    """

    run_id: str
    files_loaded: int
    results_merged: int
    state_merged: int
    ids_ok: int
    ids_failed: int

    def to_dict(self) -> dict[str, Any]:
        """The step's JSON result."""
        return asdict(self)
