"""The DDL of the tables LoadResults writes and QueryIds reads: one copy for the Lambda's
tests, `enrichctl snowflake-setup` and the local runner.

Plain strings, no connector import: enrichctl imports this without snowflake-connector.
Names are validated by the caller (`snowflake_conn.object_name`) before they get here.

- landing `(V VARIANT)`: one row per JSON document COPYed from the stage (stored answers,
  failure records, documents of `load.source`); kept as the raw history of what was loaded.
- results: one row per IMDB ID, the latest record the API returned for it.
- state: one row per IMDB ID, what happened to it last (OK / FAILED) and when.
"""

from __future__ import annotations

LANDING_COLUMNS = "V VARIANT"
RESULTS_COLUMNS = (
    "IMDB_ID VARCHAR, RECORD VARIANT, RUN_ID VARCHAR, BATCH_ID VARCHAR, "
    "FETCHED_AT TIMESTAMP_NTZ, LOADED_AT TIMESTAMP_NTZ"
)
STATE_COLUMNS = (
    "IMDB_ID VARCHAR, LAST_STATUS VARCHAR, LAST_RUN_ID VARCHAR, LAST_ATTEMPT_AT TIMESTAMP_NTZ, "
    "LAST_ENRICHED_AT TIMESTAMP_NTZ, LAST_ERROR VARCHAR, ATTEMPTS NUMBER"
)


def create_landing_table(name: str) -> str:
    """CREATE statement of the one-column VARIANT landing table COPY loads into."""
    return f"CREATE TABLE IF NOT EXISTS {name} ({LANDING_COLUMNS})"


def create_results_table(name: str) -> str:
    """CREATE statement of the results table (one row per IMDB_ID)."""
    return f"CREATE TABLE IF NOT EXISTS {name} ({RESULTS_COLUMNS})"


def create_state_table(name: str) -> str:
    """CREATE statement of the per-ID state table the incremental pull reads."""
    return f"CREATE TABLE IF NOT EXISTS {name} ({STATE_COLUMNS})"


def create_tables(landing: str, results: str, state: str) -> list[str]:
    """The three CREATE statements, in the order a setup script runs them."""
    return [create_landing_table(landing), create_results_table(results), create_state_table(state)]
