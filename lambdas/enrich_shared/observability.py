"""Powertools Logger, Metrics and Tracer, configured once for every step.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (set by the stack); the defaults serve local runs and tests.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "imdb-enrichment"
NAMESPACE = "ImdbEnrichment"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

# Metric names (dashboard and alarms in stacks/monitoring.py use these).
METRIC_IDS_QUERIED = "IdsQueried"
METRIC_INVALID_IDS = "InvalidIds"
METRIC_BATCHES_BUILT = "BatchesBuilt"
METRIC_BATCHES_ENRICHED = "BatchesEnriched"
METRIC_ENRICH_FAILURES = "EnrichFailures"
METRIC_IDS_LOADED = "IdsLoaded"
