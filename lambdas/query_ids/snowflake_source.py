"""Reading one column of a Snowflake query, streamed, optionally only the IDs that need work.

The connection, credentials and error mapping live in `enrich_shared.snowflake_conn`
(shared with LoadResults); this module owns the query: the `limit` option, the
incremental wrapper over the state table, and the streamed column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import snowflake.connector
from snowflake.connector import errors as sf_errors

from enrich_shared.errors import ConfigurationError, QueryError
from enrich_shared.settings import env_int, env_optional, env_str
from enrich_shared.snowflake_conn import (
    ConnectionSettings,
    SnowflakeCredentials,
    close_quietly,
    connect,
    connection_fields_from_env,
    execute,
    object_name,
    query_error,
)

DEFAULT_QUERY = "SELECT ORG_ID, CREATIVEWORKID, IMDB_VALUE FROM EIDR.PUBLIC.ORGS_IMDB_FILTERED"
DEFAULT_ID_COLUMN = "IMDB_VALUE"
DEFAULT_STATE_TABLE = "ENRICH_STATE"
#: Extra columns of the incremental query (named so no real query plausibly has them).
SKIPPED_COLUMN = "ENRICH__SKIPPED_FRESH"
ROW_MARKER_COLUMN = "ENRICH__ROW"


@dataclass(frozen=True)
class SnowflakeSettings(ConnectionSettings):
    """The query, its limits and the incremental pull, from the function's environment.

    `refresh_after_days` None means every night pulls every ID (no state table read).
    """

    query: str = DEFAULT_QUERY
    id_column: str = DEFAULT_ID_COLUMN
    fetch_batch_size: int = 10_000
    refresh_after_days: int | None = None
    state_table: str = DEFAULT_STATE_TABLE

    @classmethod
    def from_env(cls) -> SnowflakeSettings:
        """Read SNOWFLAKE_*, FETCH_BATCH_SIZE and LOAD_STATE_TABLE.

        The stack sets them from the configuration keys (docs/configuration.md)."""
        refresh = env_optional("SNOWFLAKE_REFRESH_AFTER_DAYS")
        return cls(
            **connection_fields_from_env(),
            query=env_str("SNOWFLAKE_QUERY", DEFAULT_QUERY),
            id_column=env_str("SNOWFLAKE_ID_COLUMN", DEFAULT_ID_COLUMN),
            fetch_batch_size=env_int("FETCH_BATCH_SIZE", 10_000),
            refresh_after_days=(
                env_int("SNOWFLAKE_REFRESH_AFTER_DAYS", 0, minimum=1) if refresh else None
            ),
            state_table=object_name(
                env_str("LOAD_STATE_TABLE", DEFAULT_STATE_TABLE), "LOAD_STATE_TABLE"
            ),
        )


@dataclass
class PullCounts:
    """What the incremental query reported besides the rows (filled while streaming)."""

    skipped_fresh_ids: int = 0


def _strip(query: str) -> str:
    return query.strip().rstrip(";").strip()


def limited_query(query: str, limit: int | None) -> tuple[str, tuple[int, ...]]:
    """The query to run and its bound parameters; `limit` is bound, never formatted in."""
    query = _strip(query)
    if limit is None:
        return query, ()
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise QueryError(f"limit={limit!r} must be a positive whole number")
    # The query is the operator's own configuration (trusted); the limit is a bound value.
    return f"SELECT * FROM ({query}) LIMIT ?", (limit,)  # noqa: S608


#: The whitespace the anti-join removes before comparing: what `clean_id`'s str.strip()
#: removes from an ID in practice (blank, tab, LF, VT, FF, CR). Snowflake's TRIM() strips
#: only blanks by default, and a row whose ID is not recognised as fresh is re-sent every
#: night. TRANSLATE (delete these characters) rather than TRIM(x, chars), which fakesnow
#: 0.12 gets wrong; it also deletes inner whitespace, which only matters for a value the
#: cleaner rejects: it is then counted as fresh instead of invalid (and sent in neither case).
SQL_WHITESPACE = "' ' || CHR(9) || CHR(10) || CHR(11) || CHR(12) || CHR(13)"


def incremental_query(
    query: str, id_column: str, state_table: str, refresh_after_days: int
) -> tuple[str, tuple[int, ...]]:
    """Wrap `query` so Snowflake returns only the rows whose ID needs enriching.

    A row is left out ("fresh") when its ID without SQL_WHITESPACE is in `state_table`
    with LAST_STATUS 'OK' and LAST_ENRICHED_AT within `refresh_after_days` (bound). Every
    returned row carries SKIPPED_COLUMN, the number of distinct fresh IDs, computed in the same
    statement. When every ID is fresh, one marker row is returned whose ROW_MARKER_COLUMN
    is NULL (all other columns NULL too), so the count still arrives; `iter_column` drops
    it. The stale rows are not held back by the count: they stream with `fetchmany`.
    """
    column = object_name(id_column, "snowflake.idColumn (SNOWFLAKE_ID_COLUMN)")
    if "." in column:
        raise ConfigurationError(
            f"SNOWFLAKE_ID_COLUMN={id_column!r} must be a column name, not a qualified name"
        )
    table = object_name(state_table, "load.stateTable (LOAD_STATE_TABLE)")
    source_id = f"TRANSLATE(TO_VARCHAR(ENRICH__SOURCE.{column}), {SQL_WHITESPACE}, '')"
    # Query and names are the operator's configuration (validated); the age is bound.
    sql = f"""WITH ENRICH__SOURCE AS ({_strip(query)}),
ENRICH__JUDGED AS (
    SELECT ENRICH__SOURCE.*, TRUE AS {ROW_MARKER_COLUMN},
           CASE WHEN ENRICH__STATE.LAST_STATUS = 'OK'
                     AND ENRICH__STATE.LAST_ENRICHED_AT >= DATEADD(day, -?, SYSDATE())
                THEN ENRICH__STATE.IMDB_ID END AS ENRICH__FRESH_ID
    FROM ENRICH__SOURCE
    LEFT JOIN {table} AS ENRICH__STATE
      ON ENRICH__STATE.IMDB_ID = {source_id}
),
ENRICH__COUNTED AS (
    SELECT COUNT(DISTINCT ENRICH__FRESH_ID) AS {SKIPPED_COLUMN} FROM ENRICH__JUDGED
)
SELECT ENRICH__JUDGED.*, ENRICH__COUNTED.{SKIPPED_COLUMN}
FROM ENRICH__COUNTED
LEFT JOIN ENRICH__JUDGED ON ENRICH__JUDGED.ENRICH__FRESH_ID IS NULL"""  # noqa: S608
    return sql, (refresh_after_days,)


def build_query(
    settings: SnowflakeSettings, limit: int | None, full: bool
) -> tuple[str, tuple[int, ...]]:
    """The statement QueryIds runs and its bound values (incremental unless off or `full`)."""
    if settings.refresh_after_days is None or full:
        return limited_query(settings.query, limit)
    sql, params = incremental_query(
        settings.query, settings.id_column, settings.state_table, settings.refresh_after_days
    )
    limited, limit_params = limited_query(sql, limit)
    return limited, params + limit_params


def column_index(column_names: list[str], wanted: str) -> int:
    """Index of `wanted` among the result columns (exact match first, then case-insensitive)."""
    if wanted in column_names:
        return column_names.index(wanted)
    folded = [name.upper() for name in column_names]
    if wanted.upper() in folded:
        return folded.index(wanted.upper())
    raise QueryError(
        f"the query has no column {wanted!r}; its columns are {column_names}. "
        "Set snowflake.idColumn in cdk.json to one of them, or change snowflake.query, "
        "and deploy again"
    )


def iter_column(
    creds: SnowflakeCredentials,
    settings: SnowflakeSettings,
    limit: int | None = None,
    connector: Callable[..., Any] = snowflake.connector.connect,
    full: bool = False,
    counts: PullCounts | None = None,
) -> Iterator[Any]:
    """Yield the values of `settings.id_column`, fetched `fetch_batch_size` rows at a time.

    Only one batch of rows is held at once. With the incremental pull on (and not `full`),
    `counts.skipped_fresh_ids` is set from the first row. The connection is closed when
    the iterator is exhausted or closed.
    """
    sql, params = build_query(settings, limit, full)
    conn = connect(creds, settings, connector)
    try:
        try:
            cursor = execute(conn.cursor(), sql, params, "running it")
        except QueryError as exc:
            if settings.refresh_after_days is None or full:
                raise
            # The state table is the usual suspect when only the incremental query fails.
            raise QueryError(
                f"{exc}. The incremental pull also reads the state table "
                f"{settings.state_table} (LOAD_STATE_TABLE): if it does not exist yet, create "
                "it with the SQL `enrichctl snowflake-setup` prints, or start this run with "
                '{"full": true}'
            ) from exc
        names = [col.name for col in cursor.description]
        index = column_index(names, settings.id_column)
        incremental = SKIPPED_COLUMN in names
        skipped_at = names.index(SKIPPED_COLUMN) if incremental else -1
        marker_at = names.index(ROW_MARKER_COLUMN) if incremental else -1
        while True:
            try:
                rows = cursor.fetchmany(settings.fetch_batch_size)
            except (sf_errors.Error, OSError) as exc:
                raise query_error(exc, "fetching rows") from exc
            if not rows:
                break
            for row in rows:
                if incremental:
                    if counts is not None:
                        counts.skipped_fresh_ids = int(row[skipped_at] or 0)
                    if row[marker_at] is None:
                        continue  # the all-fresh marker row: carries the count only
                yield row[index]
    finally:
        close_quietly(conn)
