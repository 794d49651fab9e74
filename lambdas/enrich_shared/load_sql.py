"""The load step's tables: one definition for the setup SQL, its `--check` and the loader.

Contract (issue 11): a one-column VARIANT landing table that COPY INTO fills from the stage,
a results table keyed by IMDB ID, and the per-ID state table the incremental query reads.
Names come from configuration (`load.landingTable`, `load.resultsTable`, `load.stateTable`);
they are validated there (letters, digits, _ and $, optionally db.schema.name), which is
what makes formatting them into SQL safe.
"""

from __future__ import annotations

#: (column, type) of each table. `--check` compares these names with the live table.
LANDING_COLUMNS: tuple[tuple[str, str], ...] = (("DOC", "VARIANT"),)
RESULTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("IMDB_ID", "VARCHAR"),
    ("RECORD", "VARIANT"),
    ("RUN_ID", "VARCHAR"),
    ("BATCH_ID", "VARCHAR"),
    ("FETCHED_AT", "TIMESTAMP_TZ"),
    ("LOADED_AT", "TIMESTAMP_TZ"),
)
STATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("IMDB_ID", "VARCHAR"),
    ("LAST_STATUS", "VARCHAR"),
    ("LAST_RUN_ID", "VARCHAR"),
    ("LAST_ATTEMPT_AT", "TIMESTAMP_TZ"),
    ("LAST_ENRICHED_AT", "TIMESTAMP_TZ"),
    ("LAST_ERROR", "VARCHAR"),
    ("ATTEMPTS", "NUMBER"),
)


def table_columns(landing: str, results: str, state: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Table name -> its columns, in creation order."""
    return {landing: LANDING_COLUMNS, results: RESULTS_COLUMNS, state: STATE_COLUMNS}


def table_ddl(landing: str, results: str, state: str) -> list[str]:
    """`CREATE TABLE IF NOT EXISTS` for the three tables (re-running it changes nothing)."""
    statements = []
    for name, columns in table_columns(landing, results, state).items():
        body = ", ".join(f"{column} {kind}" for column, kind in columns)
        statements.append(f"CREATE TABLE IF NOT EXISTS {name} ({body})")
    return statements
