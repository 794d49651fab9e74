"""invoke_enrich against the real local enrichment API (enrichctl.local_api) on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from build_url.urls import build_urls
from enrich_shared.errors import ConfigurationError, RejectedEnrichError, RetryableEnrichError
from enrich_shared.models import Batch
from enrich_shared.observability import SERVICE
from enrich_shared.observability import logger as step_logger
from enrichctl.local_api import RESET, SLOW, LocalEnrichApi, fake_record
from invoke_enrich.client import ClientSettings, enrich_batch
from invoke_enrich.handler import lambda_handler
from tests.emf import emitted_metrics

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

IDS = ["tt0000001", "tt0000002", "tt0000003"]
API_KEY = "sk-local-" + "9f2c4e7a1b3d5f60"


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.setenv("HTTP_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("HTTP_READ_TIMEOUT_S", "5")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ImdbEnrichment")
    monkeypatch.delenv("API_KEY_SECRET_NAME", raising=False)
    monkeypatch.delenv("API_KEY_HEADER", raising=False)


@pytest.fixture
def logs():
    """Every line the step logger writes, formatted as Powertools writes it (JSON)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    collector = Collect()
    collector.setFormatter(step_logger.registered_handler.formatter)
    logging.getLogger(SERVICE).addHandler(collector)
    yield lines
    logging.getLogger(SERVICE).removeHandler(collector)


def batch_for(api: LocalEnrichApi, ids=IDS) -> Batch:
    [batch] = build_urls(api.base_url, ids)
    return batch


def map_item(api: LocalEnrichApi, run_id: str = "night-1") -> dict:
    """The event the Distributed Map gives InvokeEnrich: a batch plus the run ID."""
    return batch_for(api).to_dict() | {"run_id": run_id}


def call(api: LocalEnrichApi, ids=IDS):
    return enrich_batch(batch_for(api, ids), ClientSettings.from_env(), remaining_s=30)


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
def secrets(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    parameters.clear_caches()
    with mock_aws():
        yield boto3.client("secretsmanager")
    parameters.clear_caches()


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
        lambda_handler(map_item(api), FakeContext())
    assert api.requests[0].headers["x-api-key"] == API_KEY, "the key was sent"
    assert "upstream failed for key ***" in str(raised.value)
    assert API_KEY not in str(raised.value)
    assert logs and not any(API_KEY in line for line in logs)
    captured = capsys.readouterr()
    assert API_KEY not in captured.out + captured.err


# -- handler --------------------------------------------------------------------------------


@dataclass
class FakeContext:
    function_name: str = "InvokeEnrich"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:InvokeEnrich"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_handler_returns_the_enrich_result_and_counts_it(logs, capsys):
    with LocalEnrichApi() as api:
        event = map_item(api)
        result = lambda_handler(event, FakeContext())
    assert {k: result[k] for k in ("batch_id", "http_status", "ids_count")} == {
        "batch_id": "000001",
        "http_status": 200,
        "ids_count": 3,
    }
    assert set(result) == {"batch_id", "http_status", "ids_count", "elapsed_ms"}
    assert emitted_metrics(capsys.readouterr().out) == {"BatchesEnriched": 1}
    [line] = [json.loads(line) for line in logs if "batch enriched" in line]
    assert (line["batch_id"], line["run_id"]) == ("000001", "night-1")


def test_handler_counts_a_failure_and_raises_it_by_name(logs, capsys):
    with LocalEnrichApi(rules={"tt0000001": 404}) as api:
        event = map_item(api)
        with pytest.raises(RejectedEnrichError):
            lambda_handler(event, FakeContext())
    assert emitted_metrics(capsys.readouterr().out) == {"EnrichFailures": 1}
    [line] = [json.loads(line) for line in logs if "not enriched" in line]
    assert (line["error_type"], line["batch_id"], line["run_id"]) == (
        "RejectedEnrichError",
        "000001",
        "night-1",
    )
