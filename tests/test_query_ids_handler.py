"""QueryIds end to end: the real 5.x connector against fakesnow's server over a socket,
Secrets Manager and S3 through moto.

The module starts its own embedded Snowflake (one per xdist worker), so the seeded
EIDR.PUBLIC.ORGS_IMDB_FILTERED holds exactly the rows below.
"""

from __future__ import annotations

import io
import json
import logging
import tracemalloc
import uuid

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws

from build_url.batches import stream_ids
from enrich_shared.errors import (
    ConfigurationError,
    InvalidInputError,
    QueryError,
    SnowflakeUnavailableError,
)
from enrich_shared.load_sql import create_state_table
from enrich_shared.observability import logger as powertools_logger
from enrichctl.embedded_snowflake import EmbeddedSnowflake
from query_ids.handler import lambda_handler
from tests.lambda_context import lambda_context

BUCKET = "qids-test-bucket"
#: Rows of the seeded table: (ORG_ID, CREATIVEWORKID, IMDB_VALUE).
ROWS = [
    ("10.5237/AAAA-0001", "10.5240/0001-0001-0001-0001-0001-X", "tt0111161"),
    ("10.5237/AAAA-0001", "10.5240/0001-0001-0001-0001-0002-X", None),
    ("10.5237/AAAA-0002", "10.5240/0001-0001-0001-0001-0003-X", ""),
    ("10.5237/AAAA-0002", "10.5240/0001-0001-0001-0001-0004-X", "   "),
    ("10.5237/AAAA-0003", "10.5240/0001-0001-0001-0001-0005-X", "  tt0068646 "),
    ("10.5237/AAAA-0003", "10.5240/0001-0001-0001-0001-0006-X", "TT0110912"),
    ("10.5237/AAAA-0004", "10.5240/0001-0001-0001-0001-0007-X", "tt0111161"),
    ("10.5237/AAAA-0004", "10.5240/0001-0001-0001-0001-0008-X", "tt1234567&ids=x"),
    ("10.5237/AAAA-0005", "10.5240/0001-0001-0001-0001-0009-X", "tt0068646"),
    ("10.5237/AAAA-0005", "10.5240/0001-0001-0001-0001-0010-X", "tt10872600"),
    ("10.5237/AAAA-0006", "10.5240/0001-0001-0001-0001-0011-X", "tt0133093\nINFO forged"),
]
EXPECTED_IDS = ["tt0111161", "tt0068646", "tt10872600"]
BIG_ROWS = 100_000
PASSWORD_CANARY = "canary-P4ssw0rd-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def snow():
    with EmbeddedSnowflake() as server:
        server.seed_rows(ROWS)
        yield server


@pytest.fixture
def aws(monkeypatch):
    """moto for S3 and Secrets Manager, with the function's environment set."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # The connector probes EC2 metadata for its telemetry; tests reach 127.0.0.1 only.
        "AWS_EC2_METADATA_DISABLED": "true",
        "BUCKET_NAME": BUCKET,
        "SNOWFLAKE_LOGIN_TIMEOUT_S": "5",
        "SNOWFLAKE_NETWORK_TIMEOUT_S": "30",
        "SNOWFLAKE_STATEMENT_TIMEOUT_S": "60",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "SNOWFLAKE_QUERY",
        "SNOWFLAKE_ID_COLUMN",
        "FETCH_BATCH_SIZE",
        "SNOWFLAKE_REFRESH_AFTER_DAYS",
        "LOAD_STATE_TABLE",
    ):
        monkeypatch.delenv(name, raising=False)
    # Powertools caches secrets and its client across tests; start each test clean.
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()


def create_secret(value: dict) -> str:
    """Store `value` under a fresh name (Powertools caches secrets by name)."""
    name = f"snowflake-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))
    return name


def put_secret(monkeypatch, value: dict) -> str:
    """Store `value` under a fresh name and point the function at it."""
    name = create_secret(value)
    monkeypatch.setenv("SNOWFLAKE_SECRET_NAME", name)
    return name


def event(run_id: str | None = None, execution: str = "exec-1", **run_input) -> dict:
    run_id = run_id or f"run-{uuid.uuid4().hex[:8]}"
    return {
        "input": {"run_id": run_id, **run_input},
        "execution_id": f"arn:aws:states:us-east-1:123456789012:execution:sm:{execution}",
        "execution_name": execution,
    }


def stored_ids(key: str) -> list[str]:
    # Read back with BuildUrls' own reader: the file is what the next step consumes.
    return list(stream_ids(BUCKET, key, boto3.client("s3")))


def rsa_pem(passphrase: str | None) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def test_dirty_rows_are_cleaned_and_stored(snow, aws, monkeypatch):
    put_secret(monkeypatch, snow.secret(password=PASSWORD_CANARY))
    ev = event()
    result = lambda_handler(ev, lambda_context())

    run_id = ev["input"]["run_id"]
    assert result == {
        "run_id": run_id,
        "dry_run": False,
        "status": "claimed",
        "ids_key": f"runs/{run_id}/ids.jsonl",
        "ids_count": 3,
        # NULL, '', blank, upper-case TT, hostile `&ids=x`, forged newline
        "invalid_count": 6,
        "duplicate_count": 2,  # tt0111161 again, tt0068646 after its padded twin
        "skipped_fresh_ids": 0,
    }
    assert stored_ids(result["ids_key"]) == EXPECTED_IDS


def test_key_pair_auth_with_passphrase(snow, aws, monkeypatch):
    secret = snow.secret(private_key=rsa_pem("s3cret"), private_key_passphrase="s3cret")
    del secret["password"]
    put_secret(monkeypatch, secret)
    result = lambda_handler(event(), lambda_context())
    assert stored_ids(result["ids_key"]) == EXPECTED_IDS


def test_limit_is_honoured(snow, aws, monkeypatch):
    put_secret(monkeypatch, snow.secret())
    result = lambda_handler(event(limit=5), lambda_context())
    # The first 5 rows hold one valid ID, its padded sibling and three invalid values.
    assert stored_ids(result["ids_key"]) == ["tt0111161", "tt0068646"]
    assert result["invalid_count"] == 3


def test_hostile_limit_is_rejected_before_any_query(snow, aws, monkeypatch):
    put_secret(monkeypatch, snow.secret())
    for hostile in ["5; DROP TABLE ORGS_IMDB_FILTERED", "5", 0, -1, 1.5, True]:
        with pytest.raises(InvalidInputError, match="limit"):
            lambda_handler(event(limit=hostile), lambda_context())
    assert snow.execute("SELECT COUNT(*) FROM EIDR.PUBLIC.ORGS_IMDB_FILTERED") == [(len(ROWS),)]


def test_second_execution_of_a_run_id_stops_same_execution_proceeds(snow, aws, monkeypatch):
    put_secret(monkeypatch, snow.secret())
    first = lambda_handler(event("nightly-1", execution="exec-a"), lambda_context())
    assert first["status"] == "claimed"
    # The same execution again (Lambda retry / redrive) does the work again.
    again = lambda_handler(event("nightly-1", execution="exec-a"), lambda_context())
    assert again["status"] == "claimed" and again["ids_count"] == 3
    # Another execution with the same run ID does nothing.
    other = lambda_handler(event("nightly-1", execution="exec-b"), lambda_context())
    assert other == {
        "run_id": "nightly-1",
        "dry_run": False,
        "status": "already_ran",
        "ids_key": None,
        "ids_count": 0,
        "invalid_count": 0,
        "duplicate_count": 0,
        "skipped_fresh_ids": 0,
    }


def test_incremental_pull_skips_fresh_ids_unless_full(snow, aws, monkeypatch):
    state = f"EIDR.PUBLIC.STATE_{uuid.uuid4().hex[:8].upper()}"
    snow.execute(create_state_table(state))
    snow.execute(
        f"INSERT INTO {state} (IMDB_ID, LAST_STATUS, LAST_ENRICHED_AT, ATTEMPTS) "
        "VALUES ('tt0111161', 'OK', SYSDATE(), 1), ('tt0068646', 'FAILED', NULL, 1)"
    )
    put_secret(monkeypatch, snow.secret())
    monkeypatch.setenv("SNOWFLAKE_REFRESH_AFTER_DAYS", "7")
    monkeypatch.setenv("LOAD_STATE_TABLE", state)

    result = lambda_handler(event(), lambda_context())
    assert stored_ids(result["ids_key"]) == ["tt0068646", "tt10872600"]
    assert result["skipped_fresh_ids"] == 1
    assert result["invalid_count"] == 6  # invalid values are never "fresh": still counted

    full = lambda_handler(event(full=True), lambda_context())
    assert stored_ids(full["ids_key"]) == EXPECTED_IDS
    assert full["skipped_fresh_ids"] == 0

    with pytest.raises(InvalidInputError, match="full"):
        lambda_handler(event(full="yes"), lambda_context())


def test_server_down_is_unavailable(aws, monkeypatch, snow, closed_port):
    monkeypatch.setenv("SNOWFLAKE_LOGIN_TIMEOUT_S", "2")
    put_secret(monkeypatch, snow.secret(port=closed_port, password=PASSWORD_CANARY))
    with pytest.raises(SnowflakeUnavailableError) as caught:
        lambda_handler(event(), lambda_context())
    assert PASSWORD_CANARY not in str(caught.value)


def test_unknown_table_is_a_query_error(snow, aws, monkeypatch):
    put_secret(monkeypatch, snow.secret())
    monkeypatch.setenv("SNOWFLAKE_QUERY", "SELECT IMDB_VALUE FROM EIDR.PUBLIC.NO_SUCH_TABLE")
    with pytest.raises(QueryError, match="NO_SUCH_TABLE"):
        lambda_handler(event(), lambda_context())


def test_missing_column_lists_the_columns(snow, aws, monkeypatch):
    put_secret(monkeypatch, snow.secret())
    monkeypatch.setenv("SNOWFLAKE_ID_COLUMN", "IMDB_ID")
    with pytest.raises(QueryError) as caught:
        lambda_handler(event(), lambda_context())
    message = str(caught.value)
    assert "'IMDB_ID'" in message
    assert "['ORG_ID', 'CREATIVEWORKID', 'IMDB_VALUE']" in message
    # The fix names the configuration key the operator owns, not the function's env var.
    assert "snowflake.idColumn" in message


@pytest.mark.parametrize("field", ["account", "user", "warehouse", "database", "schema", "role"])
def test_missing_secret_field_is_named(snow, aws, monkeypatch, field):
    secret = snow.secret()
    del secret[field]
    put_secret(monkeypatch, secret)
    with pytest.raises(ConfigurationError, match=f"'{field}'"):
        lambda_handler(event(), lambda_context())


def test_secret_without_key_or_password_and_malformed_key(snow, aws, monkeypatch):
    secret = snow.secret()
    del secret["password"]
    put_secret(monkeypatch, secret)
    with pytest.raises(ConfigurationError, match=r"'private_key'.*'password'"):
        lambda_handler(event(), lambda_context())

    put_secret(monkeypatch, {**secret, "private_key": "-----BEGIN PRIVATE KEY-----\nnope"})
    with pytest.raises(ConfigurationError, match="'private_key' is malformed"):
        lambda_handler(event(), lambda_context())

    pem = rsa_pem("right")
    put_secret(monkeypatch, {**secret, "private_key": pem, "private_key_passphrase": "wrong"})
    with pytest.raises(ConfigurationError, match="'private_key_passphrase'") as caught:
        lambda_handler(event(), lambda_context())
    assert "right" not in str(caught.value) and pem[40:80] not in str(caught.value)


def test_secrets_never_reach_logs_results_or_errors(snow, aws, monkeypatch, caplog, capfd):
    """Canary values for the password, the key and its passphrase, with every logger at DEBUG."""
    passphrase = "canary-passphrase-" + uuid.uuid4().hex
    pem = rsa_pem(passphrase)
    key_canaries = [line for line in pem.splitlines() if not line.startswith("-----")][:5]
    canaries = [PASSWORD_CANARY, passphrase, *key_canaries]
    key_secret = snow.secret(private_key=pem, private_key_passphrase=passphrase)
    del key_secret["password"]
    # Stored before logging goes to DEBUG: the test's own CreateSecret calls are not the
    # function's logs.
    secret_names = [
        create_secret(snow.secret(password=PASSWORD_CANARY)),
        create_secret(key_secret),
        create_secret(snow.secret(port=1, password=PASSWORD_CANARY)),
    ]

    caplog.set_level(logging.DEBUG)  # root, including snowflake.connector and botocore
    # Powertools writes JSON lines to the stdout it saw at import; capture them here instead.
    powertools_lines = io.StringIO()
    handler = powertools_logger.registered_handler
    original_stream = handler.setStream(powertools_lines)
    powertools_logger.setLevel("DEBUG")
    try:
        outputs = []
        for name in secret_names[:2]:
            monkeypatch.setenv("SNOWFLAKE_SECRET_NAME", name)
            outputs.append(json.dumps(lambda_handler(event(), lambda_context())))
        # A failing login too: error messages are logged by the platform.
        monkeypatch.setenv("SNOWFLAKE_LOGIN_TIMEOUT_S", "1")
        monkeypatch.setenv("SNOWFLAKE_SECRET_NAME", secret_names[2])
        with pytest.raises(SnowflakeUnavailableError) as caught:
            lambda_handler(event(), lambda_context())
        outputs.append(repr(caught.value) + repr(caught.value.__cause__))
    finally:
        powertools_logger.setLevel("INFO")
        handler.setStream(original_stream)

    captured = capfd.readouterr()
    logged = powertools_lines.getvalue()
    text = "\n".join([logged, caplog.text, captured.out, captured.err, *outputs])
    lines = [json.loads(line) for line in logged.splitlines()]
    assert any(line["message"] == "querying Snowflake" for line in lines)
    assert all("run_id" in line for line in lines if line["level"] != "DEBUG")
    for canary in canaries:
        assert canary not in text


@pytest.mark.slow
def test_100k_rows_stream_with_bounded_memory(snow, aws, monkeypatch):
    """Peak memory of the handler stays well under what holding the result would cost.

    Two checks that a non-streaming implementation breaks: the rows are read with
    fetchmany(FETCH_BATCH_SIZE) and never fetchall, and the handler's peak (tracemalloc)
    is below the memory of the fetched result held as Python rows.
    """
    snow.seed_synthetic(BIG_ROWS, table="ORGS_IMDB_100K")
    put_secret(monkeypatch, snow.secret())
    monkeypatch.setenv(
        "SNOWFLAKE_QUERY", "SELECT ORG_ID, CREATIVEWORKID, IMDB_VALUE FROM ORGS_IMDB_100K"
    )
    monkeypatch.setenv("FETCH_BATCH_SIZE", "5000")
    with snow.connect() as conn:
        cursor_class = type(conn.cursor())
    calls: list[tuple[str, object]] = []
    real_fetchmany, real_fetchall = cursor_class.fetchmany, cursor_class.fetchall

    def fetchmany(self, size=None):
        calls.append(("fetchmany", size))
        return real_fetchmany(self, size)

    def fetchall(self):
        calls.append(("fetchall", None))
        return real_fetchall(self)

    monkeypatch.setattr(cursor_class, "fetchmany", fetchmany)
    monkeypatch.setattr(cursor_class, "fetchall", fetchall)

    # Warm up first (imports, botocore's service models, clients): fixed costs, not rows.
    lambda_handler(event(limit=10), lambda_context())
    calls.clear()
    tracemalloc.start()
    try:
        result = lambda_handler(event(), lambda_context())
        _, handler_peak = tracemalloc.get_traced_memory()
        calls_by_handler = list(calls)
        # Reference: the same result held in memory, as `fetchall` (or `list(cursor)`) does.
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        with snow.connect() as conn:
            rows = conn.cursor().execute("SELECT * FROM EIDR.PUBLIC.ORGS_IMDB_100K").fetchall()
            _, rows_peak = tracemalloc.get_traced_memory()
            held = rows_peak - baseline
            assert len(rows) == BIG_ROWS
            del rows
    finally:
        tracemalloc.stop()

    # What the de-dup set alone costs (the one structure allowed to grow with the IDs).
    ids = stored_ids(result["ids_key"])
    tracemalloc.start()
    seen = {i.encode().decode() for i in ids}  # fresh str objects, as the cleaner holds
    dedup_set, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del seen

    # Synthetic data: every 101st NULL, every 103rd hostile, every 53rd a duplicate.
    assert result["ids_count"] + result["invalid_count"] + result["duplicate_count"] == BIG_ROWS
    assert result["invalid_count"] > 0 and result["duplicate_count"] > 0
    assert len(ids) == result["ids_count"]
    print(
        f"\n100k rows: handler peak {handler_peak / 2**20:.1f} MiB (tracemalloc, incl. the "
        f"de-dup set of {dedup_set / 2**20:.1f} MiB and moto's stored object); "
        f"the result held as rows {held / 2**20:.1f} MiB"
    )
    # Holding the rows (fetchall, list(cursor), a list of all values) costs `held` on top
    # of the de-dup set; streaming costs a fraction of it.
    assert handler_peak < held
    assert handler_peak - dedup_set < held / 2
    assert ("fetchall", None) not in calls_by_handler
    assert calls_by_handler[0] == ("fetchmany", 5000)
    assert len(calls_by_handler) == BIG_ROWS // 5000 + 1  # the last call returns no rows
