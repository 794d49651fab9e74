"""Powertools Logger and Tracer, configured once for every step.

The night's counts (IDs queried, batches built, ...) are structured fields of one log line
per step, not CloudWatch custom metrics: each custom metric costs $0.30 a month whatever
it holds, while a log field costs only its bytes. The dashboard's Logs Insights widget
(stacks/monitoring.py) sums the fields named in `COUNT_FIELDS`; no alarm reads them.

The service name comes from POWERTOOLS_SERVICE_NAME (set by the stack); the default serves
local runs and tests.
"""

from aws_lambda_powertools import Logger, Tracer

SERVICE = "imdb-enrichment"

logger = Logger(service=SERVICE)
# Only botocore (every S3 and Secrets Manager call becomes a subsegment): auto_patch would
# also import and patch sqlite3 and requests, which no step uses (measured: ~0.07 s of
# import CPU). The Snowflake connector 5.x does its HTTP in native code: nothing to patch.
TRACED_MODULES = ("botocore",)
tracer = Tracer(service=SERVICE, auto_patch=False)
tracer.patch(TRACED_MODULES)  # a no-op where tracing is off (tests, local runs)

# Log fields that carry a count of the night (each on exactly one kind of log line, so a
# Logs Insights `sum()` over all the function log groups counts it once).
FIELD_IDS_QUERIED = "ids_queried"  # QueryIds: clean IDs returned
FIELD_INVALID_IDS = "invalid_ids"  # QueryIds: IDs rejected as not IMDB title IDs
FIELD_BATCHES_BUILT = "batches_built"  # BuildUrls
FIELD_BATCHES_ENRICHED = "batches_enriched"  # InvokeEnrich: 1 per answered batch
FIELD_ENRICH_FAILURES = "enrich_failures"  # InvokeEnrich: 1 per failed attempt
FIELD_BATCHES_FAILED = "batches_failed"  # CountFailedBatches: failed for good
FIELD_IDS_LOADED = "ids_loaded"  # LoadResults: IDs recorded as enriched
COUNT_FIELDS = (
    FIELD_IDS_QUERIED,
    FIELD_INVALID_IDS,
    FIELD_BATCHES_BUILT,
    FIELD_BATCHES_ENRICHED,
    FIELD_ENRICH_FAILURES,
    FIELD_BATCHES_FAILED,
    FIELD_IDS_LOADED,
)
