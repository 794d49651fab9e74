"""How connector failures map to the pipeline's error names (retried or not).

The connector is replaced by fakes raising the connector's own exception classes, for
cases the embedded server cannot produce (statement timeout, a socket dropped mid-fetch).
Login refusals run the real connector against a 127.0.0.1 server answering Snowflake's
failure document (fakesnow accepts any credentials); refused connections and SQL errors
run for real in test_query_ids_handler.py.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from snowflake.connector import errors as sf

from enrich_shared.errors import ConfigurationError, QueryError, SnowflakeUnavailableError
from enrich_shared.snowflake_conn import SnowflakeCredentials
from query_ids.snowflake_source import SnowflakeSettings, iter_column

SETTINGS = SnowflakeSettings(secret_name="sf", fetch_batch_size=2)
CREDS_SECRET = {
    "account": "a",
    "user": "u",
    "warehouse": "w",
    "database": "d",
    "schema": "s",
    "role": "r",
    "password": "pw-canary",
}
CREDS = SnowflakeCredentials.from_secret(CREDS_SECRET, "sf")


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
        # Classified by errno only: no code, no refusal, whatever the text says.
        (
            sf.DatabaseError(msg="Failed to login: Authentication failed."),
            SnowflakeUnavailableError,
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


class LoginRefusal(BaseHTTPRequestHandler):
    """Answers every login with Snowflake's failure document (HTTP 200, success false)."""

    answer: dict = {}

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_snowflake() -> Iterator[tuple[ThreadingHTTPServer, type[LoginRefusal]]]:
    handler = type("Refusal", (LoginRefusal,), {"answer": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("390100", "Incorrect username or password was specified.", ConfigurationError),
        (
            "390144",
            "JWT token is invalid. [0ce9eb56-821d-4ca9-a774-04ae89a0cf5a]",
            ConfigurationError,
        ),
        # The connector words this one "...full re-authentication required": a fresh login
        # (a retry) is the fix, so it must not be taken for refused credentials.
        ("390114", "Authentication token has expired.", SnowflakeUnavailableError),
    ],
)
def test_login_refusals_are_classified_by_snowflakes_code(
    refusing_snowflake, code, message, expected
):
    server, handler = refusing_snowflake
    handler.answer = {"data": None, "code": code, "message": message, "success": False}
    secret = {
        **CREDS_SECRET,
        "host": "127.0.0.1",
        "port": server.server_address[1],
        "protocol": "http",
    }
    creds = SnowflakeCredentials.from_secret(secret, "sf")
    with pytest.raises(expected) as caught:
        list(iter_column(creds, SETTINGS))  # the real connector, talking HTTP to the server
    assert f"DatabaseError {code}" in str(caught.value)
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
