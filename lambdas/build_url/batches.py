"""Produce a run's `batches.json`: fresh from `ids.json`, or the failed batches of an earlier run.

Plain functions over an S3 client so the handler stays a thin adapter and tests can drive
them with moto.
"""

from __future__ import annotations

import codecs
import json
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from build_url.urls import iter_batches
from enrich_shared import storage
from enrich_shared.errors import InvalidInputError
from enrich_shared.models import Batch

#: Bytes read from S3 at a time while streaming `ids.json`.
READ_CHUNK_BYTES = 256 * 1024
#: `batches.json` is assembled in a temp file that spills to /tmp beyond this size.
SPOOL_MAX_MEMORY_BYTES = 1024 * 1024
_WHITESPACE = " \t\n\r"


def _not_an_id_list(bucket: str, key: str) -> InvalidInputError:
    return InvalidInputError(
        f"s3://{bucket}/{key} must hold a JSON array of ID strings; it was not written by "
        "QueryIds or was changed since"
    )


def iter_json_strings(chunks: Iterable[bytes], error: Exception) -> Iterator[str]:
    """Yield the strings of a JSON array of strings arriving as byte `chunks`.

    Only the current chunk and one decoded value are held, so a 1,000,000-ID file costs no
    more memory than a small one. Raises `error` when the text is anything else (not an
    array, an element that is not a string, bad JSON, text after the array).
    """
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    source = iter(chunks)
    buf, pos, eof = "", 0, False

    def more() -> bool:
        # Appends the next chunk to what is left of the buffer; False at end of input.
        nonlocal buf, pos, eof
        if eof:
            return False
        chunk = next(source, None)
        if chunk is None:
            eof = True
            text = utf8.decode(b"", final=True)
        else:
            text = utf8.decode(chunk)
        buf, pos = buf[pos:] + text, 0
        return True

    def next_char() -> str:
        # Skips whitespace; returns the next character ("" at end of input).
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    try:
        if next_char() != "[":
            raise error
        pos += 1
        if next_char() == "]":
            pos += 1
        else:
            while True:
                if next_char() != '"':
                    raise error
                while True:
                    try:
                        value, end = decoder.raw_decode(buf, pos)
                        break
                    except json.JSONDecodeError:
                        if not more():  # a string cut at the chunk's end: read on
                            raise error from None
                pos = end
                yield value
                separator = next_char()
                pos += 1
                if separator == "]":
                    break
                if separator != ",":
                    raise error
        if next_char() != "":
            raise error
    except UnicodeDecodeError:
        raise error from None


def stream_ids(bucket: str, key: str, client: Any) -> Iterator[str]:
    """Stream a run's ID list (a JSON array of strings) from S3, one ID at a time."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from iter_json_strings(
            iter(lambda: body.read(READ_CHUNK_BYTES), b""), _not_an_id_list(bucket, key)
        )
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
