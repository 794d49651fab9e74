"""LoadResults Lambda: parse the event, run `loader.load_run`, return its small result."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from enrich_shared.models import LoadRequest
from enrich_shared.observability import FIELD_IDS_LOADED, logger, tracer
from enrich_shared.snowflake_conn import load_credentials
from load_results.loader import LoadSettings, load_run


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """COPY the run's answers and failure records into Snowflake, MERGE results and state."""
    request = LoadRequest.from_event(event)
    logger.append_keys(run_id=request.run_id)
    tracer.put_annotation("run_id", request.run_id)
    settings = LoadSettings.from_env()
    creds = load_credentials(settings)
    logger.info(
        "loading the run into Snowflake",
        extra={
            "account": creds.account,
            "stage": settings.stage,
            "landing_table": settings.landing_table,
            "results_table": settings.results_table,
            "state_table": settings.state_table,
        },
    )
    result = load_run(request, settings, creds)
    logger.info("LoadResults finished", extra={**result.to_dict(), FIELD_IDS_LOADED: result.ids_ok})
    return result.to_dict()
