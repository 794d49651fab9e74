"""QueryIds Lambda: parse the event, run `service.query_ids`, return its small result."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from enrich_shared.models import RunRequest
from enrich_shared.observability import (
    FIELD_IDS_QUERIED,
    FIELD_INVALID_IDS,
    logger,
    tracer,
)
from enrich_shared.settings import env_str
from enrich_shared.storage import s3_client
from query_ids.service import query_ids
from query_ids.snowflake_source import SnowflakeSettings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Claim the run, stream the IDs from Snowflake into `runs/<run_id>/ids.jsonl`."""
    request = RunRequest.from_event(event)
    logger.append_keys(run_id=request.run_id, execution_id=request.execution_id)
    tracer.put_annotation("run_id", request.run_id)
    result, cleaner = query_ids(
        request, SnowflakeSettings.from_env(), env_str("BUCKET_NAME"), s3_client()
    )
    logger.info(
        "QueryIds finished",
        extra={
            **result.to_dict(),
            FIELD_IDS_QUERIED: cleaner.ids_count,
            FIELD_INVALID_IDS: cleaner.invalid_count,
        },
    )
    return result.to_dict()
