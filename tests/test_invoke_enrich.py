"""invoke_enrich against the real local enrichment API (enrichctl.local_api) on 127.0.0.1."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from build_url.urls import build_urls
from enrich_shared.errors import (
    ConfigurationError,
    InvalidInputError,
    RejectedEnrichError,
    RetryableEnrichError,
)
from enrich_shared.models import Batch
from enrichctl.local_api import RESET, SLOW, LocalEnrichApi, fake_record
from invoke_enrich.client import ClientSettings, enrich_batch
from invoke_enrich.handler import lambda_handler
from tests.lambda_context import lambda_context
from tests.log_counts import logged_counts, step_log_lines

IDS = ["tt0000001", "tt0000002", "tt0000003"]
API_KEY = "sk-local-" + "9f2c4e7a1b3d5f60"
BUCKET = "pipeline-bucket"


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.setenv("HTTP_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("HTTP_READ_TIMEOUT_S", "5")
    monkeypatch.delenv("API_KEY_SECRET_NAME", raising=False)
    monkeypatch.delenv("API_KEY_HEADER", raising=False)


@pytest.fixture
def logs():
    """Every line the step logger writes, formatted as Powertools writes it (JSON)."""
    with step_log_lines() as lines:
        yield lines


def batch_for(api: LocalEnrichApi, ids=IDS) -> Batch:
    [batch] = build_urls(api.base_url, ids)
    return batch


def map_item(api: LocalEnrichApi, run_id: str = "night-1") -> dict:
    """The event the Distributed Map gives InvokeEnrich: a batch plus the run ID."""
    return batch_for(api).to_dict() | {"run_id": run_id}


def call(api: LocalEnrichApi, ids=IDS):
    return enrich_batch(batch_for(api, ids), ClientSettings.from_env(), remaining_s=30).result


def test_200_returns_the_result_and_the_api_writes_records(tmp_path):
    with LocalEnrichApi(output_dir=tmp_path) as api:
        result = call(api)
    assert (result.batch_id, result.http_status, result.ids_count) == ("000001", 200, 3)
    assert result.elapsed_ms >= 0
    assert [r.ids for r in api.requests] == [IDS]
    assert api.ids_enriched == 3
    [written] = tmp_path.glob("*.jsonl")
    assert [json.loads(line) for line in written.read_text().splitlines()] == [
        fake_record(i) for i in IDS
    ]


def test_204_is_success():
    with LocalEnrichApi(rules={"tt0000002": 204}) as api:
        assert call(api).http_status == 204


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_5xx_are_retryable(status):
    api = LocalEnrichApi(rules={"tt0000003": status})
    with api, pytest.raises(RetryableEnrichError, match=f"HTTP {status}") as raised:
        call(api)
    assert "scripted failure" in str(raised.value), "the body is quoted"
    assert api.request_count == 1, "the client never retries by itself"


def test_400_for_a_malformed_id_is_rejected():
    with (
        LocalEnrichApi() as api,
        pytest.raises(RejectedEnrichError, match=r"HTTP 400 .*invalid IMDB IDs"),
    ):
        call(api, ["tt0000001", "tt12;DROP"])


def test_404_for_a_wrong_path_is_rejected():
    with LocalEnrichApi(path="/enrich") as api:
        [batch] = build_urls(f"http://127.0.0.1:{api.port}/lamba-tmdb", IDS)
        with pytest.raises(RejectedEnrichError, match=r"HTTP 404 .*no route"):
            enrich_batch(batch, ClientSettings.from_env())


def test_redirect_is_not_followed_and_is_rejected():
    with (
        LocalEnrichApi(rules={"tt0000001": 302}) as api,
        pytest.raises(
            RejectedEnrichError, match=r"HTTP 302.*not followed; set enrichment\.baseUrl"
        ),
    ):
        call(api)
    assert api.request_count == 1


def test_error_message_quotes_at_most_500_characters_of_the_body():
    api = LocalEnrichApi(rules={"tt0000001": 500}, error_body="<html>" + "x" * 5000)
    with api, pytest.raises(RetryableEnrichError) as raised:
        call(api)
    message = str(raised.value)
    assert "<html>" + "x" * 494 in message
    assert "x" * 495 not in message


def test_503_twice_then_200_is_what_the_state_machine_retries_into():
    with LocalEnrichApi(rules={"tt0000002": [503, 503]}) as api:
        for _ in range(2):
            with pytest.raises(RetryableEnrichError, match="HTTP 503"):
                call(api)
        assert call(api).http_status == 200
    assert [r.status for r in api.requests] == [503, 503, 200]


def test_retry_after_is_logged(logs):
    with (
        LocalEnrichApi(rules={"tt0000001": 429}, retry_after="17") as api,
        pytest.raises(RetryableEnrichError, match="HTTP 429"),
    ):
        call(api)
    [line] = [json.loads(line) for line in logs if "Retry-After" in line]
    assert (line["retry_after"], line["http_status"]) == ("17", 429)


def test_response_slower_than_the_read_timeout_is_retryable(monkeypatch):
    monkeypatch.setenv("HTTP_READ_TIMEOUT_S", "0.2")
    with (
        LocalEnrichApi(mode=SLOW, slow_s=10) as api,
        pytest.raises(RetryableEnrichError, match=r"timed out .*read 0.2s"),
    ):
        call(api)


def test_remaining_lambda_time_caps_the_request(monkeypatch):
    """With 2.6 s left the request gets ~0.6 s, though the read timeout allows 5 s."""
    with (
        LocalEnrichApi(rules={"tt0000001": SLOW}, slow_s=10) as api,
        pytest.raises(RetryableEnrichError, match=r"timed out .*total 0\.6s"),
    ):
        enrich_batch(batch_for(api), ClientSettings.from_env(), remaining_s=2.6)


def test_refused_connection_is_retryable(closed_port):
    [batch] = build_urls(f"http://127.0.0.1:{closed_port}/lamba-tmdb", IDS)
    with pytest.raises(RetryableEnrichError, match="could not connect"):
        enrich_batch(batch, ClientSettings.from_env())


def test_connection_reset_mid_response_is_retryable():
    with (
        LocalEnrichApi(mode=RESET) as api,
        pytest.raises(RetryableEnrichError, match="broke mid-request"),
    ):
        call(api)
    assert api.requests[0].status is None


# -- API key from Secrets Manager (moto) --------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    """moto for Secrets Manager and S3, with the pipeline bucket created (BUCKET_NAME)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    parameters.clear_caches()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield
    parameters.clear_caches()


@pytest.fixture
def secrets(aws):
    return boto3.client("secretsmanager")


@pytest.fixture
def s3(aws):
    return boto3.client("s3")


@pytest.mark.parametrize("stored", [API_KEY, json.dumps({"api_key": API_KEY})])
def test_api_key_header_is_sent_when_configured(secrets, monkeypatch, stored):
    name = f"enrich/api-key-{uuid.uuid4()}"
    secrets.create_secret(Name=name, SecretString=stored)
    monkeypatch.setenv("API_KEY_SECRET_NAME", name)
    monkeypatch.setenv("API_KEY_HEADER", "X-Enrich-Key")
    with LocalEnrichApi(api_key=("X-Enrich-Key", API_KEY)) as api:
        assert call(api).http_status == 200
    assert api.requests[0].headers["x-enrich-key"] == API_KEY


def test_without_the_key_the_api_refuses():
    with (
        LocalEnrichApi(api_key=("x-api-key", API_KEY)) as api,
        pytest.raises(RejectedEnrichError, match="HTTP 403"),
    ):
        call(api)
    assert "x-api-key" not in api.requests[0].headers


def test_empty_key_secret_is_a_configuration_error(secrets, monkeypatch):
    name = f"enrich/api-key-{uuid.uuid4()}"
    secrets.create_secret(Name=name, SecretString=json.dumps({"token": API_KEY}))
    monkeypatch.setenv("API_KEY_SECRET_NAME", name)
    with LocalEnrichApi() as api, pytest.raises(ConfigurationError, match="holds no API key"):
        call(api)


def test_api_key_never_appears_in_errors_or_logs(secrets, monkeypatch, logs, capsys):
    name = f"enrich/api-key-{uuid.uuid4()}"
    secrets.create_secret(Name=name, SecretString=API_KEY)
    monkeypatch.setenv("API_KEY_SECRET_NAME", name)
    # A misbehaving API that echoes the key back in its error page.
    echo = f"upstream failed for key {API_KEY}"
    api = LocalEnrichApi(rules={"tt0000001": 503}, error_body=echo, retry_after="5")
    with api, pytest.raises(RetryableEnrichError) as raised:
        lambda_handler(map_item(api), lambda_context())
    assert api.requests[0].headers["x-api-key"] == API_KEY, "the key was sent"
    assert "upstream failed for key ***" in str(raised.value)
    assert API_KEY not in str(raised.value)
    assert logs and not any(API_KEY in line for line in logs)
    captured = capsys.readouterr()
    assert API_KEY not in captured.out + captured.err


# -- handler --------------------------------------------------------------------------------


def test_handler_returns_the_enrich_result_and_counts_it(s3, logs):
    with LocalEnrichApi() as api:
        event = map_item(api)
        result = lambda_handler(event, lambda_context())
    assert {k: result[k] for k in ("batch_id", "http_status", "ids_count")} == {
        "batch_id": "000001",
        "http_status": 200,
        "ids_count": 3,
    }
    assert set(result) == {"batch_id", "http_status", "ids_count", "elapsed_ms"}
    assert logged_counts("\n".join(logs)) == {"batches_enriched": 1}
    [line] = [json.loads(line) for line in logs if "batch enriched" in line]
    assert (line["batch_id"], line["run_id"]) == ("000001", "night-1")


def test_handler_counts_a_failure_and_raises_it_by_name(s3, logs):
    with LocalEnrichApi(rules={"tt0000001": 404}) as api:
        event = map_item(api)
        with pytest.raises(RejectedEnrichError):
            lambda_handler(event, lambda_context())
    assert logged_counts("\n".join(logs)) == {"enrich_failures": 1}
    [line] = [json.loads(line) for line in logs if "not enriched" in line]
    assert (line["error_type"], line["batch_id"], line["run_id"]) == (
        "RejectedEnrichError",
        "000001",
        "night-1",
    )


# -- the stored answer (runs/<run_id>/results/<batch_id>.json) ------------------------------


def stored(s3, key: str = "runs/night-1/results/000001.json") -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_handler_stores_the_answer_with_the_exact_shape(s3):
    before = datetime.now(UTC)
    with LocalEnrichApi() as api:
        lambda_handler(map_item(api), lambda_context())
    document = stored(s3)
    assert set(document) == {"run_id", "batch_id", "fetched_at", "ids", "status", "body"}
    assert (document["run_id"], document["batch_id"], document["ids"], document["status"]) == (
        "night-1",
        "000001",
        IDS,
        200,
    )
    assert document["body"] == {"records": [fake_record(i) for i in IDS]}
    fetched_at = datetime.fromisoformat(document["fetched_at"])
    assert fetched_at.utcoffset() == timedelta(0), "UTC"
    assert before - timedelta(seconds=1) <= fetched_at <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("rules", "ok_body", "expected"),
    [
        ({}, "accepted; results go to s3://elsewhere/", "accepted; results go to s3://elsewhere/"),
        ({}, '{"records": [', '{"records": ['),  # truncated JSON is text, not dropped
        ({"tt0000002": 204}, None, ""),
    ],
    ids=["text", "broken-json", "204-empty"],
)
def test_a_non_json_answer_is_stored_as_text(s3, rules, ok_body, expected):
    with LocalEnrichApi(rules=rules, ok_body=ok_body) as api:
        result = lambda_handler(map_item(api), lambda_context())
    assert stored(s3)["body"] == expected
    assert stored(s3)["status"] == result["http_status"]


def test_a_failed_write_is_retryable_and_not_counted_as_enriched(s3, monkeypatch, logs):
    monkeypatch.setenv("BUCKET_NAME", "no-such-bucket")
    with LocalEnrichApi() as api:
        event = map_item(api)
        with pytest.raises(RetryableEnrichError, match=r"could not be stored .*NoSuchBucket"):
            lambda_handler(event, lambda_context())
    assert api.request_count == 1, "the API answered; only the write failed"
    assert logged_counts("\n".join(logs)) == {"enrich_failures": 1}
    assert not any("batch enriched" in line for line in logs)


def test_a_failed_answer_stores_nothing(s3):
    with LocalEnrichApi(rules={"tt0000001": 503}) as api, pytest.raises(RetryableEnrichError):
        lambda_handler(map_item(api), lambda_context())
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_a_map_item_without_run_id_is_refused_before_any_request(s3):
    with LocalEnrichApi() as api, pytest.raises(InvalidInputError, match="run_id"):
        lambda_handler(batch_for(api).to_dict(), lambda_context())
    assert api.request_count == 0


def test_idempotency_key_is_the_same_on_every_attempt(s3):
    with LocalEnrichApi(rules={"tt0000001": [503, 429]}) as api:
        for _ in range(2):
            with pytest.raises(RetryableEnrichError):
                lambda_handler(map_item(api, run_id="night-7"), lambda_context())
        lambda_handler(map_item(api, run_id="night-7"), lambda_context())
    assert [r.headers["idempotency-key"] for r in api.requests] == ["night-7/000001"] * 3


def test_an_api_key_echoed_in_a_2xx_answer_is_not_stored(secrets, s3, monkeypatch, logs):
    name = f"enrich/api-key-{uuid.uuid4()}"
    secrets.create_secret(Name=name, SecretString=API_KEY)
    monkeypatch.setenv("API_KEY_SECRET_NAME", name)
    with LocalEnrichApi(ok_body=f"ok, caller {API_KEY}") as api:
        lambda_handler(map_item(api), lambda_context())
    raw = s3.get_object(Bucket=BUCKET, Key="runs/night-1/results/000001.json")["Body"].read()
    assert API_KEY.encode() not in raw
    assert stored(s3)["body"] == "ok, caller ***"
    assert not any(API_KEY in line for line in logs)
