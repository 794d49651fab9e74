"""The DDL of the tables LoadResults writes and QueryIds reads: one copy for the loader's
tests, `enrichctl snowflake-setup` (its SQL and its `--check`) and the local runner.

Plain strings, no connector import: enrichctl imports this without snowflake-connector.
Names come from configuration (`load.landingTable`, `load.resultsTable`, `load.stateTable`)
and are validated before they get here (letters, digits, _ and $, optionally
db.schema.name), which is what makes formatting them into SQL safe.

- landing `(V VARIANT)`: one row per JSON document COPYed from the stage (stored answers,
  failure records, documents of `load.source`); kept as the raw history of what was loaded.
- results: one row per IMDB ID, the latest record the API returned for it.
- state: one row per IMDB ID, what happened to it last (OK / FAILED) and when.
Times are UTC without a zone (TIMESTAMP_NTZ, written with SYSDATE()), so no session time
zone can shift a freshness comparison.
"""

from __future__ import annotations

#: (column, type) of each table, in creation order. `--check` compares these with the table.
LANDING_COLUMNS: tuple[tuple[str, str], ...] = (("V", "VARIANT"),)
RESULTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("IMDB_ID", "VARCHAR"),
    ("RECORD", "VARIANT"),
    ("RUN_ID", "VARCHAR"),
    ("BATCH_ID", "VARCHAR"),
    ("FETCHED_AT", "TIMESTAMP_NTZ"),
    ("LOADED_AT", "TIMESTAMP_NTZ"),
)
STATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("IMDB_ID", "VARCHAR"),
    ("LAST_STATUS", "VARCHAR"),
    ("LAST_RUN_ID", "VARCHAR"),
    ("LAST_ATTEMPT_AT", "TIMESTAMP_NTZ"),
    ("LAST_ENRICHED_AT", "TIMESTAMP_NTZ"),
    ("LAST_ERROR", "VARCHAR"),
    ("ATTEMPTS", "NUMBER"),
)


def table_columns(landing: str, results: str, state: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Table name -> its columns, in creation order."""
    return {landing: LANDING_COLUMNS, results: RESULTS_COLUMNS, state: STATE_COLUMNS}


def _create(name: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ", ".join(f"{column} {kind}" for column, kind in columns)
    return f"CREATE TABLE IF NOT EXISTS {name} ({body})"


def create_state_table(name: str) -> str:
    """CREATE statement of the per-ID state table the incremental pull reads."""
    return _create(name, STATE_COLUMNS)


def create_tables(landing: str, results: str, state: str) -> list[str]:
    """`CREATE TABLE IF NOT EXISTS` for the three tables (re-running it changes nothing)."""
    return [_create(name, cols) for name, cols in table_columns(landing, results, state).items()]
