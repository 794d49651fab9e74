"""Secrets canary: full local runs with a canary Snowflake password, a canary (encrypted)
private key and passphrase, and a canary API key. None of them may appear in any log line,
step result, execution history, S3 object, template or CLI output.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from enrichctl.cli import main
from enrichctl.embedded_snowflake import DATABASE, SCHEMA
from enrichctl.local_run.stage import LoadTarget, LocalStage

CANARY_PASSWORD = "canary-pw-7f3a9c1e-NEVER-LOG"
CANARY_PASSPHRASE = "canary-pass-91b2d4-NEVER-LOG"
CANARY_API_KEY = "canary-apikey-5e8c07-NEVER-LOG"


@pytest.fixture(scope="module")
def canary_key() -> dict[str, Any]:
    """A fresh RSA key: its encrypted PEM, and the fragments that must never leak."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(CANARY_PASSPHRASE.encode()),
    ).decode()
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return {
        "pem": pem,
        # Any 40-char run of the PEM body or of the decrypted key (base64/hex) is a leak.
        "fragments": [line[:40] for line in body_lines[1:-1]]
        + [base64.b64encode(der).decode()[100:140], der.hex()[200:240]],
    }


def canaries(extra: list[str] | None = None) -> list[str]:
    return [CANARY_PASSWORD, CANARY_PASSPHRASE, CANARY_API_KEY, *(extra or [])]


def assert_clean(where: str, text: str, secrets: list[str]) -> None:
    leaked = [s[:12] + "..." for s in secrets if s and s in text]
    assert not leaked, f"secret canaries found in {where}: {leaked}"


def scan_tree(root: Path, secrets: list[str]) -> int:
    """Assert no file under `root` holds a canary; return how many files were read."""
    count = 0
    for path in root.rglob("*"):
        if path.is_file():
            assert_clean(str(path), path.read_bytes().decode("utf-8", "replace"), secrets)
            count += 1
    return count


def scan_bucket(bucket: str, secrets: list[str]) -> int:
    s3 = boto3.client("s3")
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            assert_clean(f"s3://{bucket}/{obj['Key']}", body.decode("utf-8", "replace"), secrets)
            count += 1
    return count


@contextlib.contextmanager
def everything_at_debug(log_path: Path) -> Iterator[None]:
    """Root logger at DEBUG into `log_path`: what a debugging session (or Lambda's log level
    control set to DEBUG) would show, including the connector's and urllib3's own logs."""
    handler = logging.FileHandler(log_path)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    service = logging.getLogger("imdb-enrichment")
    saved = (root.level, service.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    service.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(saved[0])
        service.setLevel(saved[1])


def test_canary_password_never_leaves_the_secret_through_the_cli(
    snowflake, seed, pipeline_template, pipeline_config, tmp_path, capsys
):
    seed([f"tt{9_300_000 + i:07d}" for i in range(100)] + [None, "bad"])
    # A "real account" (--snowflake-secret-file): the runner creates nothing there, so set it
    # up as an administrator would (`enrichctl snowflake-setup`): tables and stage.
    load = pipeline_config.load
    target = LoadTarget(load.stage, load.landing_table, load.results_table, load.state_table, None)
    LocalStage(target, tmp_path / "account-stage").prepare(snowflake.secret())
    secret_file = tmp_path / "snowflake-secret.json"
    secret_file.write_text(json.dumps(snowflake.secret(password=CANARY_PASSWORD)))
    out_dir = tmp_path / "out"

    code = main(
        [
            "local",
            "--json",
            "--output-dir",
            str(out_dir),
            "--snowflake-secret-file",
            str(secret_file),
        ]
    )
    stdout, stderr = capsys.readouterr()

    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["status"] == "SUCCEEDED" and summary["ids"] == 100
    assert (out_dir / "lambda.log").stat().st_size > 0
    secrets = canaries()
    assert_clean("CLI stdout", stdout, secrets)
    assert_clean("CLI stderr", stderr, secrets)
    assert scan_tree(out_dir, secrets) >= 6  # lambda.log, summary/states/history, s3/, enriched/
    assert_clean("synthesized template", json.dumps(pipeline_template), secrets)


def test_canary_key_pair_and_api_key_never_leak_even_at_debug(
    make_pipeline, snowflake, seed, canary_key, lambda_log, tmp_path
):
    values = [f"tt{9_400_000 + i:07d}" for i in range(150)]
    seed(values)
    secret = snowflake.secret(password=None, private_key=canary_key["pem"])
    secret["private_key_passphrase"] = CANARY_PASSPHRASE
    del secret["password"]
    rejected = values[100]
    pipeline, api = make_pipeline(
        snowflake_secret=secret,
        env={"API_KEY_SECRET_NAME": "imdb-enrichment/api-key", "POWERTOOLS_LOG_LEVEL": "DEBUG"},
        api_key=("x-api-key", CANARY_API_KEY),
        # An API that echoes the request's key in its error page (seen in the wild).
        rules={rejected: 400},
        error_body=f"<html>bad request; you sent x-api-key: {CANARY_API_KEY}</html>",
        # ... and in its 2xx answers, which InvokeEnrich stores in runs/<id>/results/.
        ok_body=f"accepted; you sent x-api-key: {CANARY_API_KEY}",
    )
    boto3.client("secretsmanager").put_secret_value(
        SecretId="imdb-enrichment/api-key", SecretString=CANARY_API_KEY
    )
    debug_log = tmp_path / "debug.log"

    with everything_at_debug(debug_log):
        report = pipeline.run({"run_id": "canary-keypair"})
        # And a failing run: Snowflake unreachable with the same credentials.
        pipeline.set_snowflake_secret({**secret, "port": 9})
        parameters.clear_caches()  # warm functions cache the secret for 5 minutes
        failed = pipeline.run({"run_id": "canary-down"})

    assert report.status == "FAILED" and report.error == "BatchesFailed"  # the 400 batch
    assert all(r.headers.get("x-api-key") == CANARY_API_KEY for r in api.requests)
    assert failed.status == "FAILED" and failed.error == "SnowflakeUnavailableError"
    secrets = canaries(canary_key["fragments"])
    for run in (report, failed):
        assert_clean("execution history", json.dumps(run.history, default=str), secrets)
        assert_clean("execution output/cause", f"{run.output} {run.cause}", secrets)
        for call in run.invocations:
            assert_clean(
                f"{call.function} result/error",
                json.dumps([call.result, call.error_message], default=str),
                secrets,
            )
    assert "***" in json.dumps(pipeline.failed_records("canary-keypair"))  # key redacted
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=pipeline.bucket, Prefix="runs/canary-keypair/results/")
    stored = [
        json.loads(s3.get_object(Bucket=pipeline.bucket, Key=o["Key"])["Body"].read())
        for o in listed.get("Contents", [])
    ]
    assert len(stored) == 2  # the two accepted batches of three
    assert {answer["body"] for answer in stored} == {"accepted; you sent x-api-key: ***"}
    assert scan_bucket(pipeline.bucket, secrets) >= 5
    # LoadResults connected with the same key pair and loaded the run (its log lines and
    # result are scanned above); nothing secret reached the stage's files or the tables.
    (load,) = [
        c for c in report.invocations if c.function == pipeline.functions["load_results"].name
    ]
    assert load.error_type is None and load.result["ids_ok"] == 80, load.error_message
    assert scan_tree(pipeline.stage.folder, secrets) >= 3  # 2 answers + 1 failure record
    text_columns = {"ENRICH_LANDING": "V", "ENRICH_RESULTS": "IMDB_ID, RECORD",
                    "ENRICH_STATE": "IMDB_ID, LAST_STATUS, LAST_ERROR"}  # fmt: skip
    for table, columns in text_columns.items():
        rows = snowflake.execute(f"SELECT {columns} FROM {DATABASE}.{SCHEMA}.{table}")
        assert rows, table
        assert_clean(f"Snowflake table {table}", json.dumps(rows, default=str), secrets)
    assert_clean("handler log", lambda_log.read_text(), secrets)
    debug_text = debug_log.read_text()
    assert len(debug_text.splitlines()) > 50  # DEBUG really was on
    assert_clean("DEBUG log of every library", debug_text, secrets)
