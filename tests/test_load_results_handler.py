"""The LoadResults Lambda end to end: secret from Secrets Manager (moto), the real connector
against the embedded Snowflake, and canary secrets that must stay out of every log line."""

from __future__ import annotations

import io
import json
import logging
import uuid

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from enrich_shared.errors import ConfigurationError, SnowflakeUnavailableError
from enrich_shared.load_sql import create_tables
from enrich_shared.observability import logger as powertools_logger
from load_results.handler import lambda_handler
from tests.lambda_context import lambda_context

PASSWORD_CANARY = "canary-load-pw-" + uuid.uuid4().hex
RUN = "manual-2026-12-01"


@pytest.fixture
def function_env(snowflake, tmp_path, monkeypatch):
    """Tables, a stage with one answer and one failure, moto, and the function's env."""
    suffix = uuid.uuid4().hex[:8].upper()
    env = {
        "LOAD_STAGE": f"EIDR.PUBLIC.RUNS_{suffix}",
        "LOAD_LANDING_TABLE": f"EIDR.PUBLIC.LANDING_{suffix}",
        "LOAD_RESULTS_TABLE": f"EIDR.PUBLIC.RESULTS_{suffix}",
        "LOAD_STATE_TABLE": f"EIDR.PUBLIC.STATE_{suffix}",
        "SNOWFLAKE_LOGIN_TIMEOUT_S": "5",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LOAD_SOURCE_STAGE", raising=False)
    snowflake.create_table()
    for statement in create_tables(
        env["LOAD_LANDING_TABLE"], env["LOAD_RESULTS_TABLE"], env["LOAD_STATE_TABLE"]
    ):
        snowflake.execute(statement)
    snowflake.execute(f"CREATE STAGE {env['LOAD_STAGE']} URL='file://{tmp_path}/'")
    for kind, doc in [
        ("results", {"fetched_at": "2026-12-01T02:00:00Z", "status": 200, "body": {}}),
        ("failed", {"url": "u", "error": {"Error": "RejectedEnrichError", "Cause": "400"}}),
    ]:
        folder = tmp_path / RUN / kind
        folder.mkdir(parents=True)
        ids = ["tt0000001"] if kind == "results" else ["tt0000002"]
        doc = {"run_id": RUN, "batch_id": kind, "ids": ids, **doc}
        (folder / f"{kind}.json").write_text(json.dumps(doc))
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()
    with mock_aws():
        yield env
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()


def use_secret(monkeypatch, value: dict) -> None:
    name = f"snowflake-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))
    monkeypatch.setenv("SNOWFLAKE_SECRET_NAME", name)


def test_handler_loads_the_run_and_logs_no_secret(
    snowflake, function_env, monkeypatch, caplog, capfd
):
    use_secret(monkeypatch, snowflake.secret(password=PASSWORD_CANARY))
    caplog.set_level(logging.DEBUG)  # root, including snowflake.connector and botocore
    lines = io.StringIO()
    handler = powertools_logger.registered_handler
    original_stream = handler.setStream(lines)
    powertools_logger.setLevel("DEBUG")
    try:
        result = lambda_handler({"run_id": RUN, "other": "state"}, lambda_context())
        again = lambda_handler({"run_id": RUN}, lambda_context())
        use_secret(monkeypatch, snowflake.secret(port=1, password=PASSWORD_CANARY))
        monkeypatch.setenv("SNOWFLAKE_LOGIN_TIMEOUT_S", "1")
        with pytest.raises(SnowflakeUnavailableError) as caught:
            lambda_handler({"run_id": RUN}, lambda_context())
    finally:
        powertools_logger.setLevel("INFO")
        handler.setStream(original_stream)

    assert result == {
        "run_id": RUN,
        "files_loaded": 2,
        "results_merged": 1,
        "state_merged": 2,
        "ids_ok": 1,
        "ids_failed": 1,
    }
    assert (again["files_loaded"], again["state_merged"], again["ids_ok"]) == (0, 0, 1)
    logged = lines.getvalue()
    records = [json.loads(line) for line in logged.splitlines()]
    assert any(r["message"] == "LoadResults finished" for r in records)
    assert all(r.get("run_id") == RUN for r in records if r["level"] != "DEBUG")
    captured = capfd.readouterr()
    text = "\n".join(
        [logged, caplog.text, captured.out, captured.err, json.dumps(result), repr(caught.value)]
    )
    assert PASSWORD_CANARY not in text


def test_missing_stage_setting_names_the_variable(snowflake, function_env, monkeypatch):
    use_secret(monkeypatch, snowflake.secret())
    monkeypatch.delenv("LOAD_STAGE")
    with pytest.raises(ConfigurationError, match="LOAD_STAGE"):
        lambda_handler({"run_id": RUN}, lambda_context())
