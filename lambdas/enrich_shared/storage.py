"""Where a run's data lives in the pipeline bucket, and small S3 JSON helpers.

Layout (contract with the state machine and `enrichctl`):
    runs/<run_id>/claim.json          which execution owns this run ID
    runs/<run_id>/ids.jsonl           clean, de-duplicated IDs (JSON Lines: one per line)
    runs/<run_id>/batches.json        [{"batch_id", "url", "ids"}, ...]
    runs/<run_id>/failed/<batch>.json one file per batch that failed for good
    runs/<run_id>/results/<batch>.json the API's answer to each enriched batch
        {"run_id", "batch_id", "fetched_at", "ids", "status", "body"}; Snowflake's stage
        reads this prefix (COPY INTO ... FROM @stage/<run_id>/results/)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig

#: Managed uploads of streamed files (ids.jsonl, batches.json): multipart above 8 MB with
#: two part uploads in flight, so at most ~2 x 8 MB of the file is in memory at once
#: (boto3's default of 10 threads would buffer up to ~80 MB of a 1,000,000-ID night).
STREAM_TRANSFER = TransferConfig(max_concurrency=2)


#: Every run's data lives below this prefix (Snowflake's stage points at it).
RUNS_PREFIX = "runs/"


def run_prefix(run_id: str) -> str:
    """`runs/<run_id>/`: everything one run writes lives below it."""
    return f"{RUNS_PREFIX}{run_id}/"


def ids_key(run_id: str) -> str:
    """Key of a run's clean ID list (JSON Lines: the Map never reads it, BuildUrls streams it)."""
    return f"{run_prefix(run_id)}ids.jsonl"


def batches_key(run_id: str) -> str:
    """Key of a run's batch list, the Distributed Map's item source."""
    return f"{run_prefix(run_id)}batches.json"


def claim_key(run_id: str) -> str:
    """Key of the object that makes a run ID belong to one execution."""
    return f"{run_prefix(run_id)}claim.json"


def failed_prefix(run_id: str) -> str:
    """Prefix of a run's failure record (one object per failed batch)."""
    return f"{run_prefix(run_id)}failed/"


def failed_record_keys(
    bucket: str, run_id: str, client: Any, page_size: int | None = None
) -> Iterator[str]:
    """Every key of a run's failure record (`runs/<run_id>/failed/*.json`), page by page.

    ListObjectsV2 returns at most 1,000 keys per call, so this follows continuation
    tokens: a night with thousands of failed batches is listed (and counted) in full.
    `page_size` only exists so tests can prove that with a handful of objects.
    """
    pagination = {"PageSize": page_size} if page_size else {}
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=failed_prefix(run_id), PaginationConfig=pagination
    )
    for page in pages:
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".json"):
                yield obj["Key"]


def results_prefix(run_id: str) -> str:
    """Prefix of a run's stored API answers (one object per enriched batch)."""
    return f"{run_prefix(run_id)}results/"


def result_key(run_id: str, batch_id: str) -> str:
    """Key of one batch's stored API answer."""
    return f"{results_prefix(run_id)}{batch_id}.json"


def s3_client() -> Any:
    """An S3 client; created per call site so tests under moto get a mocked one."""
    return boto3.client("s3")


def put_json(bucket: str, key: str, value: Any, client: Any | None = None) -> None:
    """Write `value` as compact JSON to s3://bucket/key."""
    body = json.dumps(value, separators=(",", ":")).encode()
    (client or s3_client()).put_object(
        Bucket=bucket, Key=key, Body=body, ContentType="application/json"
    )


def get_json(bucket: str, key: str, client: Any | None = None) -> Any:
    """Read and parse the JSON object at s3://bucket/key."""
    response = (client or s3_client()).get_object(Bucket=bucket, Key=key)
    return json.loads(response["Body"].read())
