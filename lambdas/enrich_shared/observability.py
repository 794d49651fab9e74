"""Powertools Logger, Metrics and Tracer, configured once for every step.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (set by the stack); the defaults serve local runs and tests.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "imdb-enrichment"
NAMESPACE = "ImdbEnrichment"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Only botocore (every S3 and Secrets Manager call becomes a subsegment): auto_patch would
# also import and patch sqlite3 and requests, which no step uses (measured: ~0.07 s of
# import CPU). The Snowflake connector 5.x does its HTTP in native code: nothing to patch.
TRACED_MODULES = ("botocore",)
tracer = Tracer(service=SERVICE, auto_patch=False)
tracer.patch(TRACED_MODULES)  # a no-op where tracing is off (tests, local runs)

# Metric names (dashboard and alarms in stacks/monitoring.py use these).
METRIC_IDS_QUERIED = "IdsQueried"
METRIC_INVALID_IDS = "InvalidIds"
METRIC_BATCHES_BUILT = "BatchesBuilt"
METRIC_BATCHES_ENRICHED = "BatchesEnriched"
METRIC_ENRICH_FAILURES = "EnrichFailures"
METRIC_IDS_LOADED = "IdsLoaded"
