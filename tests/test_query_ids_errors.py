"""How connector failures map to the pipeline's error names (retried or not).

The connector is replaced by fakes raising the connector's own exception classes, for
cases the embedded server cannot produce (statement timeout, auth refusal, a socket
dropped mid-fetch). Refused connections and SQL errors run for real in
test_query_ids_handler.py.
"""

import pytest
from snowflake.connector import errors as sf

from enrich_shared.errors import ConfigurationError, QueryError, SnowflakeUnavailableError
from enrich_shared.snowflake_conn import SnowflakeCredentials
from query_ids.snowflake_source import SnowflakeSettings, iter_column

SETTINGS = SnowflakeSettings(secret_name="sf", fetch_batch_size=2)
CREDS = SnowflakeCredentials.from_secret(
    {
        "account": "a",
        "user": "u",
        "warehouse": "w",
        "database": "d",
        "schema": "s",
        "role": "r",
        "password": "pw-canary",
    },
    "sf",
)


class Column:
    def __init__(self, name):
        self.name = name


class FakeCursor:
    description = [Column("ORG_ID"), Column("IMDB_VALUE")]

    def __init__(self, execute_error=None, fetch_error=None):
        self.execute_error, self.fetch_error = execute_error, fetch_error
        self.params = None
        self.batches = [[("o", "tt0000001"), ("o", "tt0000002")], [("o", "tt0000003")], []]

    def execute(self, sql, params=None):
        self.sql, self.params = sql, params
        if self.execute_error:
            raise self.execute_error

    def fetchmany(self, size):
        assert size == SETTINGS.fetch_batch_size
        if self.fetch_error and len(self.batches) < 3:
            raise self.fetch_error
        return self.batches.pop(0)


class FakeConnection:
    def __init__(self, cursor):
        self._cursor, self.closed = cursor, False

    def cursor(self):
        return self._cursor

    def close(self):
        self.closed = True


def connector_raising(error):
    def connect(**kwargs):
        raise error

    return connect


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sf.OperationalError(msg="login timed out after 30s", errno=14), SnowflakeUnavailableError),
        (sf.DatabaseError(msg="Failed to login: connection reset"), SnowflakeUnavailableError),
        (ConnectionRefusedError(111, "refused"), SnowflakeUnavailableError),
        (TimeoutError("timed out"), SnowflakeUnavailableError),
        (sf.DatabaseError(msg="Failed to login: Authentication failed."), ConfigurationError),
        (
            sf.DatabaseError(msg="Incorrect username or password was specified.", errno=390100),
            ConfigurationError,
        ),
        (
            sf.ProgrammingError(msg="Invalid value for parameter 'x'", errno=251007),
            ConfigurationError,
        ),
    ],
)
def test_connect_errors(error, expected):
    with pytest.raises(expected) as caught:
        list(iter_column(CREDS, SETTINGS, connector=connector_raising(error)))
    assert "pw-canary" not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sf.ProgrammingError(msg="SQL compilation error", errno=1003), QueryError),
        (
            sf.ProgrammingError(msg="Statement reached its statement timeout", errno=630),
            SnowflakeUnavailableError,
        ),
        (sf.OperationalError(msg="query timed out", errno=14), SnowflakeUnavailableError),
    ],
)
def test_execute_errors_and_connection_is_closed(error, expected):
    conn = FakeConnection(FakeCursor(execute_error=error))
    with pytest.raises(expected):
        list(iter_column(CREDS, SETTINGS, connector=lambda **kw: conn))
    assert conn.closed


def test_network_failure_mid_fetch_is_unavailable():
    conn = FakeConnection(FakeCursor(fetch_error=sf.OperationalError(msg="connection reset")))
    values = iter_column(CREDS, SETTINGS, connector=lambda **kw: conn)
    assert next(values) == "tt0000001"
    with pytest.raises(SnowflakeUnavailableError, match="fetching rows"):
        list(values)
    assert conn.closed


def test_rows_stream_in_batches_and_limit_is_bound():
    cursor = FakeCursor()
    seen = {}

    def connect(**kwargs):
        seen.update(kwargs)
        return FakeConnection(cursor)

    assert list(iter_column(CREDS, SETTINGS, limit=3, connector=connect)) == [
        "tt0000001",
        "tt0000002",
        "tt0000003",
    ]
    assert cursor.sql.endswith("LIMIT ?") and cursor.params == (3,)
    assert seen["paramstyle"] == "qmark"
    assert seen["login_timeout"] == SETTINGS.login_timeout_s
    assert seen["query_timeout"] == SETTINGS.statement_timeout_s
    assert seen["session_parameters"] == {
        "STATEMENT_TIMEOUT_IN_SECONDS": SETTINGS.statement_timeout_s
    }
    assert "pw-canary" not in repr(CREDS)
