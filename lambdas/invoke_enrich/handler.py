"""InvokeEnrich step: one Distributed Map item = one GET to the enrichment API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from enrich_shared.errors import PipelineError
from enrich_shared.models import Batch
from enrich_shared.observability import (
    METRIC_BATCHES_ENRICHED,
    METRIC_ENRICH_FAILURES,
    logger,
    metrics,
    tracer,
)
from invoke_enrich.client import ClientSettings, enrich_batch


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Enrich one batch; return `EnrichResult.to_dict()` or raise a classified error."""
    batch = Batch.from_event(event)
    logger.append_keys(batch_id=batch.batch_id, run_id=batch.run_id)
    try:
        remaining_s = context.get_remaining_time_in_millis() / 1000
        result = enrich_batch(batch, ClientSettings.from_env(), remaining_s=remaining_s)
    except PipelineError as error:
        metrics.add_metric(name=METRIC_ENRICH_FAILURES, unit=MetricUnit.Count, value=1)
        logger.warning(
            "batch not enriched", extra={"error_type": type(error).__name__, "error": str(error)}
        )
        raise
    metrics.add_metric(name=METRIC_BATCHES_ENRICHED, unit=MetricUnit.Count, value=1)
    logger.info("batch enriched", extra=result.to_dict())
    return result.to_dict()
