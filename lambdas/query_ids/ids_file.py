"""Writing a run's IDs to S3 as JSON Lines (one JSON string per line), streamed."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from typing import Any, BinaryIO

from enrich_shared.storage import STREAM_TRANSFER

#: Spill to disk beyond this; Lambda's /tmp holds far more than any night's IDs.
SPOOL_MAX_MEMORY_BYTES = 1024 * 1024


def write_json_lines(ids: Iterable[str], out: BinaryIO) -> int:
    """Write `ids` to `out` one JSON string per line; return how many."""
    count = 0
    for value in ids:
        out.write(json.dumps(value).encode() + b"\n")
        count += 1
    return count


def upload_ids(s3: Any, bucket: str, key: str, ids: Iterable[str]) -> int:
    """Stream `ids` into s3://bucket/key as JSON Lines through a spooled temp file.

    The file fills while the query streams (the upload needs its length first), then
    boto3's managed transfer uploads it (multipart when large). Returns the ID count.
    """
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY_BYTES) as spool:
        count = write_json_lines(ids, spool)  # type: ignore[arg-type]
        spool.seek(0)
        s3.upload_fileobj(
            spool, bucket, key, ExtraArgs={"ContentType": "application/jsonl"},
            Config=STREAM_TRANSFER,
        )  # fmt: skip
    return count
