"""enrich_shared.models: the run ID of scheduled runs, derived from `scheduled_time`."""

from __future__ import annotations

import pytest

from enrich_shared.errors import InvalidInputError
from enrich_shared.models import RunRequest, scheduled_run_id


def request(**run_input) -> RunRequest:
    return RunRequest.from_event(
        {"input": run_input, "execution_id": "arn:exec", "execution_name": "abc-123"}
    )


@pytest.mark.parametrize(
    ("scheduled_time", "run_id"),
    [
        ("2026-11-25T02:00:00Z", "scheduled-2026-11-25T02:00:00Z"),
        ("2026-11-25T02:00:00+00:00", "scheduled-2026-11-25T02:00:00Z"),
        # Another spelling of the same instant gets the same ID (the claim stops a repeat).
        ("2026-11-25T03:00:00+01:00", "scheduled-2026-11-25T02:00:00Z"),
        ("2026-11-25T02:00:00.000Z", "scheduled-2026-11-25T02:00:00Z"),
    ],
)
def test_scheduled_run_id_is_the_utc_scheduled_time(scheduled_time, run_id):
    assert scheduled_run_id(scheduled_time) == run_id
    assert request(trigger="schedule", scheduled_time=scheduled_time).run_id == run_id


@pytest.mark.parametrize(
    "scheduled_time",
    [
        "<aws.scheduler.scheduled-time>",  # the keyword was not replaced
        "2026-11-25T02:00:00",  # no zone: which night is ambiguous
        "yesterday",
        "",
        1764036000,
        None,
    ],
)
def test_unusable_scheduled_time_is_a_clear_input_error(scheduled_time):
    with pytest.raises(InvalidInputError, match=r"scheduled_time=.* is not an ISO 8601 time"):
        request(trigger="schedule", scheduled_time=scheduled_time)


def test_explicit_run_id_wins_and_the_execution_name_is_the_fallback():
    assert request(run_id="night-7", scheduled_time="2026-11-25T02:00:00Z").run_id == "night-7"
    assert request(trigger="manual").run_id == "abc-123"
