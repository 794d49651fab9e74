"""LoadResults against the embedded Snowflake (fakesnow's server over the real connector).

Each test gets its own tables (unique names) and its own `file://` stage over a temporary
folder, into which it writes the run's answer and failure files directly: what the local
runner mirrors from S3, and what the external stage shows on AWS.
"""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from enrich_shared.errors import ConfigurationError, InvalidInputError, SnowflakeUnavailableError
from enrich_shared.load_sql import create_tables
from enrich_shared.models import LoadRequest
from enrich_shared.snowflake_conn import SnowflakeCredentials
from load_results.loader import LoadSettings, load_run

RUN = "scheduled-2026-12-01T02:00:00Z"  # a scheduled run's ID: `:` in the stage path
FETCHED = "2026-12-01T02:01:00+00:00"


@dataclass
class Night:
    """One test's tables, stage folder and connection settings."""

    snowflake: Any
    folder: Path
    settings: LoadSettings
    creds: SnowflakeCredentials

    def answer(self, run_id: str, batch_id: str, ids: list[str], body: Any, **extra: Any) -> None:
        """Write a stored answer the way InvokeEnrich does."""
        doc = {
            "run_id": run_id,
            "batch_id": batch_id,
            "fetched_at": extra.pop("fetched_at", FETCHED),
            "ids": ids,
            "status": 200,
            "body": body,
        }
        self._write(run_id, "results", batch_id, doc)

    def failure(self, run_id: str, batch_id: str, ids: list[str], error: str, cause: str) -> None:
        """Write a failure record the way RecordFailedBatch does (the Map item + error)."""
        doc = {
            "batch_id": batch_id,
            "url": "https://api.example.test/enrich?ids=" + ",".join(ids),
            "ids": ids,
            "run_id": run_id,
            "error": {"Error": error, "Cause": cause},
        }
        self._write(run_id, "failed", batch_id, doc)

    def _write(self, run_id: str, kind: str, batch_id: str, doc: dict[str, Any]) -> None:
        path = self.folder / run_id / kind / f"{batch_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))

    def load(self, run_id: str = RUN, started_at: str | None = None):
        """Invoke the load for `run_id`."""
        return load_run(LoadRequest(run_id, started_at), self.settings, self.creds)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of `sql` with {results}/{state}/{landing} filled in."""
        s = self.settings
        return self.snowflake.execute(
            sql.format(results=s.results_table, state=s.state_table, landing=s.landing_table)
        )

    def state(self) -> dict[str, tuple[Any, ...]]:
        """The state table by ID (timestamps as text: the connector cannot fetch NULL ones
        from fakesnow)."""
        rows = self.rows(
            "SELECT IMDB_ID, LAST_STATUS, LAST_RUN_ID, ATTEMPTS, LAST_ERROR, "
            "TO_VARCHAR(LAST_ENRICHED_AT), TO_VARCHAR(LAST_ATTEMPT_AT) FROM {state}"
        )
        return {row[0]: (*row[1:5], *map(_second, row[5:])) for row in rows}

    def results(self) -> dict[str, tuple[Any, ...]]:
        """The results table by ID: (RECORD parsed, RUN_ID, BATCH_ID, FETCHED_AT, LOADED_AT)."""
        rows = self.rows(
            "SELECT IMDB_ID, TO_VARCHAR(RECORD), RUN_ID, BATCH_ID, TO_VARCHAR(FETCHED_AT), "
            "TO_VARCHAR(LOADED_AT) FROM {results}"
        )
        return {row[0]: (json.loads(row[1]), *row[2:4], *map(_second, row[4:])) for row in rows}


def _second(text: str | None) -> str | None:
    """A timestamp's text to the second (the fractional part's format differs by value)."""
    return text[:19] if text else None


@pytest.fixture
def night(snowflake, tmp_path) -> Night:
    suffix = uuid.uuid4().hex[:8].upper()
    names = {
        "stage": f"EIDR.PUBLIC.RUNS_{suffix}",
        "landing_table": f"EIDR.PUBLIC.LANDING_{suffix}",
        "results_table": f"EIDR.PUBLIC.RESULTS_{suffix}",
        "state_table": f"EIDR.PUBLIC.STATE_{suffix}",
    }
    snowflake.create_table()  # creates EIDR.PUBLIC if this worker has not yet
    for statement in create_tables(
        names["landing_table"], names["results_table"], names["state_table"]
    ):
        snowflake.execute(statement)
    snowflake.execute(f"CREATE STAGE {names['stage']} URL='file://{tmp_path}/'")
    settings = LoadSettings(secret_name="sf-test", login_timeout_s=10, **names)
    creds = SnowflakeCredentials.from_secret(snowflake.secret(), "sf-test")
    return Night(snowflake, tmp_path, settings, creds)


def records(*ids: str) -> dict[str, Any]:
    return {"records": [{"imdb_id": i, "title": f"Title of {i}"} for i in ids]}


def test_a_night_is_copied_and_merged(night):
    night.answer(RUN, "b0001", ["tt0000001", "tt0000002"], records("tt0000001", "tt0000002"))
    night.answer(RUN, "b0002", ["tt0000003"], records("tt0000003"))
    night.failure(RUN, "b0003", ["tt0000004", "tt0000005"], "RejectedEnrichError", "HTTP 400")

    result = night.load()

    assert result.to_dict() == {
        "run_id": RUN,
        "files_loaded": 3,
        "results_merged": 3,
        "state_merged": 5,
        "ids_ok": 3,
        "ids_failed": 2,
    }
    results = night.results()
    assert sorted(results) == ["tt0000001", "tt0000002", "tt0000003"]
    assert results["tt0000002"][:4] == (
        {"imdb_id": "tt0000002", "title": "Title of tt0000002"},
        RUN,
        "b0001",
        "2026-12-01 02:01:00",
    )
    state = night.state()
    assert state["tt0000001"][:4] == ("OK", RUN, 1, None)
    assert state["tt0000001"][4] == "2026-12-01 02:01:00"  # LAST_ENRICHED_AT = fetched_at
    assert state["tt0000004"][:4] == ("FAILED", RUN, 1, "RejectedEnrichError: HTTP 400")
    assert state["tt0000004"][4] is None  # never enriched
    assert state["tt0000004"][5] is not None  # but attempted


def test_a_rerun_loads_nothing_twice_and_changes_no_row(night):
    night.answer(RUN, "b0001", ["tt0000001", "tt0000002"], records("tt0000001", "tt0000002"))
    night.failure(RUN, "b0002", ["tt0000003"], "RetryableEnrichError", "HTTP 503")
    first = night.load()
    before = (night.rows("SELECT COUNT(*) FROM {landing}"), night.results(), night.state())

    again = night.load()

    assert (again.files_loaded, again.results_merged, again.state_merged) == (0, 0, 0)
    # The run's outcome is reported the same (the local summary reads it).
    assert (again.ids_ok, again.ids_failed) == (first.ids_ok, first.ids_failed) == (2, 1)
    after = (night.rows("SELECT COUNT(*) FROM {landing}"), night.results(), night.state())
    # LOADED_AT and LAST_ATTEMPT_AT included: not even a timestamp moved.
    assert after == before


def test_a_body_without_records_is_kept_whole_for_each_id_of_the_batch(night):
    night.answer(RUN, "b0001", ["tt0000001", "tt0000002"], {"accepted": 2, "job": "j-1"})
    night.answer(RUN, "b0002", ["tt0000003"], {"records": "not a list"})

    result = night.load()

    assert (result.results_merged, result.ids_ok) == (3, 3)
    results = night.results()
    assert results["tt0000001"][:3] == ({"accepted": 2, "job": "j-1"}, RUN, "b0001")
    assert results["tt0000002"][0] == {"accepted": 2, "job": "j-1"}
    assert results["tt0000003"][0] == {"records": "not a list"}
    assert {row[0] for row in night.state().values()} == {"OK"}


def test_a_non_json_body_is_stored_as_its_string(night):
    night.answer(RUN, "b0001", ["tt0000001"], "<html>OK, queued</html>")
    night.load()
    assert night.results()["tt0000001"][0] == "<html>OK, queued</html>"
    assert night.state()["tt0000001"][0] == "OK"


def test_records_path_and_id_field_are_configurable(night):
    night.settings = replace(night.settings, records_path="data.titles", id_field="tconst")
    body = {"data": {"titles": [{"tconst": "tt0000001", "rating": 8.1}]}}
    night.answer(RUN, "b0001", ["tt0000001", "tt0000002"], body)

    night.load()

    # tt0000002 had no record in the answer: not in results, but OK in the state (answered).
    assert {k: v[0] for k, v in night.results().items()} == {
        "tt0000001": {"tconst": "tt0000001", "rating": 8.1}
    }
    assert {k: v[0] for k, v in night.state().items()} == {"tt0000001": "OK", "tt0000002": "OK"}


def test_a_later_run_updates_and_counts_attempts_once_per_run(night):
    night.answer(RUN, "b0001", ["tt0000001"], records("tt0000001"))
    night.failure(RUN, "b0002", ["tt0000002"], "RetryableEnrichError", "HTTP 503")
    night.load(started_at="2026-12-01T02:00:00Z")
    retry = "retry-of-first-night"
    night.answer(
        retry, "b0001", ["tt0000002"], records("tt0000002"), fetched_at="2026-12-01T05:00:00Z"
    )
    night.failure(retry, "b0002", ["tt0000001"], "RetryableEnrichError", "HTTP 502")

    night.load(retry)
    night.load(retry)

    state = night.state()
    assert state["tt0000002"][:4] == ("OK", retry, 2, None)
    # A failure after a success: FAILED now, but the last enrichment time is kept.
    assert state["tt0000001"][:4] == ("FAILED", retry, 2, "RetryableEnrichError: HTTP 502")
    assert state["tt0000001"][4] == "2026-12-01 02:01:00"
    assert night.results()["tt0000002"][1:4] == (retry, "b0001", "2026-12-01 05:00:00")
    # The first run's result for tt0000001 stays: the failed retry stored no answer.
    assert night.results()["tt0000001"][1] == RUN


def test_redriving_an_older_runs_load_does_not_roll_the_state_back(night):
    night.answer(RUN, "b0001", ["tt0000001"], records("tt0000001"))
    night.failure(RUN, "b0002", ["tt0000002"], "RetryableEnrichError", "HTTP 503")
    night.load(started_at="2026-12-01T02:00:00Z")
    later = "scheduled-2026-12-02T02:00:00Z"
    night.failure(later, "b0001", ["tt0000001"], "RetryableEnrichError", "HTTP 502")
    night.answer(
        later, "b0002", ["tt0000002"], records("tt0000002"), fetched_at="2026-12-02T02:01Z"
    )
    night.load(later, started_at="2026-12-02T02:00:00Z")
    state = night.state()
    assert state["tt0000001"][:3] == ("FAILED", later, 2)
    assert state["tt0000001"][5] == "2026-12-02 02:00:00"  # the run's start: its attempt
    results = night.results()

    # The first night's load again (a redrive after the second night): nothing changes.
    again = night.load(started_at="2026-12-01T02:00:00Z")

    assert (again.files_loaded, again.results_merged, again.state_merged) == (0, 0, 0)
    assert (night.state(), night.results()) == (state, results)


def test_started_at_must_be_a_time():
    assert LoadRequest.from_event({"run_id": "r", "started_at": "2026-12-01T02:00:00.123Z"})
    with pytest.raises(InvalidInputError, match="started_at"):
        LoadRequest.from_event({"run_id": "r", "started_at": "yesterday"})


def test_a_batch_answered_twice_keeps_the_latest_answer(night):
    # An Express child can run twice on AWS: same run, two answers (two objects here).
    night.answer(RUN, "b0001", ["tt0000001"], {"records": [{"imdb_id": "tt0000001", "v": 1}]})
    night.answer(
        RUN,
        "b0001-again",
        ["tt0000001"],
        {"records": [{"imdb_id": "tt0000001", "v": 2}]},
        fetched_at="2026-12-01T02:09:00Z",
    )
    night.failure(RUN, "b0001-lost", ["tt0000001"], "States.Timeout", "")

    result = night.load()

    assert result.results_merged == 1
    assert night.results()["tt0000001"][0] == {"imdb_id": "tt0000001", "v": 2}
    # An answer was stored, so the ID is OK even though one attempt failed; one attempt.
    assert night.state()["tt0000001"][:3] == ("OK", RUN, 1)


def test_other_runs_files_are_not_loaded(night):
    night.answer(RUN, "b0001", ["tt0000001"], records("tt0000001"))
    night.answer("another-run", "b0001", ["tt0000009"], records("tt0000009"))
    result = night.load()
    assert result.files_loaded == 1
    assert sorted(night.state()) == ["tt0000001"]


def test_a_run_without_files_loads_nothing(night):
    result = night.load("no-such-run")
    assert result.to_dict() == {
        "run_id": "no-such-run",
        "files_loaded": 0,
        "results_merged": 0,
        "state_merged": 0,
        "ids_ok": 0,
        "ids_failed": 0,
    }


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("stage", "RUNS; DROP TABLE X", "LOAD_STAGE"),
        ("stage", "@RUNS", "LOAD_STAGE"),
        ("landing_table", "A.B.C.D", "LOAD_LANDING_TABLE"),
        ("results_table", '"Quoted"', "LOAD_RESULTS_TABLE"),
        ("state_table", "1STATE", "LOAD_STATE_TABLE"),
        ("source_stage", "s3://bucket/prefix/", "LOAD_SOURCE_STAGE"),
        ("records_path", "records'", "LOAD_RECORDS_PATH"),
        ("records_path", "a..b", "LOAD_RECORDS_PATH"),
        ("id_field", 'imdb_id"', "LOAD_ID_FIELD"),
    ],
)
def test_names_going_into_sql_are_validated(field, value, named):
    with pytest.raises(ConfigurationError, match=named) as caught:
        LoadSettings(secret_name="sf", **{field: value})
    assert repr(value) in str(caught.value)


def test_settings_from_env(monkeypatch):
    for name in ("LOAD_SOURCE_STAGE", "LOAD_LANDING_TABLE", "LOAD_RESULTS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SNOWFLAKE_SECRET_NAME", "sf")
    monkeypatch.setenv("LOAD_STAGE", "DB.SCH.ENRICH_RUNS_STAGE")
    monkeypatch.setenv("LOAD_STATE_TABLE", "DB.SCH.MY_STATE")
    monkeypatch.setenv("LOAD_RECORDS_PATH", "data.items")
    settings = LoadSettings.from_env()
    assert (settings.stage, settings.state_table, settings.records_path) == (
        "DB.SCH.ENRICH_RUNS_STAGE",
        "DB.SCH.MY_STATE",
        "data.items",
    )
    assert (settings.landing_table, settings.results_table, settings.source_stage) == (
        "ENRICH_LANDING",
        "ENRICH_RESULTS",
        None,
    )
    monkeypatch.setenv("LOAD_ID_FIELD", "imdb-id")
    with pytest.raises(ConfigurationError, match="LOAD_ID_FIELD"):
        LoadSettings.from_env()


@pytest.mark.parametrize("event", [{}, {"run_id": "../etc"}, {"run_id": 7}, []])
def test_bad_events_are_invalid_input(event):
    with pytest.raises(InvalidInputError):
        LoadRequest.from_event(event)


def test_snowflake_down_is_unavailable(night):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    night.creds = SnowflakeCredentials.from_secret(
        night.snowflake.secret(port=closed_port), "sf-test"
    )
    night.settings = replace(night.settings, login_timeout_s=2)
    with pytest.raises(SnowflakeUnavailableError, match="connecting"):
        night.load()


def test_a_missing_table_is_a_query_error(night):
    from enrich_shared.errors import QueryError

    night.answer(RUN, "b0001", ["tt0000001"], records("tt0000001"))
    night.settings = replace(night.settings, state_table="EIDR.PUBLIC.NO_SUCH_STATE")
    with pytest.raises(QueryError, match="merging state"):
        night.load()


@pytest.fixture
def source(night, tmp_path_factory):
    """A second stage over the API's own output folder (`load.source`)."""
    folder = tmp_path_factory.mktemp("api-output")
    stage = night.settings.stage + "_SRC"
    night.snowflake.execute(f"CREATE STAGE {stage} URL='file://{folder}/'")
    night.settings = replace(night.settings, source_stage=stage)
    return folder


def test_records_written_by_the_api_itself_are_merged_once(night, source):
    # The API answered with a status only and wrote the records to its own location:
    # one file with a records array, one NDJSON file with a record per line.
    night.answer(RUN, "b0001", ["tt0000001", "tt0000002", "tt0000003"], {"accepted": 3})
    night.failure(RUN, "b0002", ["tt0000004"], "RejectedEnrichError", "HTTP 400")
    (source / "out-1.json").write_text(json.dumps(records("tt0000001", "tt0000002")))
    (source / "out-2.json").write_text(json.dumps({"imdb_id": "tt0000003", "title": "C"}) + "\n")

    first = night.load()

    assert (first.files_loaded, first.results_merged, first.ids_ok, first.ids_failed) == (
        4,
        3,
        3,
        1,
    )
    results = night.results()
    assert results["tt0000003"][:3] == ({"imdb_id": "tt0000003", "title": "C"}, RUN, None)
    assert results["tt0000001"][0] == {"imdb_id": "tt0000001", "title": "Title of tt0000001"}
    # The status-only answers are not results; the state is kept from them.
    assert {k: v[0] for k, v in night.state().items()} == {
        "tt0000001": "OK",
        "tt0000002": "OK",
        "tt0000003": "OK",
        "tt0000004": "FAILED",
    }
    before = (night.results(), night.state())

    again = night.load()
    assert (again.files_loaded, again.results_merged, again.state_merged) == (0, 0, 0)
    assert (night.results(), night.state()) == before

    # The next night's new file is picked up alone; an unchanged record is not rewritten.
    (source / "out-3.json").write_text(
        json.dumps({"records": [{"imdb_id": "tt0000001", "title": "A, renamed"}]})
        + "\n"
        + json.dumps(records("tt0000002"))
    )
    later = night.load("next-night")
    assert (later.files_loaded, later.results_merged) == (1, 1)
    assert night.results()["tt0000001"][:2] == (
        {"imdb_id": "tt0000001", "title": "A, renamed"},
        "next-night",
    )
    assert night.results()["tt0000002"][1] == RUN
