"""Reading an execution's event history: the states table and each state's last error.

One copy for both sides: `enrichctl local` (moto) and the operator commands `show` and
`run --wait` (`enrichctl.ops.executions`, AWS) read histories through these functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from enrichctl.local_run.definition import LocalDefinition
from enrichctl.local_run.moto_hooks import Invocation, LocalFunction
from enrichctl.local_run.report import StateRow

#: Events per GetExecutionHistory call (the API's maximum).
HISTORY_PAGE = 1000


def execution_history(
    sfn: Any, arn: str, *, newest_first: int | None = None
) -> list[dict[str, Any]]:
    """The execution's events in order; with `newest_first=N`, only its last N (one call)."""
    paginator = sfn.get_paginator("get_execution_history")
    if newest_first:
        pages = paginator.paginate(
            executionArn=arn, reverseOrder=True, PaginationConfig={"PageSize": newest_first}
        )
        # Only the first page; moto answers it with every event, oldest first (it ignores
        # maxResults and reverseOrder), so the newest N are picked here, not by the API.
        events = list(next(iter(pages), {}).get("events", []))
    else:
        pages = paginator.paginate(executionArn=arn, PaginationConfig={"PageSize": HISTORY_PAGE})
        events = [event for page in pages for event in page["events"]]
    events.sort(key=lambda e: e.get("id", 0))
    return events[-newest_first:] if newest_first else events


def event_details(event: dict[str, Any]) -> dict[str, Any]:
    """The `...EventDetails` part of a history event ({} if it has none)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _span(start: Any, end: Any) -> float:
    try:
        return max(0.0, (end - start).total_seconds())
    except TypeError:
        return 0.0


def state_rows(
    events: list[dict[str, Any]],
    local: LocalDefinition | None = None,
    functions: dict[str, LocalFunction] | None = None,
    invocations: list[Invocation] | None = None,
) -> tuple[list[StateRow], int]:
    """Rows for the parent's states (from the history) and the Map children (from the
    recorded `invocations` of the `functions` in `local`'s Map states, when given).

    Returns the rows and the parent's state transitions (entries + retries).
    """
    rows: dict[str, StateRow] = {}
    entered_at: dict[str, Any] = {}
    last_task_failed: dict[str, bool] = {}
    transitions = 0
    current: str | None = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            current = name
            transitions += 1
            entered_at[name] = event["timestamp"]
            row = rows.setdefault(name, StateRow(name, "RUNNING", 0, 0.0))
            if not kind.startswith("Task"):
                row.attempts += 1
            if kind.startswith(("Fail", "Succeed")):
                row.status = "FAILED" if kind.startswith("Fail") else "SUCCEEDED"
        elif kind == "TaskScheduled" and current in rows:
            rows[current].attempts += 1
            if rows[current].attempts > 1:
                transitions += 1  # a retry is a state transition too (and is billed)
        elif kind in ("TaskFailed", "TaskSucceeded") and current in rows:
            last_task_failed[current] = kind == "TaskFailed"
            if kind == "TaskFailed":
                rows[current].status = "FAILED"
                rows[current].duration_s = _span(entered_at.get(current), event["timestamp"])
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            row = rows.setdefault(name, StateRow(name, "RUNNING", 0, 0.0))
            # A failure handled by Catch exits the state: it was caught, not successful.
            row.status = "CAUGHT" if last_task_failed.get(name) else "SUCCEEDED"
            row.duration_s = _span(entered_at.get(name), event["timestamp"])
        elif kind == "MapStateFailed" and current in rows:
            rows[current].status = "FAILED"

    ordered = list(rows.values())
    if local is not None and functions and invocations:
        _insert_child_rows(ordered, local, functions, invocations)
    return ordered, transitions


def _insert_child_rows(
    ordered: list[StateRow],
    local: LocalDefinition,
    functions: dict[str, LocalFunction],
    invocations: list[Invocation],
) -> None:
    """After each Map state's row: one row per child task, from its recorded invocations
    (the Map children's histories are not in the parent's)."""
    by_arn = {f.arn: f for f in functions.values()}
    for map_name, child_states in _map_children(local.states.get("States", {})):
        position = next((i for i, r in enumerate(ordered) if r.name == map_name), len(ordered))
        extra: list[StateRow] = []
        for child_name, child in child_states.items():
            arn = (child.get("Parameters") or {}).get("FunctionName")
            function = by_arn.get(arn)
            if function is None:
                continue
            calls = [c for c in invocations if c.function == function.name]
            if not calls:
                continue
            failures = sum(1 for c in calls if c.error_type)
            span = max(c.ended for c in calls) - min(c.started for c in calls)
            status = "SUCCEEDED" if failures == 0 else f"{failures} attempts failed"
            extra.append(StateRow(f"{map_name} > {child_name}", status, len(calls), span))
        ordered[position + 1 : position + 1] = extra


def _map_children(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if state.get("Type") == "Map" and processor:
            yield name, processor.get("States", {})


def json_or_none(text: Any) -> Any:
    """The JSON value of a history payload string; None if empty or not JSON."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def state_errors(events: list[dict[str, Any]]) -> dict[str, str]:
    """The last error (name: first line of its cause) each state of the history saw."""
    errors: dict[str, str] = {}
    current: str | None = None
    for event in events:
        details = event_details(event)
        if event["type"].endswith("StateEntered"):
            current = details.get("name")
        elif details.get("error") and current:
            cause = str(details.get("cause") or "").strip()
            parsed = json_or_none(cause)
            if isinstance(parsed, dict) and parsed.get("errorMessage"):
                cause = str(parsed["errorMessage"])  # a Lambda error envelope
            first = cause.splitlines()[0] if cause else ""
            errors[current] = f"{details['error']}: {first}" if first else str(details["error"])
    return errors
