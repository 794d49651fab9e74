"""CountFailedBatches step: the exact number of failed batches of a run (after the map)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from count_failed.counting import count_failed_batches
from enrich_shared import storage
from enrich_shared.models import FailureCountRequest
from enrich_shared.observability import FIELD_BATCHES_FAILED, logger, tracer
from enrich_shared.settings import env_str


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Count `runs/<run_id>/failed/`; return `FailureCount.to_dict()`."""
    request = FailureCountRequest.from_event(event)
    logger.append_keys(run_id=request.run_id)
    result = count_failed_batches(env_str("BUCKET_NAME"), request.run_id, storage.s3_client())
    # The FailedBatches metric is published by the state machine from this count
    # (PublishFailedBatches), so there is one source for the metric, the cause and the Choice.
    logger.info(
        "failed batches counted", extra={**result.to_dict(), FIELD_BATCHES_FAILED: result.count}
    )
    return result.to_dict()
