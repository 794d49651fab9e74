"""Reading a run's objects back from the pipeline bucket in moto's S3 (the S3 layout is
`enrich_shared.storage`'s, the same the Lambdas write)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from enrichctl.paths import use_repo_code

use_repo_code()
from enrich_shared.storage import failed_record_keys, run_prefix  # noqa: E402


def failed_records(s3: Any, bucket: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's failure record: batch ID -> the failed Map item (with its error)."""
    records: dict[str, dict[str, Any]] = {}
    for key in failed_record_keys(bucket, run_id, s3):  # the same listing as the Lambdas
        body = read_json(s3, bucket, key)
        records[str(body.get("batch_id", key))] = body
    return records


def read_json(s3: Any, bucket: str, key: str) -> Any:
    """One JSON object from the bucket."""
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def export_run(s3: Any, bucket: str, run_id: str, target: Path) -> int:
    """Copy `runs/<run_id>/` to `target` (moto forgets it on exit); return the object count."""
    count = 0
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=run_prefix(run_id))
    for page in pages:
        for obj in page.get("Contents", []):
            path = target / obj["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            count += 1
    return count
