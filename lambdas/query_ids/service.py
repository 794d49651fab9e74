"""QueryIds as plain logic: claim the run, stream Snowflake's IDs through cleaning into S3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import snowflake.connector

from enrich_shared.models import QueryResult, RunRequest
from enrich_shared.observability import logger
from enrich_shared.snowflake_conn import load_credentials
from enrich_shared.storage import ids_key
from query_ids.claim import ALREADY_RAN, claim_run
from query_ids.id_cleaning import IdCleaner
from query_ids.ids_file import upload_ids
from query_ids.snowflake_source import PullCounts, SnowflakeSettings, iter_column


def query_ids(
    request: RunRequest,
    settings: SnowflakeSettings,
    bucket: str,
    s3: Any,
    connector: Callable[..., Any] = snowflake.connector.connect,
) -> tuple[QueryResult, IdCleaner]:
    """Run QueryIds for `request`; returns the step result and the cleaner's counts."""
    status, owner = claim_run(s3, bucket, request.run_id, request.execution_id, request.trigger)
    if status == ALREADY_RAN:
        logger.warning(
            "run id already claimed by another execution; stopping without querying",
            extra={"owner_execution_id": owner},
        )
        return QueryResult(
            run_id=request.run_id, dry_run=request.dry_run, status=status
        ), IdCleaner()

    # Read the secret only once the run is ours: an already-ran run needs no credentials.
    creds = load_credentials(settings)
    incremental = settings.refresh_after_days is not None and not request.full
    logger.info(
        "querying Snowflake",
        extra={
            "account": creds.account,
            "auth": "key-pair" if creds.private_key_der else "password",
            "id_column": settings.id_column,
            "limit": request.limit,
            "fetch_batch_size": settings.fetch_batch_size,
            "incremental": incremental,
            "refresh_after_days": settings.refresh_after_days if incremental else None,
        },
    )
    cleaner = IdCleaner()
    key = ids_key(request.run_id)
    counts = PullCounts()
    values = iter_column(creds, settings, request.limit, connector, request.full, counts)
    try:
        upload_ids(s3, bucket, key, cleaner.clean(values))
    finally:
        values.close()  # closes the connection even when the upload failed
    logger.info(
        "IDs cleaned and stored",
        extra={"ids_key": key, "skipped_fresh_ids": counts.skipped_fresh_ids, **cleaner.summary()},
    )
    if cleaner.invalid_count:
        logger.warning(
            "invalid IDs were dropped",
            extra={
                "invalid_count": cleaner.invalid_count,
                "invalid_sample": cleaner.invalid_sample,
            },
        )
    result = QueryResult(
        run_id=request.run_id,
        dry_run=request.dry_run,
        status=status,
        ids_key=key,
        ids_count=cleaner.ids_count,
        invalid_count=cleaner.invalid_count,
        duplicate_count=cleaner.duplicate_count,
        skipped_fresh_ids=counts.skipped_fresh_ids,
    )
    return result, cleaner
