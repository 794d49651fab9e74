"""Fixed limits and margins the configuration is checked against (AWS's and the pipeline's)."""

from __future__ import annotations

from typing import Any

CONTEXT_KEY = "pipeline"

#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Express child executions end after 5 minutes; the worst case of one batch must fit below.
EXPRESS_CHILD_LIMIT_S = 300
#: Seconds InvokeEnrich's Lambda gets beyond its HTTP timeouts (secret fetch, cold start).
ENRICH_LAMBDA_MARGIN_S = 15
HTTP_CONNECT_TIMEOUT_S = 5
#: A Lambda Task may run this much longer than its Lambda before Step Functions gives up.
TASK_TIMEOUT_MARGIN_S = 10
#: RecordFailedBatch (one S3 PutObject of a few KB) gives up after this long per attempt,
#: and retries this way: short, because its whole worst case counts against the 300 s.
RECORD_FAILED_TIMEOUT_S = 5
#: The longest query part one ID adds to a URL: `ids=` + the longest valid IMDB ID.
LONGEST_ID_PART = "ids=tt" + "0" * 10

#: Stand-ins for the two values only Snowflake can give (DESC INTEGRATION). The tests and the
#: local runner synthesize with them (`with_local_placeholders`); `cdk synth`/`cdk deploy` run
#: app.py, which never adds them, so a deploy still stops until cdk.json holds the real ones.
LOCAL_PLACEHOLDER_IAM_USER_ARN = "arn:aws:iam::000000000000:user/local-placeholder-not-deployable"
LOCAL_PLACEHOLDER_EXTERNAL_ID = "local-placeholder-not-deployable"
SETUP_HINT = (
    "run `enrichctl snowflake-setup`, have a Snowflake admin run the SQL it prints, then "
    "`DESC INTEGRATION <name>` gives STORAGE_AWS_IAM_USER_ARN (-> load.snowflakeIamUserArn) "
    "and STORAGE_AWS_EXTERNAL_ID (-> load.externalId): put both in cdk.json; or set "
    "load.enabled=false to deploy without loading results into Snowflake"
)


def log_retention(days: int) -> Any:
    """The `aws_logs.RetentionDays` member for a validated number of days."""
    from aws_cdk import aws_logs

    members = [m for m in aws_logs.RetentionDays if m.name != "INFINITE"]
    return dict(zip(LOG_RETENTION_DAYS, members, strict=True))[days]
