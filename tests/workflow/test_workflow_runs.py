"""The synthesized state machine, run under moto with the real handlers, the embedded
Snowflake and the local enrichment API (see conftest.py). One behaviour per test.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import urlsplit

import pytest

from enrichctl.local_run.runner import SUMMARY_KEYS

IMDB_ID = re.compile(r"tt[0-9]{7,10}")


def valid_unique(values: list[str | None]) -> list[str]:
    """What QueryIds must keep: trimmed IMDB title IDs, first occurrence only."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and IMDB_ID.fullmatch(value.strip()):
            seen.setdefault(value.strip(), None)
    return list(seen)


def source_values(n: int = 200) -> list[str | None]:
    """n valid IDs plus the dirt real EIDR rows carry: blanks, NULLs, junk, duplicates."""
    values: list[str | None] = [f"tt{1_000_000 + i:07d}" for i in range(n)]
    values[5] = f"  {values[5]}  "  # trimmed, still valid
    values += [None, "", "TT0111161", "tt123", "nm0000001", "tt0000001&ids=x", values[0], values[7]]
    return values


def ids_sent_with_200(api) -> Counter:
    return Counter(i for r in api.requests if r.status == 200 for i in r.ids)


def enrich_waits(report, error: str):
    return [w for w in report.retry_waits if w.state == "InvokeEnrich" and w.error == error]


def test_happy_path_every_valid_id_reaches_the_api_once_in_bounded_batches(
    make_pipeline, seed, pipeline_config
):
    values = source_values(200)
    seed(values)
    pipeline, api = make_pipeline()

    report = pipeline.run({"run_id": "happy-1"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    expected = valid_unique(values)
    sent = Counter(i for r in api.requests for i in r.ids)
    assert sent == Counter(expected)  # every valid ID exactly once, nothing else
    assert all(r.status == 200 for r in api.requests)
    limits = pipeline_config.enrichment
    batches = pipeline.read_json("runs/happy-1/batches.json")
    assert len(batches) == len(api.requests) == report.batches
    for batch in batches:
        assert 1 <= len(batch["ids"]) <= limits.max_ids_per_request
        assert len(batch["url"]) <= limits.max_url_length
        assert urlsplit(batch["url"]).netloc == urlsplit(api.base_url).netloc
    assert report.ids == len(expected)
    assert report.invalid_ids == 6  # None, "", "TT0111161", "tt123", "nm0000001", "tt..&ids=x"
    assert report.duplicate_ids == 2
    assert report.failed_batches == 0
    assert report.http_requests == len(api.requests)
    summary = report.summary()
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["status"] == "SUCCEEDED"


def test_transient_503_and_429_recover_through_retry_with_configured_backoff(
    make_pipeline, seed, pipeline_config
):
    values = [f"tt{2_000_000 + i:07d}" for i in range(150)]
    seed(values)
    # The batch holding the first ID gets two 503s, the one holding the last gets a 429.
    pipeline, api = make_pipeline(rules={values[0]: [503, 503], values[-1]: [429]})

    report = pipeline.run({"run_id": "transient-1"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert report.failed_batches == 0
    assert ids_sent_with_200(api) == Counter(values)  # all enriched once in the end
    assert len(api.requests) == report.batches + 3  # exactly the three extra attempts

    retry = pipeline_config.enrichment.retry
    waits = enrich_waits(report, "RetryableEnrichError")
    assert len(waits) == 3
    ceilings = retry.waits()
    for wait in waits:
        assert (wait.interval_seconds, wait.backoff_rate) == (
            retry.interval_seconds,
            retry.backoff_rate,
        )
        assert wait.max_delay_seconds == retry.max_delay_seconds
        assert wait.jitter == "FULL"
        assert wait.ceiling == ceilings[wait.retry_number]
        assert 0 <= wait.seconds <= wait.ceiling  # full jitter draws below the ceiling
        assert not wait.slept
    # Retry numbers per batch: 0, 1 for the double 503; 0 for the 429.
    assert sorted(w.retry_number for w in waits) == [0, 0, 1]


def test_one_batch_always_500_fails_the_run_records_its_ids_and_a_retry_run_recovers(
    make_pipeline, seed
):
    values = [f"tt{3_000_000 + i:07d}" for i in range(200)]
    seed(values)
    broken = {"on": True}
    bad_id = values[100]

    def rule(request):
        return 500 if broken["on"] and bad_id in request.ids else None

    pipeline, api = make_pipeline(rule=rule)

    first = pipeline.run({"run_id": "night-1"})

    assert first.status == "FAILED"
    assert first.error == "BatchesFailed"
    assert "1" in (first.cause or "") and "runs/night-1/failed/" in (first.cause or "")
    batches = pipeline.read_json("runs/night-1/batches.json")
    bad_batch = next(b for b in batches if bad_id in b["ids"])
    records = pipeline.failed_records("night-1")
    assert list(records) == [bad_batch["batch_id"]]
    assert records[bad_batch["batch_id"]]["ids"] == bad_batch["ids"]
    assert records[bad_batch["batch_id"]]["error"]["Error"] == "RetryableEnrichError"
    enriched = ids_sent_with_200(api)
    assert set(enriched) == set(values) - set(bad_batch["ids"])  # every other batch enriched
    assert max(enriched.values()) == 1

    broken["on"] = False
    requests_before = len(api.requests)
    retry = pipeline.run(
        {"run_id": "night-1-retry-1", "trigger": "retry", "retry_of_run_id": "night-1"}
    )

    assert retry.status == "SUCCEEDED", (retry.error, retry.cause)
    retry_requests = api.requests[requests_before:]
    assert [r.ids for r in retry_requests] == [bad_batch["ids"]]
    assert ids_sent_with_200(api) == Counter(values)  # now every ID enriched, once
    assert not any(i.function.startswith("FunctionsQueryIds") for i in retry.invocations)


def test_400_is_rejected_without_retry(make_pipeline, seed):
    values = [f"tt{4_000_000 + i:07d}" for i in range(100)]
    seed(values)
    pipeline, api = make_pipeline(rules={values[0]: 400})

    report = pipeline.run({"run_id": "rejected-1"})

    assert report.status == "FAILED"
    assert report.error == "BatchesFailed"
    rejected = [r for r in api.requests if values[0] in r.ids]
    assert len(rejected) == 1  # asked once, never again
    (record,) = pipeline.failed_records("rejected-1").values()
    assert record["error"]["Error"] == "RejectedEnrichError"
    assert values[0] in record["ids"]
    assert enrich_waits(report, "RejectedEnrichError") == []
    assert [w for w in report.retry_waits if w.state == "InvokeEnrich"] == []


def test_snowflake_unreachable_is_retried_as_configured_then_fails(
    make_pipeline, snowflake, pipeline_config, closed_port
):
    # A short login timeout keeps the test fast; the retry policy is the synthesized one.
    pipeline, api = make_pipeline(
        snowflake_secret=snowflake.secret(port=closed_port),
        env={"SNOWFLAKE_LOGIN_TIMEOUT_S": "1"},
    )

    report = pipeline.run({"run_id": "no-snowflake-1"})

    assert report.status == "FAILED"
    assert report.error == "SnowflakeUnavailableError"
    retry = pipeline_config.snowflake.retry
    query_calls = [i for i in report.invocations if i.function.startswith("FunctionsQueryIds")]
    assert len(query_calls) == retry.max_attempts + 1
    assert {i.error_type for i in query_calls} == {"SnowflakeUnavailableError"}
    waits = [w for w in report.retry_waits if w.error == "SnowflakeUnavailableError"]
    assert [w.ceiling for w in waits] == retry.waits()
    assert all(0 <= w.seconds <= w.ceiling and not w.slept for w in waits)
    assert api.request_count == 0


def test_no_ids_succeeds_without_a_single_api_call(make_pipeline, seed):
    seed([None, "", "not-an-id"])
    pipeline, api = make_pipeline()

    report = pipeline.run({"run_id": "empty-1"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert report.ids == 0
    assert api.request_count == 0
    assert report.http_requests == 0


def scheduler_input(template: dict, scheduled_time: str) -> dict:
    """The synthesized schedule's input as Scheduler sends it: keywords replaced as whole
    values (the only place Scheduler documents replacing them)."""
    (schedule,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    run_input = json.loads(schedule["Properties"]["Target"]["Input"])
    keyword = "<aws.scheduler.scheduled-time>"
    return {k: scheduled_time if v == keyword else v for k, v in run_input.items()}


def test_same_scheduled_time_started_twice_enriches_only_once(
    make_pipeline, seed, pipeline_template
):
    values = [f"tt{5_000_000 + i:07d}" for i in range(80)]
    seed(values)
    pipeline, api = make_pipeline()
    run_input = scheduler_input(pipeline_template, "2026-11-25T02:00:00Z")
    assert "run_id" not in run_input  # derived by QueryIds from scheduled_time

    first = pipeline.run(run_input, name="schedule-attempt-1")
    requests_after_first = api.request_count
    second = pipeline.run(run_input, name="schedule-attempt-2")

    assert first.status == "SUCCEEDED", (first.error, first.cause)
    assert first.run_id == second.run_id == "scheduled-2026-11-25T02:00:00Z"
    assert pipeline.read_json("runs/scheduled-2026-11-25T02:00:00Z/claim.json")
    assert ids_sent_with_200(api) == Counter(values)
    assert second.status == "SUCCEEDED", (second.error, second.cause)
    assert api.request_count == requests_after_first  # the second start enriched nothing
    query = next(i for i in second.invocations if i.function.startswith("FunctionsQueryIds"))
    assert query.result["status"] == "already_ran"


def test_the_definition_that_runs_is_the_synthesized_one_with_only_the_child_rewrite(
    pipeline_template,
):
    from enrichctl.local_run.definition import find_state_machine, local_definition

    local = local_definition(pipeline_template)
    raw = pipeline_template["Resources"][find_state_machine(pipeline_template)]["Properties"][
        "DefinitionString"
    ]
    literal_parts = [p for p in raw["Fn::Join"][1] if isinstance(p, str)]
    text = local.definition.replace(
        '"ExecutionType":"STANDARD"', '"ExecutionType":"EXPRESS"'
    )  # undo the one rewrite (the stack deploys EXPRESS children)
    position = 0
    for part in literal_parts:  # every synthesized character, in order; tokens in between
        found = text.find(part, position)
        assert found >= 0, f"synthesized text missing locally: {part[:80]!r}"
        position = found + len(part)
    assert len(local.rewrites) == 1 and "EnrichBatches" in local.rewrites[0]


@pytest.mark.slow  # ~2 minutes: 1,103 map children under moto
def test_more_than_1000_failed_batches_are_counted_exactly(make_pipeline, seed):
    # ListObjectsV2's KeyCount stops at 1,000: the old ListFailedBatches said 1000 here.
    # One ID per request turns 1,103 rows into 1,103 batches; the API rejects them all.
    from tests.reliability.support import failed_batches_metric

    values = [f"tt{4_000_000 + i:07d}" for i in range(1_103)]
    seed(values)
    pipeline, api = make_pipeline(env={"MAX_IDS_PER_REQUEST": "1"}, rule=lambda request: 400)

    report = pipeline.run({"run_id": "many-failed"})

    assert report.status == "FAILED" and report.error == "BatchesFailed", report.cause
    assert report.batches == report.failed_batches == len(api.requests) == 1_103
    assert (report.cause or "").startswith("1103 batch(es) failed after all retries")
    assert sum(failed_batches_metric()) == 1_103
