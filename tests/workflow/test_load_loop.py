"""The closed loop, run locally: the synthesized state machine (LoadResults after the map)
under moto, the real handlers, the local API and the embedded Snowflake, whose load tables
and `file://` stage the local pipeline creates (enrichctl/local_run/stage.py).

Every pipeline starts with empty load tables, so these nights depend on nothing an earlier
test loaded into the worker's shared embedded Snowflake.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from enrichctl.embedded_snowflake import DATABASE, SCHEMA

STATE = f"{DATABASE}.{SCHEMA}.ENRICH_STATE"
RESULTS = f"{DATABASE}.{SCHEMA}.ENRICH_RESULTS"
LANDING = f"{DATABASE}.{SCHEMA}.ENRICH_LANDING"


def ids(n: int, start: int) -> list[str]:
    return [f"tt{start + i:07d}" for i in range(n)]


def state_rows(snowflake) -> dict[str, tuple[Any, ...]]:
    rows = snowflake.execute(
        f"SELECT IMDB_ID, LAST_STATUS, LAST_RUN_ID, ATTEMPTS, LAST_ERROR FROM {STATE}"
    )
    return {row[0]: row[1:] for row in rows}


#: Every column of the three tables (lambdas/enrich_shared/load_sql.py), times as text:
#: the connector cannot convert a NULL TIMESTAMP_NTZ from fakesnow's Arrow result.
SNAPSHOT = {
    LANDING: "V",
    RESULTS: "IMDB_ID, RECORD, RUN_ID, BATCH_ID, TO_VARCHAR(FETCHED_AT), TO_VARCHAR(LOADED_AT)",
    STATE: "IMDB_ID, LAST_STATUS, LAST_RUN_ID, TO_VARCHAR(LAST_ATTEMPT_AT), "
    "TO_VARCHAR(LAST_ENRICHED_AT), LAST_ERROR, ATTEMPTS",
}


def table_snapshot(snowflake) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the three tables, as text, sorted: what a second load must not change."""
    out = {}
    for table, columns in SNAPSHOT.items():
        rows = snowflake.execute(f"SELECT {columns} FROM {table}")
        out[table] = sorted(tuple(str(v) for v in row) for row in rows)
    return out


def sent_ids(api, since: int = 0) -> Counter:
    return Counter(i for r in api.requests[since:] for i in r.ids)


def loads_of(report) -> list:
    return [i for i in report.invocations if i.function.startswith("FunctionsLoadResults")]


def test_a_night_lands_its_answers_in_s3_and_its_outcome_in_snowflake(
    make_pipeline, seed, snowflake
):
    values = ids(150, 3_100_000)
    seed(values)
    # The batch holding the first ID is refused for good (400 is not retried).
    pipeline, _api = make_pipeline(rule=lambda r: 400 if values[0] in r.ids else None)

    report = pipeline.run({"run_id": "loop-1"})

    assert report.status == "FAILED" and report.error == "BatchesFailed", report.cause
    (load,) = loads_of(report)
    assert load.error_type is None, load.error_message
    # Every 2xx answer is an object under results/, self-describing.
    batches = pipeline.read_json("runs/loop-1/batches.json")
    failed_ids = {i for rec in pipeline.failed_records("loop-1").values() for i in rec["ids"]}
    assert values[0] in failed_ids
    for batch in batches:
        if batch["ids"][0] in failed_ids:
            continue
        stored = pipeline.read_json(f"runs/loop-1/results/{batch['batch_id']}.json")
        assert stored["run_id"] == "loop-1" and stored["ids"] == batch["ids"]
        assert stored["status"] == 200 and len(stored["body"]["records"]) == len(batch["ids"])
    # Snowflake knows each ID's outcome, and the enriched records.
    state = state_rows(snowflake)
    assert set(state) == set(values)
    for imdb_id, (status, run_id, attempts, error) in state.items():
        assert run_id == "loop-1" and attempts == 1
        if imdb_id in failed_ids:
            assert status == "FAILED" and error.startswith("RejectedEnrichError"), error
        else:
            assert status == "OK" and error is None
    results = dict(snowflake.execute(f"SELECT IMDB_ID, RECORD FROM {RESULTS}"))
    assert set(results) == set(values) - failed_ids
    assert json.loads(results[values[-1]])["imdb_id"] == values[-1]
    assert load.result["ids_ok"] == len(values) - len(failed_ids)
    assert load.result["ids_failed"] == len(failed_ids)
    # The stage-URL difference is said, like the EXPRESS rewrite.
    assert any("file://" in note and "s3://" in note for note in report.rewrites)


def test_the_next_night_skips_fresh_ids_and_pulls_failed_ones_again(make_pipeline, seed, snowflake):
    values = ids(150, 3_200_000)
    seed(values)
    night = {"n": 1}
    pipeline, api = make_pipeline(
        rule=lambda r: 400 if night["n"] == 1 and values[0] in r.ids else None
    )
    first = pipeline.run({"run_id": "loop-night-1"})
    assert first.error == "BatchesFailed"
    failed_ids = {i for rec in pipeline.failed_records("loop-night-1").values() for i in rec["ids"]}

    night["n"] = 2
    before = len(api.requests)
    second = pipeline.run({"run_id": "loop-night-2"})

    assert second.status == "SUCCEEDED", (second.error, second.cause)
    # Only the IDs that failed last night are sent again; the fresh ones are left out.
    assert sent_ids(api, before) == Counter(failed_ids)
    query = next(i for i in second.invocations if i.function.startswith("FunctionsQueryIds"))
    assert query.result["skipped_fresh_ids"] == len(values) - len(failed_ids)
    assert second.ids == len(failed_ids)
    state = state_rows(snowflake)
    for imdb_id in failed_ids:
        assert state[imdb_id][:3] == ("OK", "loop-night-2", 2)
    assert {state[i][1] for i in set(values) - failed_ids} == {"loop-night-1"}

    # {"full": true} ignores the state for one run: every ID is sent again.
    before = len(api.requests)
    full = pipeline.run({"run_id": "loop-night-3", "full": True})
    assert full.status == "SUCCEEDED", (full.error, full.cause)
    assert sent_ids(api, before) == Counter(values)
    full_query = next(i for i in full.invocations if i.function.startswith("FunctionsQueryIds"))
    assert full_query.result["skipped_fresh_ids"] == 0


def test_snowflake_down_at_load_is_retried_then_fails_and_a_second_load_changes_nothing(
    make_pipeline, seed, snowflake, closed_port, pipeline_config
):
    values = ids(80, 3_300_000)
    seed(values)
    pipeline, api = make_pipeline(env={"SNOWFLAKE_LOGIN_TIMEOUT_S": "1"})
    good = snowflake.secret()

    def snowflake_goes_down(function, event) -> None:
        # After the map: QueryIds has run, the answers are in S3, Snowflake is gone.
        if function.name.startswith("FunctionsLoadResults"):
            pipeline.set_snowflake_secret(snowflake.secret(port=closed_port))

    pipeline.runtime.before_invoke.append(snowflake_goes_down)
    report = pipeline.run({"run_id": "loop-down-1"})
    pipeline.runtime.before_invoke.remove(snowflake_goes_down)

    assert report.status == "FAILED"
    assert report.error == "SnowflakeUnavailableError", report.cause
    loads = loads_of(report)
    retry = pipeline_config.snowflake.retry
    assert len(loads) == retry.max_attempts + 1
    assert {i.error_type for i in loads} == {"SnowflakeUnavailableError"}
    waits = [w for w in report.retry_waits if w.state == "LoadResults"]
    assert [w.ceiling for w in waits] == retry.waits()
    assert state_rows(snowflake) == {}  # nothing half-loaded
    assert len(api.requests) == report.batches  # every batch was sent once

    # Snowflake is back: the load (what a redrive runs) records the night once...
    pipeline.set_snowflake_secret(good)
    load_fn = pipeline.functions["load_results"]
    event = json.dumps({"run_id": "loop-down-1", "started_at": "2026-12-01T02:00:00Z"})
    first = json.loads(pipeline.runtime.invoke(load_fn, event, {}))
    assert first["ids_ok"] == len(values) and first["files_loaded"] == report.batches
    after_first = table_snapshot(snowflake)
    # ...and a second one changes no row.
    second = json.loads(pipeline.runtime.invoke(load_fn, event, {}))
    assert second["files_loaded"] == second["results_merged"] == second["state_merged"] == 0
    assert second["ids_ok"] == len(values)
    assert table_snapshot(snowflake) == after_first


def test_each_local_pipeline_starts_with_empty_load_tables(make_pipeline, seed, snowflake):
    # The embedded Snowflake is shared by a worker's tests: without a fresh start, the
    # incremental pull of a later test would skip the IDs an earlier one loaded.
    values = ids(20, 3_400_000)
    seed(values)
    first, _ = make_pipeline()
    assert first.run({"run_id": "loop-fresh-1"}).status == "SUCCEEDED"
    assert set(state_rows(snowflake)) == set(values)
    first.__exit__(None, None, None)  # one moto at a time (closing twice is harmless)

    second, api = make_pipeline()

    assert state_rows(snowflake) == {}
    assert snowflake.execute(f"SELECT COUNT(*) FROM {LANDING}") == [(0,)]
    report = second.run({"run_id": "loop-fresh-1"})
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert sent_ids(api) == Counter(values)  # nothing skipped as fresh
    # The same run ID, files at the same stage paths: loaded again into the new tables.
    assert set(state_rows(snowflake)) == set(values)


def test_a_retry_run_loads_its_answers_too(make_pipeline, seed, snowflake):
    values = ids(100, 3_500_000)
    seed(values)
    broken = {"on": True}
    pipeline, _api = make_pipeline(
        rule=lambda r: 400 if broken["on"] and values[0] in r.ids else None
    )
    first = pipeline.run({"run_id": "loop-retry-1"})
    assert first.error == "BatchesFailed"
    failed_ids = {i for rec in pipeline.failed_records("loop-retry-1").values() for i in rec["ids"]}

    broken["on"] = False
    retry = pipeline.run({"run_id": "loop-retry-1-r", "retry_of_run_id": "loop-retry-1"})

    assert retry.status == "SUCCEEDED", (retry.error, retry.cause)
    (load,) = loads_of(retry)
    assert load.event["run_id"] == "loop-retry-1-r"
    assert load.result["ids_ok"] == len(failed_ids)
    state = state_rows(snowflake)
    assert {state[i][:2] for i in failed_ids} == {("OK", "loop-retry-1-r")}
