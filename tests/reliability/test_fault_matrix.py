"""Fault matrix: each fault injected into a run of the synthesized state machine (moto, real
handlers, embedded Snowflake, local API), with its final status, retries, the alarm it
trips and the invariant "every valid ID is enriched or listed in the run's failure record,
none twice in the same run". Outcomes are recorded for README (see support.py).
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from typing import Any

import pytest

from enrich_shared.storage import ids_key
from enrichctl.local_run.faults import (
    LAMBDA_TIMEOUT_ERROR,
    execution_timeout,
    lambda_timeouts,
    s3_put_failures,
    snowflake_fetch_failures,
    wait_until,
)
from stacks.config.budget import RECORD_FAILED_RETRY
from tests.reliability.support import (
    alarms,
    api_requests_well_formed,
    assert_invariant,
    failed_batches_metric,
    ledger,
    record_outcome,
    retries,
    status_text,
)

#: 150 IDs -> batches of 70, 70 and 10 (maxIdsPerRequest 70).
N_IDS = 150


def ids(base: int, n: int = N_IDS) -> list[str]:
    return [f"tt{base + i:07d}" for i in range(n)]


def observe(
    case_id: str,
    pipeline: Any,
    api: Any,
    report: Any,
    valid: list[str],
    update: bool,
    *,
    whole_run_failed: bool = False,
    invariant: str | None = None,
    note: str = "",
    timing_dependent_counts: bool = False,
) -> dict[str, Any]:
    """Check the invariant and the API's view, record the row, return it.

    `timing_dependent_counts`: leave out the InvokeEnrich and API request counts (e.g. a run
    cut off by a timeout: how many batches were in flight depends on the machine's speed).
    """
    book = ledger(pipeline, report, valid)
    if invariant is None:
        assert_invariant(book, whole_run_failed=whole_run_failed)
        invariant = "holds: " + (
            "run failed before any batch; nothing enriched or listed, the failed "
            "execution is the record (repeat the whole run)"
            if whole_run_failed
            else book.summary()
        )
    api_requests_well_formed(api)
    metric = failed_batches_metric()
    enrich = pipeline.functions["invoke_enrich"].name
    row = {
        "status": status_text(report),
        "retries": retries(report),
        "alarms": alarms(report, metric),
        "failed_batches_metric": sum(metric) if metric else None,
        "invoke_enrich_calls": sum(1 for i in report.invocations if i.function == enrich),
        "api_requests": api.request_count,
        "invariant": invariant,
        "note": note,
    }
    if timing_dependent_counts:
        del row["invoke_enrich_calls"], row["api_requests"]
    record_outcome(case_id, row, update)
    return row


def enrich_waits(report) -> list:
    return [w for w in report.retry_waits if w.state == "InvokeEnrich"]


def served(api) -> Counter:
    """How often the API answered 200 for each ID."""
    return Counter(i for r in api.requests if r.status == 200 for i in r.ids)


# --------------------------------------------------------------------------- the API
def test_api_503_bursts_are_absorbed_by_retries_with_the_configured_backoff(
    make_pipeline, seed, pipeline_config, update_outcomes
):
    values = ids(1_100_000)
    seed(values)
    burst = [503, 503, 503]  # maxAttempts 3: the 4th attempt gets through
    pipeline, api = make_pipeline(rules={values[0]: list(burst), values[100]: list(burst)})

    report = pipeline.run({"run_id": "f-503"})

    assert report.status == "SUCCEEDED", pipeline.failed_records("f-503")
    assert report.failed_batches == 0
    assert served(api) == Counter(values)  # all enriched once in the end
    assert api.request_count == report.batches + 6  # exactly the six extra attempts
    waits = enrich_waits(report)
    assert len(waits) == 6 and {w.error for w in waits} == {"RetryableEnrichError"}
    retry = pipeline_config.enrichment.retry
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
    # Retry numbers per batch: 0, 1, 2 for each of the two bursts.
    assert sorted(w.retry_number for w in waits) == [0, 0, 1, 1, 2, 2]
    row = observe("api-503-burst", pipeline, api, report, values, update_outcomes)
    assert row["failed_batches_metric"] == 0


def test_429_with_retry_after_is_retried_with_the_configured_backoff(
    make_pipeline, seed, pipeline_config, lambda_log, update_outcomes
):
    values = ids(1_200_000)
    seed(values)
    pipeline, api = make_pipeline(rules={values[0]: [429, 429]}, retry_after="120")

    report = pipeline.run({"run_id": "f-429"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    waits = enrich_waits(report)
    assert len(waits) == 2 and {w.error for w in waits} == {"RetryableEnrichError"}
    assert api.request_count == report.batches + 2
    # Step Functions cannot wait what one answer asks for: the configured backoff applies.
    ceilings = pipeline_config.enrichment.retry.waits()
    assert all(0 <= w.seconds <= ceilings[w.retry_number] < 120 for w in waits)
    assert '"retry_after":"120"' in lambda_log.read_text().replace(" ", "")
    observe(
        "api-429-retry-after",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        note="Retry-After is logged (retry_after) but not honoured: Step Functions waits "
        "its configured backoff (full jitter below 5 s, 10 s, 20 s)",
    )


def test_answers_slower_than_the_read_timeout_are_retried(make_pipeline, seed, update_outcomes):
    values = ids(1_300_000)
    seed(values)
    pipeline, api = make_pipeline(
        rules={values[0]: ["slow", "slow"]}, slow_s=2.0, env={"HTTP_READ_TIMEOUT_S": "0.5"}
    )

    report = pipeline.run({"run_id": "f-slow"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    errors = [i.error_message for i in report.invocations if i.error_type == "RetryableEnrichError"]
    assert len(errors) == 2 and all("timed out" in e for e in errors)
    # The server finished the two slow answers after the client gave up: at least once.
    assert served(api)[values[0]] == 3
    observe(
        "api-slow",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        note="at-least-once towards the API: it saw the slow batch 3 times and may have "
        "enriched it each time; the run counts it once",
    )


def test_connection_reset_mid_response_is_retried(make_pipeline, seed, update_outcomes):
    values = ids(1_400_000)
    seed(values)
    pipeline, api = make_pipeline(rules={values[0]: ["reset", "reset"]})

    report = pipeline.run({"run_id": "f-reset"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    errors = [i.error_message for i in report.invocations if i.error_type == "RetryableEnrichError"]
    assert len(errors) == 2 and all("broke mid-request" in e for e in errors)
    observe("api-reset", pipeline, api, report, values, update_outcomes)


def test_one_batch_failing_permanently_is_listed_the_rest_enriched_and_a_retry_run_recovers(
    make_pipeline, seed, update_outcomes
):
    values = ids(1_500_000)
    seed(values)
    bad = values[100]
    broken = {"on": True}
    pipeline, api = make_pipeline(
        rule=lambda request: 500 if broken["on"] and bad in request.ids else None
    )

    report = pipeline.run({"run_id": "f-perm"})

    assert report.status == "FAILED" and report.error == "BatchesFailed"
    assert (report.cause or "").startswith("1 batch(es) failed")
    assert "runs/f-perm/failed/" in (report.cause or "")
    bad_batch = next(b for b in pipeline.read_json("runs/f-perm/batches.json") if bad in b["ids"])
    records = pipeline.failed_records("f-perm")
    assert list(records) == [bad_batch["batch_id"]]
    (record,) = records.values()
    assert record["ids"] == bad_batch["ids"] and record["error"]["Error"] == "RetryableEnrichError"
    assert set(served(api)) == set(values) - set(bad_batch["ids"])  # every other batch
    assert max(served(api).values()) == 1
    row = observe("api-one-batch-permanent", pipeline, api, report, values, update_outcomes)
    assert row["failed_batches_metric"] == 1

    # The API heals; a retry run sends only the failed batch, without querying Snowflake.
    broken["on"] = False
    requests_before = len(api.requests)
    retry = pipeline.run(
        {"run_id": "f-perm-retry-1", "trigger": "retry", "retry_of_run_id": "f-perm"}
    )

    assert retry.status == "SUCCEEDED", (retry.error, retry.cause)
    assert [r.ids for r in api.requests[requests_before:]] == [bad_batch["ids"]]
    assert served(api) == Counter(values)  # now every ID enriched, once
    query = pipeline.functions["query_ids"].name
    assert not any(i.function == query for i in retry.invocations)


def test_api_down_for_the_whole_run_lists_every_batch(
    make_pipeline, seed, closed_port, update_outcomes
):
    values = ids(1_600_000)
    seed(values)
    pipeline, api = make_pipeline(base_url=f"http://127.0.0.1:{closed_port}/lamba-tmdb")

    report = pipeline.run({"run_id": "f-down"})

    assert report.status == "FAILED" and report.error == "BatchesFailed"
    assert report.failed_batches == report.batches == 3
    records = pipeline.failed_records("f-down").values()
    assert all("could not connect" in r["error"]["Cause"] for r in records)
    row = observe("api-down", pipeline, api, report, values, update_outcomes)
    assert row["failed_batches_metric"] == 3


# --------------------------------------------------------------------------- Snowflake
def test_snowflake_down_at_login_fails_the_run_after_the_configured_retries(
    make_pipeline, snowflake, seed, closed_port, pipeline_config, update_outcomes
):
    values = ids(1_700_000)
    seed(values)
    pipeline, api = make_pipeline(
        snowflake_secret=snowflake.secret(port=closed_port),
        env={"SNOWFLAKE_LOGIN_TIMEOUT_S": "1"},
    )

    report = pipeline.run({"run_id": "f-sf-down"})

    assert report.status == "FAILED" and report.error == "SnowflakeUnavailableError"
    assert api.request_count == 0
    retry = pipeline_config.snowflake.retry
    query = pipeline.functions["query_ids"].name
    query_calls = [i for i in report.invocations if i.function == query]
    assert len(query_calls) == retry.max_attempts + 1
    assert {i.error_type for i in query_calls} == {"SnowflakeUnavailableError"}
    waits = [w for w in report.retry_waits if w.error == "SnowflakeUnavailableError"]
    assert [w.ceiling for w in waits] == retry.waits()
    assert all(0 <= w.seconds <= w.ceiling and not w.slept for w in waits)
    observe(
        "snowflake-down-login",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        whole_run_failed=True,
    )


def test_snowflake_down_at_load_fails_the_run_after_retries_with_every_answer_kept(
    make_pipeline, snowflake, seed, closed_port, update_outcomes
):
    values = ids(1_750_000)
    seed(values)
    pipeline, api = make_pipeline(env={"SNOWFLAKE_LOGIN_TIMEOUT_S": "1"})

    def snowflake_goes_down(function, event) -> None:
        if function.name == pipeline.functions["load_results"].name:
            pipeline.set_snowflake_secret(snowflake.secret(port=closed_port))

    pipeline.runtime.before_invoke.append(snowflake_goes_down)
    report = pipeline.run({"run_id": "f-sf-load"})

    assert report.status == "FAILED" and report.error == "SnowflakeUnavailableError"
    # Every batch was enriched once and its answer stored: a redrive only loads them.
    assert api.request_count == report.batches == 3
    stored = pipeline.export_run("f-sf-load", pipeline.output_dir / "export")
    assert stored >= report.batches
    observe(
        "snowflake-down-load",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        note="the answers stay in S3 (runs/<run_id>/results/); recovery is a redrive, which "
        "starts at LoadResults and loads each file once (tests/workflow/test_load_loop.py)",
    )


@pytest.mark.parametrize("times", [1, None], ids=["once", "always"])
def test_snowflake_failing_mid_stream(make_pipeline, seed, times, update_outcomes):
    values = ids(1_800_000)
    seed(values)
    pipeline, api = make_pipeline(env={"FETCH_BATCH_SIZE": "20"})

    with snowflake_fetch_failures(after_rows=50, times=times) as fault:
        report = pipeline.run({"run_id": "f-sf-mid"})

    query_waits = [w for w in report.retry_waits if w.state == "QueryIds"]
    if times == 1:
        assert report.status == "SUCCEEDED", (report.error, report.cause)
        assert len(fault.fired) == 1 and len(query_waits) == 1
        assert report.ids == N_IDS
        observe("snowflake-mid-stream-once", pipeline, api, report, values, update_outcomes)
    else:
        assert report.status == "FAILED" and report.error == "SnowflakeUnavailableError"
        assert "fetching rows" in (report.cause or "")
        assert len(fault.fired) == 4 and len(query_waits) == 3
        with pytest.raises(Exception, match=r"NoSuchKey|Not Found"):
            pipeline.read_json(ids_key("f-sf-mid"))  # no partial ID list is left
        observe(
            "snowflake-mid-stream-always",
            pipeline,
            api,
            report,
            values,
            update_outcomes,
            whole_run_failed=True,
            note="no partial ids.jsonl: the list is uploaded only after the last row",
        )


# --------------------------------------------------------------------------- S3
@pytest.mark.parametrize(
    ("case", "key_pattern", "first_id", "run_id"),
    [
        ("s3-batches-denied", r"/batches\.json$", 1_900_000, "f-s3-batches"),
        ("s3-ids-denied", r"/ids\.jsonl$", 2_000_000, "f-s3-ids"),
    ],
)
def test_s3_refusing_a_run_file_fails_the_run_before_any_request(
    make_pipeline, seed, update_outcomes, case, key_pattern, first_id, run_id
):
    values = ids(first_id)
    seed(values)
    pipeline, api = make_pipeline()

    with s3_put_failures(key_pattern) as fault:
        report = pipeline.run({"run_id": run_id})

    assert report.status == "FAILED", (report.error, report.cause)
    assert "AccessDenied" in (report.cause or "")
    assert fault.fired and api.request_count == 0
    observe(
        case,
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        whole_run_failed=True,
        note="botocore's ClientError is not one of our error names: not retried",
    )


def test_s3_refusing_the_failure_record(make_pipeline, seed, update_outcomes):
    values = ids(2_100_000)
    seed(values)
    bad = values[100]
    pipeline, api = make_pipeline(rule=lambda request: 500 if bad in request.ids else None)

    with s3_put_failures(r"/failed/") as fault:
        report = pipeline.run({"run_id": "f-s3-failed"})

    book = ledger(pipeline, report, values)
    # RecordFailedBatch: 1 attempt + its retries (short: they count against the child's 300 s)
    assert len(fault.fired) == 1 + RECORD_FAILED_RETRY.max_attempts == 3
    row = observe(
        "s3-failure-record-denied",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        invariant="BROKEN locally: " + book.summary(),
        note="moto's Distributed Map ignores a failed child, so locally the run ends as "
        "shown; on AWS the Map fails and its Catch ends the run FAILED "
        "FailureRecordIncomplete (ExecutionsFailed), whose cause says the record is "
        "incomplete and to re-run the night with a new run_id; the batch is in the Map's "
        "ResultWriter FAILED_*.json, not in failed/",
    )
    assert len(book.missing) == 70 and not book.duplicates
    # moto's Map ignores the failed child (see the note), so nothing fails the run locally.
    assert report.status == "SUCCEEDED" and row["failed_batches_metric"] == 0


# --------------------------------------------------------------------------- time budgets
def test_invoke_enrich_keeps_inside_its_time_budget(make_pipeline, seed, update_outcomes):
    values = ids(2_200_000)
    seed(values)
    pipeline, api = make_pipeline(
        rules={values[0]: "slow"}, slow_s=10.0, env={"HTTP_READ_TIMEOUT_S": "30"}
    )
    pipeline.functions["invoke_enrich"].timeout_s = 3

    with lambda_timeouts(pipeline.runtime) as enforcer:
        report = pipeline.run({"run_id": "f-enrich-budget"})
    enforcer.join()

    assert enforcer.timed_out == []  # the handler's own deadline fired first, every time
    assert report.status == "FAILED" and report.error == "BatchesFailed"
    (record,) = pipeline.failed_records("f-enrich-budget").values()
    assert record["error"]["Error"] == "RetryableEnrichError"
    assert "before the Lambda deadline" in record["error"]["Cause"]
    observe(
        "enrich-time-budget",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        note="the request is capped 2 s before the Lambda deadline, so a slow API is a "
        "classified, retried RetryableEnrichError, never an opaque Lambda timeout",
    )


def test_query_ids_exceeding_its_time_budget(make_pipeline, snowflake, seed, update_outcomes):
    values = ids(2_300_000)
    seed(values)
    with socket.socket() as black_hole:  # accepts TCP (kernel backlog), never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        pipeline, api = make_pipeline(
            snowflake_secret=snowflake.secret(port=black_hole.getsockname()[1]),
            env={"SNOWFLAKE_LOGIN_TIMEOUT_S": "3"},
        )
        pipeline.functions["query_ids"].timeout_s = 1

        with lambda_timeouts(pipeline.runtime) as enforcer:
            report = pipeline.run({"run_id": "f-query-budget"})
        enforcer.join()

    assert len(enforcer.timed_out) == 1
    assert report.status == "FAILED" and report.error == LAMBDA_TIMEOUT_ERROR
    assert api.request_count == 0
    observe(
        "query-time-budget",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        whole_run_failed=True,
        note="Sandbox.Timedout is not retried; the stack derives the Snowflake login, "
        "network and statement timeouts from the Lambda timeout so this needs a "
        "misconfiguration",
    )


def _alarm_description(template: dict[str, Any], name: str) -> str:
    (alarm,) = [
        r["Properties"]
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and name in lid
    ]
    return str(alarm["AlarmDescription"])


def test_run_exceeding_the_state_machine_timeout(
    make_pipeline, seed, pipeline_template, update_outcomes
):
    values = ids(2_400_000)
    seed(values)
    pipeline, api = make_pipeline(
        latency_ms=3000, before_enter=lambda p: execution_timeout(p, seconds=2)
    )

    report = pipeline.run({"run_id": "f-timeout"})
    # Let the batches in flight (if the Map started before the timeout: that depends on the
    # machine's speed) finish before moto and the API go away.
    enrich = pipeline.functions["invoke_enrich"].name
    map_started = any(e["type"] == "MapRunStarted" for e in report.history)
    in_flight = report.batches if map_started else 0
    wait_until(lambda: len(pipeline.runtime.invocations_of(enrich)) >= in_flight, timeout_s=30)

    assert report.status == "TIMED_OUT"
    assert any("TimeoutSeconds" in r for r in report.rewrites)
    book = ledger(pipeline, report, values)
    assert book.strangers == [] and book.duplicates == []
    # The run ID stays claimed by the timed-out execution: a manual start that reuses it
    # is skipped as already_ran (and would count as a success). The ExecutionsTimedOut
    # alarm text must therefore ask for a NEW run_id (it used to say "the same run_id").
    rerun_started = time.monotonic()
    rerun = pipeline.run({"run_id": "f-timeout", "trigger": "manual"}, name="f-timeout-rerun")
    query = pipeline.functions["query_ids"].name
    # On a slow machine the timeout can strike while the first run's QueryIds still runs:
    # that invocation then ends during the rerun. Only calls started by the rerun are its own.
    (claim,) = [
        i.result for i in rerun.invocations if i.function == query and i.started >= rerun_started
    ]
    assert rerun.status == "SUCCEEDED" and claim["status"] == "already_ran"
    timed_out_alarm = _alarm_description(pipeline_template, "ExecutionsTimedOut")
    assert "new run_id" in timed_out_alarm and "same run_id" not in timed_out_alarm
    observe(
        "execution-timeout",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        invariant="not per batch: batches in flight at the timeout may reach the API "
        "unrecorded (neither enriched nor listed), so the night is repeated with a new run_id",
        note="a rerun reusing the run_id is skipped as already_ran: the alarm text asks "
        "for a new run_id (or a redrive, which keeps the claim)",
        timing_dependent_counts=True,
    )


# --------------------------------------------------------------------------- duplicates
def scheduler_input(template: dict[str, Any], scheduled_time: str) -> dict[str, Any]:
    """The synthesized schedule's input as Scheduler sends it: keywords replaced as whole
    values (the only place Scheduler documents replacing them)."""
    (schedule,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    run_input = json.loads(schedule["Properties"]["Target"]["Input"])
    keyword = "<aws.scheduler.scheduled-time>"
    return {k: scheduled_time if v == keyword else v for k, v in run_input.items()}


def test_duplicate_start_for_the_same_scheduled_time_enriches_once(
    make_pipeline, seed, pipeline_template, update_outcomes
):
    values = ids(2_500_000)
    seed(values)
    pipeline, api = make_pipeline()
    run_input = scheduler_input(pipeline_template, "2026-11-25T02:00:00Z")
    assert "run_id" not in run_input  # derived from scheduled_time by QueryIds

    # Both starts land before either has claimed the run (a double delivery).
    second_arn = pipeline.start(run_input, name="delivery-2")
    first = pipeline.run(run_input, name="delivery-1")
    second = pipeline.wait(second_arn)

    statuses = sorted([first.status, second["status"]])
    assert statuses == ["SUCCEEDED", "SUCCEEDED"], (first.cause, second.get("cause"))
    query = pipeline.functions["query_ids"].name
    claims = Counter(
        i.result["status"] for i in pipeline.runtime.invocations if i.function == query
    )
    assert claims == Counter({"claimed": 1, "already_ran": 1})
    run_ids = {i.result["run_id"] for i in pipeline.runtime.invocations if i.function == query}
    assert run_ids == {first.run_id} == {"scheduled-2026-11-25T02:00:00Z"}
    assert pipeline.read_json("runs/scheduled-2026-11-25T02:00:00Z/claim.json")
    assert served(api) == Counter(values)  # every ID once across both executions
    # One report over both executions: every invocation and every retry wait they caused.
    report = pipeline._report(
        pipeline.wait(first.execution_arn),
        0.0,
        invocations=pipeline.runtime.invocations,
        waits=pipeline.aws.retry_waits if pipeline.aws else [],
        requests=None,
    )
    observe(
        "duplicate-start",
        pipeline,
        api,
        report,
        values,
        update_outcomes,
        note="the run claim (S3 If-None-Match) lets one execution through; the other "
        "ends SUCCEEDED as already_ran without querying",
    )
