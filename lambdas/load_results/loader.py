"""LoadResults as plain logic: COPY a run's stored answers and failure records into the
landing table, then MERGE them into the results and state tables.

Every statement runs on its own (autocommit): COPY's load metadata, the MERGE conditions
and the run-ID filters make each one safe to repeat, so a rerun or redrive of a run
changes nothing (see docs/loading.md).

Documents are told apart by shape: a stored answer has `status` and `body`; a failure
record (written by RecordFailedBatch) has `error`. Both carry `run_id`, `batch_id`, `ids`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import snowflake.connector

from enrich_shared.errors import ConfigurationError
from enrich_shared.models import LoadRequest, LoadResult
from enrich_shared.settings import env_optional, env_str
from enrich_shared.snowflake_conn import (
    ConnectionSettings,
    SnowflakeCredentials,
    close_quietly,
    connect,
    connection_fields_from_env,
    execute,
    object_name,
)

#: A path into a JSON document: dot-separated keys of letters, digits and _ (formatted
#: into SQL as quoted path elements, so only these characters are let through).
JSON_PATH_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
#: COPY's per-file status for a file it loaded (case differs between servers).
LOADED_STATUSES = frozenset({"LOADED", "PARTIALLY_LOADED"})


def json_path(value: str, setting: str) -> str:
    """`value` as a quoted VARIANT path (`"a"."b"`); ConfigurationError if it is not plain."""
    if not isinstance(value, str) or not JSON_PATH_PATTERN.fullmatch(value):
        raise ConfigurationError(
            f"{setting}={value!r} is not a plain JSON path: use keys of letters, digits and _ "
            "separated by dots, e.g. 'records' or 'data.items'"
        )
    return ".".join(f'"{part}"' for part in value.split("."))


@dataclass(frozen=True)
class LoadSettings(ConnectionSettings):
    """Stage, tables and the answer's shape, from the function's environment (all validated)."""

    stage: str = "ENRICH_RUNS_STAGE"
    source_stage: str | None = None
    landing_table: str = "ENRICH_LANDING"
    results_table: str = "ENRICH_RESULTS"
    state_table: str = "ENRICH_STATE"
    records_path: str = "records"
    id_field: str = "imdb_id"

    def __post_init__(self) -> None:
        object_name(self.stage, "load.stage (LOAD_STAGE)")
        if self.source_stage is not None:
            object_name(self.source_stage, "load.source stage (LOAD_SOURCE_STAGE)")
        object_name(self.landing_table, "load.landingTable (LOAD_LANDING_TABLE)")
        object_name(self.results_table, "load.resultsTable (LOAD_RESULTS_TABLE)")
        object_name(self.state_table, "load.stateTable (LOAD_STATE_TABLE)")
        json_path(self.records_path, "load.recordsPath (LOAD_RECORDS_PATH)")
        json_path(self.id_field, "load.idField (LOAD_ID_FIELD)")

    @classmethod
    def from_env(cls) -> LoadSettings:
        """Read SNOWFLAKE_SECRET_NAME, SNOWFLAKE_*_TIMEOUT_S and LOAD_*.

        The stack sets them from the configuration keys (docs/configuration.md)."""
        return cls(
            **connection_fields_from_env(),
            stage=env_str("LOAD_STAGE"),
            source_stage=env_optional("LOAD_SOURCE_STAGE"),
            landing_table=env_str("LOAD_LANDING_TABLE", "ENRICH_LANDING"),
            results_table=env_str("LOAD_RESULTS_TABLE", "ENRICH_RESULTS"),
            state_table=env_str("LOAD_STATE_TABLE", "ENRICH_STATE"),
            records_path=env_str("LOAD_RECORDS_PATH", "records"),
            id_field=env_str("LOAD_ID_FIELD", "imdb_id"),
        )


def copy_statement(landing: str, stage: str, path: str) -> str:
    """COPY every not-yet-loaded JSON file under `@stage/path` into the landing table.

    `path` holds a validated run ID (letters, digits and . _ : + -), quoted because `:`
    and `+` are not plain stage-path characters.
    """
    return f"COPY INTO {landing} FROM '@{stage}/{path}' FILE_FORMAT = (TYPE = JSON)"


def results_merge(settings: LoadSettings) -> str:
    """MERGE this run's answers into the results table; binds (run_id, run_id).

    One source row per IMDB ID: the records under `recordsPath` keyed by `idField`, or,
    when the body has no such array (a status-only or non-JSON answer), one row per ID of
    the batch with RECORD = the whole body. Duplicates (a batch answered twice) keep the
    latest `fetched_at`. A row is only replaced by a later answer, so a rerun changes nothing.
    """
    records = f'L.V:"body".{json_path(settings.records_path, "LOAD_RECORDS_PATH")}'
    id_field = json_path(settings.id_field, "LOAD_ID_FIELD")
    answer = 'L.V:"run_id"::VARCHAR = ? AND L.V:"status" IS NOT NULL'
    return f"""MERGE INTO {settings.results_table} AS T USING (
    SELECT IMDB_ID, RECORD, RUN_ID, BATCH_ID, FETCHED_AT FROM (
        SELECT R.VALUE:{id_field}::VARCHAR AS IMDB_ID, R.VALUE AS RECORD,
               L.V:"run_id"::VARCHAR AS RUN_ID, L.V:"batch_id"::VARCHAR AS BATCH_ID,
               TO_TIMESTAMP_NTZ(L.V:"fetched_at"::VARCHAR) AS FETCHED_AT
        FROM {settings.landing_table} AS L, LATERAL FLATTEN(INPUT => {records}) AS R
        WHERE {answer} AND IS_ARRAY({records})
        UNION ALL
        SELECT I.VALUE::VARCHAR, L.V:"body", L.V:"run_id"::VARCHAR, L.V:"batch_id"::VARCHAR,
               TO_TIMESTAMP_NTZ(L.V:"fetched_at"::VARCHAR)
        FROM {settings.landing_table} AS L, LATERAL FLATTEN(INPUT => L.V:"ids") AS I
        WHERE {answer} AND NOT COALESCE(IS_ARRAY({records}), FALSE)
    ) AS S0
    WHERE IMDB_ID IS NOT NULL
    QUALIFY ROW_NUMBER() OVER (PARTITION BY IMDB_ID ORDER BY FETCHED_AT DESC, BATCH_ID DESC) = 1
) AS S ON T.IMDB_ID = S.IMDB_ID
WHEN MATCHED AND (T.FETCHED_AT IS NULL OR S.FETCHED_AT > T.FETCHED_AT) THEN UPDATE SET
    RECORD = S.RECORD, RUN_ID = S.RUN_ID, BATCH_ID = S.BATCH_ID,
    FETCHED_AT = S.FETCHED_AT, LOADED_AT = SYSDATE()
WHEN NOT MATCHED THEN INSERT (IMDB_ID, RECORD, RUN_ID, BATCH_ID, FETCHED_AT, LOADED_AT)
    VALUES (S.IMDB_ID, S.RECORD, S.RUN_ID, S.BATCH_ID, S.FETCHED_AT, SYSDATE())"""  # noqa: S608


def state_merge(settings: LoadSettings) -> str:
    """MERGE the run's outcome per ID into the state table; binds (run_id, started_at, run_id).

    OK for every ID of a stored answer (attempted at its `fetched_at`), FAILED (with the
    error) for every ID of a failure record (attempted at the run's `started_at`, else now);
    OK wins if a batch has both (an answer was stored, so the ID is enriched). ATTEMPTS
    grows once per run: a row already recorded for this run with the same status is left
    alone, so a rerun changes nothing; a row a later attempt wrote is left alone too, so
    redriving an older run's load cannot roll the state back.
    """
    landing = settings.landing_table
    return f"""MERGE INTO {settings.state_table} AS T USING (
    SELECT IMDB_ID, STATUS, RUN_ID, ATTEMPT_AT, LAST_ERROR FROM (
        SELECT I.VALUE::VARCHAR AS IMDB_ID, 'OK' AS STATUS, L.V:"run_id"::VARCHAR AS RUN_ID,
               TO_TIMESTAMP_NTZ(L.V:"fetched_at"::VARCHAR) AS ATTEMPT_AT,
               CAST(NULL AS VARCHAR) AS LAST_ERROR, 1 AS PRIORITY
        FROM {landing} AS L, LATERAL FLATTEN(INPUT => L.V:"ids") AS I
        WHERE L.V:"run_id"::VARCHAR = ? AND L.V:"status" IS NOT NULL
        UNION ALL
        SELECT I.VALUE::VARCHAR, 'FAILED', L.V:"run_id"::VARCHAR,
               COALESCE(TO_TIMESTAMP_NTZ(CAST(? AS VARCHAR)), SYSDATE()),
               LEFT(COALESCE(L.V:"error":"Error"::VARCHAR, 'error') || ': '
                    || COALESCE(L.V:"error":"Cause"::VARCHAR, ''), 2000), 2
        FROM {landing} AS L, LATERAL FLATTEN(INPUT => L.V:"ids") AS I
        WHERE L.V:"run_id"::VARCHAR = ? AND L.V:"error" IS NOT NULL
    ) AS S0
    QUALIFY ROW_NUMBER() OVER (PARTITION BY IMDB_ID ORDER BY PRIORITY, ATTEMPT_AT DESC) = 1
) AS S ON T.IMDB_ID = S.IMDB_ID
WHEN MATCHED AND ((T.LAST_RUN_ID IS DISTINCT FROM S.RUN_ID
                   AND (T.LAST_ATTEMPT_AT IS NULL OR S.ATTEMPT_AT >= T.LAST_ATTEMPT_AT))
                  OR (T.LAST_RUN_ID = S.RUN_ID AND T.LAST_STATUS IS DISTINCT FROM S.STATUS))
THEN UPDATE SET
    ATTEMPTS = COALESCE(T.ATTEMPTS, 0)
               + IFF(T.LAST_RUN_ID IS DISTINCT FROM S.RUN_ID, 1, 0),
    LAST_STATUS = S.STATUS, LAST_RUN_ID = S.RUN_ID, LAST_ATTEMPT_AT = S.ATTEMPT_AT,
    LAST_ENRICHED_AT = IFF(S.STATUS = 'OK', S.ATTEMPT_AT, T.LAST_ENRICHED_AT),
    LAST_ERROR = S.LAST_ERROR
WHEN NOT MATCHED THEN INSERT (IMDB_ID, LAST_STATUS, LAST_RUN_ID, LAST_ATTEMPT_AT,
                              LAST_ENRICHED_AT, LAST_ERROR, ATTEMPTS)
    VALUES (S.IMDB_ID, S.STATUS, S.RUN_ID, S.ATTEMPT_AT,
            IFF(S.STATUS = 'OK', S.ATTEMPT_AT, NULL), S.LAST_ERROR, 1)"""  # noqa: S608


#: A landing row written by the pipeline (a stored answer or a failure record), as opposed
#: to a document of `load.source`, which the API wrote itself.
ENVELOPE = 'L.V:"run_id" IS NOT NULL AND L.V:"batch_id" IS NOT NULL AND IS_ARRAY(L.V:"ids")'


def source_merge(settings: LoadSettings) -> str:
    """MERGE the records of `load.source` documents waiting in the landing table; binds
    (run_id). (Binds stay in the USING query: fakesnow miscounts them in the actions.)

    A document's records are the array at `recordsPath`, or the document itself when it
    has none (one record per line or per element of a top-level array). Their files carry
    no run or time, so a record replaces the stored one only when it differs; the rows are
    then deleted from the landing table (`source_cleanup`): the API's files stay in S3 and
    COPY's load metadata keeps them from loading twice.
    """
    path = json_path(settings.records_path, "LOAD_RECORDS_PATH")
    id_field = json_path(settings.id_field, "LOAD_ID_FIELD")
    landing = settings.landing_table
    return f"""MERGE INTO {settings.results_table} AS T USING (
    SELECT IMDB_ID, RECORD, CAST(? AS VARCHAR) AS RUN_ID FROM (
        SELECT R.VALUE:{id_field}::VARCHAR AS IMDB_ID, R.VALUE AS RECORD
        FROM {landing} AS L, LATERAL FLATTEN(INPUT => L.V:{path}) AS R
        WHERE NOT ({ENVELOPE}) AND IS_ARRAY(L.V:{path})
        UNION ALL
        SELECT L.V:{id_field}::VARCHAR, L.V FROM {landing} AS L
        WHERE NOT ({ENVELOPE}) AND NOT COALESCE(IS_ARRAY(L.V:{path}), FALSE)
    ) AS S0
    WHERE IMDB_ID IS NOT NULL
    QUALIFY ROW_NUMBER() OVER (PARTITION BY IMDB_ID ORDER BY TO_VARCHAR(RECORD) DESC) = 1
) AS S ON T.IMDB_ID = S.IMDB_ID
WHEN MATCHED AND TO_VARCHAR(T.RECORD) IS DISTINCT FROM TO_VARCHAR(S.RECORD) THEN UPDATE SET
    RECORD = S.RECORD, RUN_ID = S.RUN_ID, BATCH_ID = NULL, FETCHED_AT = SYSDATE(),
    LOADED_AT = SYSDATE()
WHEN NOT MATCHED THEN INSERT (IMDB_ID, RECORD, RUN_ID, BATCH_ID, FETCHED_AT, LOADED_AT)
    VALUES (S.IMDB_ID, S.RECORD, S.RUN_ID, NULL, SYSDATE(), SYSDATE())"""  # noqa: S608


def source_cleanup(settings: LoadSettings) -> str:
    """DELETE the merged `load.source` documents from the landing table (see `source_merge`)."""
    return f"DELETE FROM {settings.landing_table} AS L WHERE NOT ({ENVELOPE})"  # noqa: S608


def run_counts(settings: LoadSettings) -> str:
    """The run's IDs per status in the state table; binds (run_id)."""
    return (
        f"SELECT COUNT_IF(LAST_STATUS = 'OK'), COUNT_IF(LAST_STATUS = 'FAILED') "  # noqa: S608
        f"FROM {settings.state_table} WHERE LAST_RUN_ID = ?"
    )


def _files_loaded(cursor: Any) -> int:
    """Files COPY loaded, from its result (one row per file; a 0-file COPY has one note row)."""
    if not cursor.description:
        return 0
    names = [col.name.lower() for col in cursor.description]
    if "status" not in names:
        return 0
    at = names.index("status")
    return sum(1 for row in cursor.fetchall() if str(row[at]).upper() in LOADED_STATUSES)


def _merged(cursor: Any) -> int:
    """Rows a MERGE inserted plus updated (its one result row)."""
    row = cursor.fetchone() if cursor.description else None
    return int(sum(value or 0 for value in row)) if row else 0


def load_run(
    request: LoadRequest,
    settings: LoadSettings,
    creds: SnowflakeCredentials,
    connector: Callable[..., Any] = snowflake.connector.connect,
) -> LoadResult:
    """Load one run: COPY answers and failure records (and `load.source`'s new files),
    MERGE results, MERGE state, and read the run's counts back."""
    run_id = request.run_id
    conn = connect(creds, settings, connector)
    try:
        cursor = conn.cursor()
        files = 0
        sources = [(settings.stage, f"{run_id}/results/"), (settings.stage, f"{run_id}/failed/")]
        if settings.source_stage:
            # The API's own files: the whole stage, load metadata skips what is loaded.
            sources.append((settings.source_stage, ""))
        for stage, path in sources:
            sql = copy_statement(settings.landing_table, stage, path)
            files += _files_loaded(execute(cursor, sql, None, f"copying @{stage}/{path}"))
        if settings.source_stage:
            # The API wrote the records; its answers to us are status only (state below).
            merge, what = source_merge(settings), "merging the source's records"
            results = _merged(execute(cursor, merge, (run_id,), what))
            execute(cursor, source_cleanup(settings), None, "clearing merged source rows")
        else:
            merge, what = results_merge(settings), "merging results"
            results = _merged(execute(cursor, merge, (run_id, run_id), what))
        binds = (run_id, request.started_at, run_id)
        state = _merged(execute(cursor, state_merge(settings), binds, "merging state"))
        ok, failed = execute(cursor, run_counts(settings), (run_id,), "counting").fetchone()
    finally:
        close_quietly(conn)
    return LoadResult(
        run_id=run_id,
        files_loaded=files,
        results_merged=results,
        state_merged=state,
        ids_ok=int(ok or 0),
        ids_failed=int(failed or 0),
    )
