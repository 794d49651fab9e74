"""Produce a run's `batches.json`: fresh from `ids.json`, or the failed batches of an earlier run.

Plain functions over an S3 client so the handler stays a thin adapter and tests can drive
them with moto.
"""

from __future__ import annotations

from typing import Any

from build_url.urls import build_urls
from enrich_shared import storage
from enrich_shared.errors import InvalidInputError
from enrich_shared.models import Batch


def load_ids(bucket: str, key: str, client: Any) -> list[str]:
    """Read a run's ID list (a JSON array of strings) from S3."""
    ids = storage.get_json(bucket, key, client)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInputError(
            f"s3://{bucket}/{key} must hold a JSON array of ID strings; it was not written by "
            "QueryIds or was changed since"
        )
    return ids


def batches_from_ids(
    bucket: str,
    ids_key: str,
    base_url: str,
    max_ids_per_request: int,
    max_url_length: int,
    client: Any,
) -> list[Batch]:
    """Build the batches for the IDs stored at `ids_key`."""
    ids = load_ids(bucket, ids_key, client)
    return build_urls(base_url, ids, max_ids_per_request, max_url_length)


def failed_batches(
    bucket: str, retry_of_run_id: str, client: Any, page_size: int | None = None
) -> list[Batch]:
    """Return the batches recorded under `runs/<retry_of_run_id>/failed/`, in batch order.

    Each object is the JSON the state machine wrote for a failed Map item
    (`{"batch_id", "url", "ids", "run_id", "error"}`); the batch is kept exactly as it was
    (same ID, URL and IDs), so a retry repeats precisely what failed. `page_size` only
    exists so tests can prove the listing follows continuation tokens.
    """
    prefix = storage.failed_prefix(retry_of_run_id)
    keys: list[str] = []
    pagination = {"PageSize": page_size} if page_size else {}
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig=pagination
    )
    for page in pages:
        keys.extend(obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".json"))
    if not keys:
        raise InvalidInputError(
            f"run {retry_of_run_id!r} has no failed batches under s3://{bucket}/{prefix}: "
            "nothing to retry. Check retry_of_run_id (a run that succeeded has nothing to retry)"
        )
    batches = []
    for key in sorted(keys):
        record = storage.get_json(bucket, key, client)
        try:
            batch = Batch.from_event(record)
        except InvalidInputError as error:
            raise InvalidInputError(f"failed-batch record s3://{bucket}/{key}: {error}") from None
        batches.append(Batch(batch.batch_id, batch.url, batch.ids))
    return sorted(batches, key=lambda b: b.batch_id)


def write_batches(bucket: str, run_id: str, batches: list[Batch], client: Any) -> str:
    """Write `runs/<run_id>/batches.json` (the Distributed Map's items); return its key."""
    key = storage.batches_key(run_id)
    storage.put_json(bucket, key, [batch.to_dict() for batch in batches], client)
    return key
