"""InvokeEnrich step: one Distributed Map item = one GET to the enrichment API.

A 2xx answer is stored in the bucket (results.py) before the step reports success.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from enrich_shared.errors import InvalidInputError, PipelineError
from enrich_shared.models import Batch, validate_run_id
from enrich_shared.observability import (
    FIELD_BATCHES_ENRICHED,
    FIELD_ENRICH_FAILURES,
    logger,
    tracer,
)
from enrich_shared.settings import env_str
from invoke_enrich.client import ClientSettings, enrich_batch
from invoke_enrich.results import store_answer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Enrich one batch and store the answer; return `EnrichResult.to_dict()` or raise."""
    batch = Batch.from_event(event)
    logger.append_keys(batch_id=batch.batch_id, run_id=batch.run_id)
    try:
        if batch.run_id is None:
            raise InvalidInputError(
                "batch event is missing the field 'run_id' (the Map's ItemSelector adds it); "
                "the answer could not be stored"
            )
        # The batch ID becomes part of an S3 key: same character rules as a run ID.
        validate_run_id(batch.batch_id, "batch_id")
        bucket = env_str("BUCKET_NAME")
        remaining_s = context.get_remaining_time_in_millis() / 1000
        answer = enrich_batch(batch, ClientSettings.from_env(), remaining_s=remaining_s)
        store_answer(bucket, batch.run_id, batch, answer)
        result = answer.result
    except PipelineError as error:
        logger.warning(
            "batch not enriched",
            extra={
                "error_type": type(error).__name__,
                "error": str(error),
                FIELD_ENRICH_FAILURES: 1,
            },
        )
        raise
    logger.info("batch enriched", extra={**result.to_dict(), FIELD_BATCHES_ENRICHED: 1})
    return result.to_dict()
