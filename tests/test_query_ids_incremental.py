"""The incremental pull, night after night, against the embedded Snowflake: QueryIds reads
the state table LoadResults writes, so the loop runs on the real SQL of both steps."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from enrich_shared.errors import ConfigurationError, QueryError
from enrich_shared.load_sql import create_tables
from enrich_shared.models import LoadRequest
from enrich_shared.snowflake_conn import SnowflakeCredentials
from load_results.loader import LoadSettings, load_run
from query_ids.snowflake_source import (
    PullCounts,
    SnowflakeSettings,
    incremental_query,
    iter_column,
)

IDS = [f"tt{n:07d}" for n in range(1, 11)]


@pytest.fixture
def loop(snowflake, seed, tmp_path):
    """Seeded source rows (with noise), a state table and a stage of our own."""
    seed([*IDS, None, "  tt0000003 ", "bad", IDS[0]])
    suffix = uuid.uuid4().hex[:8].upper()
    load = LoadSettings(
        secret_name="sf-test",
        stage=f"EIDR.PUBLIC.RUNS_{suffix}",
        landing_table=f"EIDR.PUBLIC.LANDING_{suffix}",
        results_table=f"EIDR.PUBLIC.RESULTS_{suffix}",
        state_table=f"EIDR.PUBLIC.STATE_{suffix}",
    )
    for statement in create_tables(load.landing_table, load.results_table, load.state_table):
        snowflake.execute(statement)
    snowflake.execute(f"CREATE STAGE {load.stage} URL='file://{tmp_path}/'")
    query = SnowflakeSettings(
        secret_name="sf-test", refresh_after_days=7, state_table=load.state_table
    )
    creds = SnowflakeCredentials.from_secret(snowflake.secret(), "sf-test")
    return snowflake, tmp_path, load, query, creds


def pull(query, creds, **kwargs) -> tuple[list, int]:
    counts = PullCounts(skipped_fresh_ids=-1)
    values = list(iter_column(creds, query, counts=counts, **kwargs))
    return values, counts.skipped_fresh_ids


def enrich(folder: Path, run_id: str, ok: list[str], failed: list[str]) -> None:
    """Store answers for `ok` and a failure record for `failed` (as the map would)."""
    run = folder / run_id
    (run / "results").mkdir(parents=True)
    (run / "results" / "b1.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "batch_id": "b1",
                "fetched_at": "2026-12-01T02:00:00Z",
                "ids": ok,
                "status": 200,
                "body": {"records": [{"imdb_id": i} for i in ok]},
            }
        )
    )
    if failed:
        (run / "failed").mkdir()
        (run / "failed" / "b2.json").write_text(
            json.dumps({"run_id": run_id, "batch_id": "b2", "url": "u", "ids": failed, "error": {}})
        )


def test_second_night_skips_fresh_ids_and_repulls_failed_and_stale(loop):
    snowflake, folder, load, query, creds = loop
    # Night 1: nothing in the state table yet, so every row comes back (noise included:
    # the cleaner still counts NULL/invalid/duplicate values).
    values, skipped = pull(query, creds)
    assert (sorted(v for v in values if v), skipped) == (
        sorted([*IDS, "  tt0000003 ", "bad", IDS[0]]),
        0,
    )
    enrich(folder, "night-1", ok=IDS[:8], failed=IDS[8:])
    load_run(LoadRequest("night-1"), load, creds)
    # The answers were fetched "now" for this test: move them to now, then age one.
    snowflake.execute(f"UPDATE {load.state_table} SET LAST_ENRICHED_AT = SYSDATE()")
    snowflake.execute(
        f"UPDATE {load.state_table} SET LAST_ENRICHED_AT = DATEADD(day, -8, SYSDATE()) "
        "WHERE IMDB_ID = ?",
        ["tt0000002"],
    )

    values, skipped = pull(query, creds)

    # Fresh: tt0000001 (also its duplicate row), tt0000003 (also its padded twin), 4-8.
    assert skipped == 7
    assert sorted(v for v in values if v) == ["bad", "tt0000002", "tt0000009", "tt0000010"]
    assert None in values  # the NULL row still reaches the cleaner (counted as invalid)


def test_full_ignores_the_state_and_a_longer_refresh_age_keeps_ids_fresh(loop):
    snowflake, folder, load, query, creds = loop
    enrich(folder, "night-1", ok=IDS, failed=[])
    load_run(LoadRequest("night-1"), load, creds)
    snowflake.execute(
        f"UPDATE {load.state_table} SET LAST_ENRICHED_AT = DATEADD(day, -8, SYSDATE())"
    )

    assert pull(query, creds, full=True)[1] == -1  # no count: the state was not read
    assert len(pull(query, creds, full=True)[0]) == len(IDS) + 4
    assert pull(query, creds)[1] == 0  # 8 days old with a 7-day refresh: all stale
    # With a 30-day refresh every ID is fresh: only the noise rows come back.
    values, skipped = pull(replace(query, refresh_after_days=30), creds)
    assert skipped == len(IDS)
    assert sorted(v for v in values if v) == ["bad"]


def test_all_fresh_returns_no_id_but_the_count(loop):
    snowflake, folder, load, query, creds = loop
    snowflake.seed_rows([("o", "c", i) for i in IDS])
    enrich(folder, "night-1", ok=IDS, failed=[])
    load_run(LoadRequest("night-1"), load, creds)
    snowflake.execute(f"UPDATE {load.state_table} SET LAST_ENRICHED_AT = SYSDATE()")

    assert pull(query, creds) == ([], len(IDS))
    # The limit applies to the IDs pulled; the count still arrives.
    assert pull(query, creds, limit=3) == ([], len(IDS))


def test_limit_applies_to_the_stale_ids(loop):
    snowflake, folder, load, query, creds = loop
    snowflake.seed_rows([("o", "c", i) for i in IDS])
    enrich(folder, "night-1", ok=IDS[:5], failed=[])
    load_run(LoadRequest("night-1"), load, creds)
    snowflake.execute(f"UPDATE {load.state_table} SET LAST_ENRICHED_AT = SYSDATE()")

    values, skipped = pull(query, creds, limit=2)
    assert skipped == 5
    assert len(values) == 2 and set(values) <= set(IDS[5:])


def test_a_missing_state_table_says_how_to_create_it(loop):
    _snowflake, _folder, _load, query, creds = loop
    missing = replace(query, state_table="EIDR.PUBLIC.NO_SUCH_STATE")
    with pytest.raises(QueryError, match=r"NO_SUCH_STATE.*snowflake-setup.*full"):
        pull(missing, creds)
    assert len(pull(missing, creds, full=True)[0]) == len(IDS) + 4  # full needs no state


@pytest.mark.parametrize(
    ("id_column", "state_table", "named"),
    [
        ("IMDB_VALUE) --", "ENRICH_STATE", "snowflake.idColumn"),
        ("T.IMDB_VALUE", "ENRICH_STATE", "SNOWFLAKE_ID_COLUMN"),
        ("IMDB_VALUE", "ENRICH_STATE; DROP TABLE X", "load.stateTable"),
    ],
)
def test_names_in_the_incremental_sql_are_validated(id_column, state_table, named):
    with pytest.raises(ConfigurationError, match=named):
        incremental_query("SELECT 1", id_column, state_table, 7)


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("SNOWFLAKE_SECRET_NAME", "sf")
    monkeypatch.delenv("SNOWFLAKE_REFRESH_AFTER_DAYS", raising=False)
    monkeypatch.delenv("LOAD_STATE_TABLE", raising=False)
    settings = SnowflakeSettings.from_env()
    assert (settings.refresh_after_days, settings.state_table) == (None, "ENRICH_STATE")
    monkeypatch.setenv("SNOWFLAKE_REFRESH_AFTER_DAYS", "3")
    monkeypatch.setenv("LOAD_STATE_TABLE", "DB.SCH.STATE")
    settings = SnowflakeSettings.from_env()
    assert (settings.refresh_after_days, settings.state_table) == (3, "DB.SCH.STATE")
    monkeypatch.setenv("SNOWFLAKE_REFRESH_AFTER_DAYS", "0")
    with pytest.raises(ConfigurationError, match="SNOWFLAKE_REFRESH_AFTER_DAYS"):
        SnowflakeSettings.from_env()
    monkeypatch.setenv("SNOWFLAKE_REFRESH_AFTER_DAYS", "3")
    monkeypatch.setenv("LOAD_STATE_TABLE", "STATE WHERE 1=1")
    with pytest.raises(ConfigurationError, match="LOAD_STATE_TABLE"):
        SnowflakeSettings.from_env()


def test_an_id_padded_with_tabs_or_newlines_is_fresh_like_its_plain_twin(loop, seed):
    # The cleaner strips any whitespace (str.strip), so "\ttt0000004 \n" is sent as
    # tt0000004; Snowflake's TRIM() strips only blanks, so the anti-join must name the
    # other whitespace too, or such a row is re-sent every night (the shipped sample has
    # tab-padded IDs: found by `enrichctl local --nights 2`).
    snowflake, folder, load, query, creds = loop
    seed(["\ttt0000004 ", "tt0000005\r\n", " \x0btt0000006\x0c", "tt0000007"])
    enrich(folder, "night-1", ok=["tt0000004", "tt0000005", "tt0000006"], failed=[])
    load_run(LoadRequest("night-1"), load, creds)
    snowflake.execute(f"UPDATE {load.state_table} SET LAST_ENRICHED_AT = SYSDATE()")

    values, skipped = pull(query, creds)

    assert (values, skipped) == (["tt0000007"], 3)
