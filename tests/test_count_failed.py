"""count_failed: the exact, paginated count of a run's failure record (moto S3)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from count_failed.counting import count_failed_batches
from enrich_shared import storage
from enrich_shared.errors import InvalidInputError
from tests.lambda_context import lambda_context

BUCKET = "pipeline-bucket"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put_failed(client, run_id: str, count: int) -> None:
    for n in range(1, count + 1):
        key = f"{storage.failed_prefix(run_id)}{n:06d}.json"
        client.put_object(Bucket=BUCKET, Key=key, Body=b"{}")


def test_count_follows_every_page(s3):
    put_failed(s3, "night-1", 7)
    put_failed(s3, "night-10", 2)  # a run ID that extends night-1's: not counted
    s3.put_object(Bucket=BUCKET, Key="runs/night-1/batches.json", Body=b"[]")

    result = count_failed_batches(BUCKET, "night-1", s3, page_size=2)  # 4 pages

    assert result.count == 7
    assert result.prefix == "runs/night-1/failed/"


def test_more_than_one_listing_page_at_the_default_page_size(s3):
    # ListObjectsV2 stops at 1,000 keys (what KeyCount reported); the count goes on.
    put_failed(s3, "night-2", 1_003)
    assert count_failed_batches(BUCKET, "night-2", s3).count == 1_003


def test_handler_returns_only_the_count_and_the_prefix(s3):
    from count_failed.handler import lambda_handler

    put_failed(s3, "night-3", 3)
    assert lambda_handler({"run_id": "night-3"}, lambda_context()) == {
        "count": 3,
        "prefix": "runs/night-3/failed/",
    }
    assert lambda_handler({"run_id": "night-4"}, lambda_context()) == {
        "count": 0,
        "prefix": "runs/night-4/failed/",
    }


@pytest.mark.parametrize("event", [{}, {"run_id": "../x"}, ["night-1"]])
def test_handler_refuses_a_bad_event(s3, event):
    from count_failed.handler import lambda_handler

    with pytest.raises(InvalidInputError):
        lambda_handler(event, lambda_context())
