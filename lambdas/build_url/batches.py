"""Produce a run's `batches.json`: fresh from `ids.jsonl`, or the failed batches of an earlier run.

Plain functions over an S3 client so the handler stays a thin adapter and tests can drive
them with moto.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from build_url.urls import iter_batches
from enrich_shared import storage
from enrich_shared.errors import InvalidInputError
from enrich_shared.models import Batch

#: Bytes read from S3 at a time while streaming `ids.jsonl`: ~5,000 IDs, whose parsed values
#: peak at ~1 MiB whatever the ID count (measured with tracemalloc at 100,000 and 1,000,000).
READ_CHUNK_BYTES = 64 * 1024
#: `batches.json` is assembled in a temp file that spills to /tmp beyond this size.
SPOOL_MAX_MEMORY_BYTES = 1024 * 1024


def _line_blocks(body: Any) -> Iterator[list[bytes]]:
    """The complete lines of each chunk read from `body` (a line cut by a chunk waits)."""
    pending = b""
    for chunk in body.iter_chunks(READ_CHUNK_BYTES):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if lines:
            yield lines
    if pending:
        yield [pending]


def _as_ids(lines: list[bytes]) -> list[Any] | None:
    """The values of `lines` parsed in one call (one line per value), or None if invalid."""
    try:
        values = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:  # bad JSON, an empty line or bad UTF-8
        return None
    if len(values) != len(lines) or not all(isinstance(v, str) for v in values):
        return None
    return values


def stream_ids(bucket: str, key: str, client: Any) -> Iterator[str]:
    """Stream a run's ID list (JSON Lines: one JSON string per line) from S3, one ID at a time.

    Only one chunk of the file is held, so a 1,000,000-ID night costs no more memory than
    a small one. Each chunk's lines are parsed by one `json.loads` (per line it is ~20x
    slower). Anything but one JSON string per line is `InvalidInputError`.
    """
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    seen = 0
    try:
        for lines in _line_blocks(body):
            values = _as_ids(lines)
            if values is None:
                bad = next(i for i, line in enumerate(lines) if _as_ids([line]) is None)
                raise InvalidInputError(
                    f"s3://{bucket}/{key} line {seen + bad + 1} is not a JSON string: QueryIds "
                    "writes one ID per line, so the file was changed since or written by "
                    "something else; start the night again with a new run_id to rewrite it"
                )
            seen += len(values)
            yield from values
    finally:
        body.close()


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
    keys = list(storage.failed_record_keys(bucket, retry_of_run_id, client, page_size))
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


def stream_batches_from_ids(
    bucket: str,
    ids_key: str,
    base_url: str,
    max_ids_per_request: int,
    max_url_length: int,
    client: Any,
) -> Iterator[Batch]:
    """The batches for the IDs stored at `ids_key`: IDs stream in, batches stream out."""
    return iter_batches(
        base_url, stream_ids(bucket, ids_key, client), max_ids_per_request, max_url_length
    )


def write_batches_stream(
    bucket: str, run_id: str, batches: Iterable[Batch], client: Any
) -> tuple[str, int, int]:
    """Write `runs/<run_id>/batches.json` from an iterable, one batch at a time.

    The JSON array fills a spooled temp file (the upload needs its length first), then
    boto3's managed transfer uploads it. Nothing is written when `batches` raises.
    Returns (key, batch count, ID count).
    """
    key = storage.batches_key(run_id)
    count = ids_count = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY_BYTES) as spool:
        spool.write(b"[")
        for batch in batches:
            if count:
                spool.write(b",")
            spool.write(json.dumps(batch.to_dict(), separators=(",", ":")).encode())
            count += 1
            ids_count += len(batch.ids)
        spool.write(b"]")
        spool.seek(0)
        client.upload_fileobj(
            spool, bucket, key, ExtraArgs={"ContentType": "application/json"},
            Config=storage.STREAM_TRANSFER,
        )  # fmt: skip
    return key, count, ids_count
