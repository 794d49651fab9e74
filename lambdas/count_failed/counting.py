"""Count a run's failure record exactly, at any size."""

from __future__ import annotations

from typing import Any

from enrich_shared import storage
from enrich_shared.models import FailureCount


def count_failed_batches(
    bucket: str, run_id: str, client: Any, page_size: int | None = None
) -> FailureCount:
    """The number of batches recorded under `runs/<run_id>/failed/`.

    Paginated (see `storage.failed_record_keys`): ListObjectsV2's KeyCount stops at 1,000,
    and only the count, never the keys, goes back into the state (256 KiB limit).
    """
    count = sum(1 for _ in storage.failed_record_keys(bucket, run_id, client, page_size))
    return FailureCount(count=count, prefix=storage.failed_prefix(run_id))
