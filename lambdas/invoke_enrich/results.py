"""Store each 2xx answer as one self-describing object: runs/<run_id>/results/<batch_id>.json.

Writing it is part of the batch: a failed write raises `RetryableEnrichError`, so the state
machine retries the batch (and records it as failed when retries run out) exactly like a
failed request. "Enriched" therefore always means "answer stored", and the load step can
trust that every enriched batch has its object.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from enrich_shared.errors import RetryableEnrichError
from enrich_shared.models import Batch
from enrich_shared.storage import put_json, result_key
from invoke_enrich.client import Answer


def parse_body(data: bytes) -> Any:
    """The answer's JSON value, or its text when it is not JSON (never dropped)."""
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def result_document(run_id: str, batch: Batch, answer: Answer, fetched_at: datetime) -> dict:
    """The stored object (contract with the load step; see storage.py)."""
    return {
        "run_id": run_id,
        "batch_id": batch.batch_id,
        "fetched_at": fetched_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "ids": batch.ids,
        "status": answer.result.http_status,
        "body": parse_body(answer.data),
    }


def store_answer(
    bucket: str, run_id: str, batch: Batch, answer: Answer, client: Any | None = None
) -> str:
    """Write the batch's answer to the bucket and return its key; `RetryableEnrichError` if not."""
    key = result_key(run_id, batch.batch_id)
    document = result_document(run_id, batch, answer, datetime.now(UTC))
    try:
        put_json(bucket, key, document, client=client)
    except (ClientError, BotoCoreError) as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
        raise RetryableEnrichError(
            f"batch {batch.batch_id}: the API answered HTTP {answer.result.http_status} but "
            f"the answer could not be stored at s3://{bucket}/{key} ({code}); the batch "
            "counts as not enriched and is retried"
        ) from None
    return key
