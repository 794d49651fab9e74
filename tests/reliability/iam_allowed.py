"""Every permission the stack may grant, per role, each with the reason it is needed.

`test_iam_walk.py` walks every role and policy of the synthesized templates and fails on
any (action, resource) not listed here, on any entry here the template no longer uses
(so the list cannot rot), and on wildcard actions anywhere. Resources are written with
tokens resolved to `{LogicalId.Attr}` / `{LogicalId}` / `{AWS pseudo parameter}` (CDK's
8-character hash suffix dropped). `condition` names the condition key a grant must carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.config.limits import LOCAL_PLACEHOLDER_EXTERNAL_ID, LOCAL_PLACEHOLDER_IAM_USER_ARN


@dataclass(frozen=True)
class Grant:
    """One allowed (actions x resource) grant of a role and why the role needs it."""

    actions: tuple[str, ...]
    resource: str
    reason: str
    condition: str | None = None


BUCKET = "{StorageRunData.Arn}"
PIPELINE_EXECUTIONS = (
    "arn:{AWS::Partition}:states:{AWS::Region}:{AWS::AccountId}:execution:ImdbEnrichment-Pipeline/*"
)
PIPELINE_ARN = (
    "arn:{AWS::Partition}:states:{AWS::Region}:{AWS::AccountId}:stateMachine:"
    "ImdbEnrichment-Pipeline"
)


def _function_basics(step: str) -> list[Grant]:
    return [
        Grant(
            ("logs:CreateLogStream", "logs:PutLogEvents"),
            f"{{Functions{step}Logs.Arn}}",
            "write to its own explicit log group (no logs:CreateLogGroup: the stack creates it)",
        ),
        Grant(
            ("xray:PutTelemetryRecords", "xray:PutTraceSegments"),
            "*",
            "active tracing; X-Ray has no resource-level permissions",
        ),
    ]


#: role (logical ID without hash) -> (trusted service principal, grants)
ALLOWED: dict[str, tuple[str, list[Grant]]] = {
    "FunctionsQueryIdsRole": (
        "lambda.amazonaws.com",
        [
            *_function_basics("QueryIds"),
            Grant(
                ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"),
                "arn:{AWS::Partition}:secretsmanager:{AWS::Region}:{AWS::AccountId}:secret:"
                "imdb-enrichment/snowflake-??????",
                "read the Snowflake secret named in config (only that secret; ?????? is the "
                "random suffix Secrets Manager appends)",
            ),
            Grant(
                ("s3:PutObject",),
                BUCKET + "/runs/*/claim.json",
                "claim the run ID (conditional put, If-None-Match)",
            ),
            Grant(
                ("s3:GetObject",),
                BUCKET + "/runs/*/claim.json",
                "read who owns an existing claim (duplicate start vs. its own retry)",
            ),
            Grant(("s3:PutObject",), BUCKET + "/runs/*/ids.jsonl", "store the clean ID list"),
            Grant(
                ("s3:AbortMultipartUpload",),
                BUCKET + "/runs/*/ids.jsonl",
                "a large ID list is a multipart upload; abort it cleanly on failure",
            ),
        ],
    ),
    "FunctionsBuildUrlsRole": (
        "lambda.amazonaws.com",
        [
            *_function_basics("BuildUrls"),
            Grant(("s3:GetObject",), BUCKET + "/runs/*/ids.jsonl", "read the run's ID list"),
            Grant(
                ("s3:GetObject",),
                BUCKET + "/runs/*/failed/*",
                "retry mode: read an earlier run's failed batches",
            ),
            Grant(
                ("s3:PutObject",),
                BUCKET + "/runs/*/batches.json",
                "write the Distributed Map's item list",
            ),
            Grant(
                ("s3:AbortMultipartUpload",),
                BUCKET + "/runs/*/batches.json",
                "batches.json is a managed (multipart above 8 MB) upload; abort it on failure",
            ),
            Grant(
                ("s3:ListBucket",),
                BUCKET,
                "retry mode: list runs/<id>/failed/ (ListBucket is a bucket action; the "
                "condition limits it to that prefix)",
                condition="s3:prefix",
            ),
        ],
    ),
    "FunctionsInvokeEnrichRole": (
        "lambda.amazonaws.com",
        [
            *_function_basics("InvokeEnrich"),
            Grant(
                ("s3:PutObject",),
                BUCKET + "/runs/*/results/*",
                "store each 2xx answer before reporting the batch enriched (write-only: "
                "it never reads run data)",
            ),
        ],
    ),
    "FunctionsCountFailedBatchesRole": (
        "lambda.amazonaws.com",
        [
            *_function_basics("CountFailedBatches"),
            Grant(
                ("s3:ListBucket",),
                BUCKET,
                "count runs/<id>/failed/ page by page (ListBucket is a bucket action; the "
                "condition limits it to that prefix)",
                condition="s3:prefix",
            ),
        ],
    ),
    "FunctionsLoadResultsRole": (
        "lambda.amazonaws.com",
        [
            *_function_basics("LoadResults"),
            Grant(
                ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"),
                "arn:{AWS::Partition}:secretsmanager:{AWS::Region}:{AWS::AccountId}:secret:"
                "imdb-enrichment/snowflake-??????",
                "connect to Snowflake with the pipeline's secret, its only grant: Snowflake "
                "reads the run's objects through its stage (the storage integration's role), "
                "so the function needs no S3 access",
            ),
        ],
    ),
    "WorkflowRole": (
        "states.amazonaws.com",
        [
            Grant(
                ("lambda:InvokeFunction",),
                "{FunctionsCountFailedBatches.Arn}",
                "the CountFailedBatches task after the map",
            ),
            Grant(
                ("lambda:InvokeFunction",),
                "{FunctionsLoadResults.Arn}",
                "the LoadResults task after the map (with load.enabled)",
            ),
            Grant(
                ("lambda:InvokeFunction",),
                "{FunctionsBuildUrls.Arn}",
                "BuildUrls / BuildRetryBatches tasks",
            ),
            Grant(
                ("lambda:InvokeFunction",),
                "{FunctionsInvokeEnrich.Arn}",
                "InvokeEnrich, the task of each map child",
            ),
            Grant(
                ("lambda:InvokeFunction",),
                "{FunctionsQueryIds.Arn}",
                "the QueryIds task invokes it",
            ),
            Grant(
                ("s3:GetObject",),
                BUCKET + "/runs/*/batches.json",
                "Distributed Map ItemReader reads the batch list",
            ),
            Grant(
                ("s3:PutObject",),
                BUCKET + "/runs/*/failed/*",
                "RecordFailedBatch writes the failure record",
            ),
            Grant(
                (
                    "s3:AbortMultipartUpload",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ),
                BUCKET + "/runs/_map-results/*",
                "Distributed Map ResultWriter (multipart writes of the results manifest)",
            ),
            Grant(
                ("states:StartExecution",),
                PIPELINE_ARN,
                "Distributed Map starts its child executions on this state machine",
            ),
            Grant(
                ("states:DescribeExecution", "states:StopExecution"),
                PIPELINE_EXECUTIONS,
                "Distributed Map watches and stops its child executions",
            ),
            Grant(
                ("cloudwatch:PutMetricData",),
                "*",
                "PublishFailedBatches; PutMetricData has no resource type, the condition "
                "pins the namespace",
                condition="cloudwatch:namespace",
            ),
            Grant(
                (
                    "logs:CreateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:DescribeLogGroups",
                    "logs:DescribeResourcePolicies",
                    "logs:GetLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:UpdateLogDelivery",
                ),
                "*",
                "execution logging to CloudWatch Logs; log delivery actions take no resource",
            ),
            Grant(
                (
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:PutTelemetryRecords",
                    "xray:PutTraceSegments",
                ),
                "*",
                "state machine tracing; X-Ray has no resource-level permissions",
            ),
        ],
    ),
    "SnowflakeStageRole": (
        # Snowflake's IAM user (load.snowflakeIamUserArn), only with our external ID.
        f"{LOCAL_PLACEHOLDER_IAM_USER_ARN} if sts:ExternalId={LOCAL_PLACEHOLDER_EXTERNAL_ID}",
        [
            Grant(
                ("s3:GetObject", "s3:GetObjectVersion"),
                BUCKET + "/runs/*/results/*",
                "the storage integration's stage COPYs the stored answers into Snowflake",
            ),
            Grant(
                ("s3:GetObject", "s3:GetObjectVersion"),
                BUCKET + "/runs/*/failed/*",
                "the load step reads failure records to mark those IDs FAILED in the state table",
            ),
            Grant(
                ("s3:ListBucket",),
                BUCKET,
                "COPY lists @stage/<run_id>/results/ (prefix-limited to results/ and failed/)",
                condition="s3:prefix",
            ),
            Grant(
                ("s3:GetBucketLocation",),
                BUCKET,
                "Snowflake looks up the bucket's region before reading the stage",
            ),
        ],
    ),
    "SchedulerRoleForTarget": (
        "scheduler.amazonaws.com",
        [
            Grant(
                ("states:StartExecution",),
                "{WorkflowStateMachine}",
                "EventBridge Scheduler starts the nightly execution",
            ),
            Grant(
                ("sqs:SendMessage",),
                "{ScheduleDeadLetterQueue.Arn}",
                "a start the scheduler could not deliver goes to its dead-letter queue",
            ),
        ],
    ),
}

SOURCE = "arn:{AWS::Partition}:s3:::partner-enrichment-results"

#: Grants added only by optional configuration (tested on a template that enables them).
OPTIONAL: dict[str, list[Grant]] = {
    "SnowflakeStageRole": [
        Grant(
            ("s3:GetObject", "s3:GetObjectVersion"),
            SOURCE + "/imdb/*",
            "load.source set: the stage reads the files the API wrote there itself",
        ),
        Grant(
            ("s3:ListBucket",),
            SOURCE,
            "load.source set: COPY lists that prefix (condition limits it to imdb/)",
            condition="s3:prefix",
        ),
        Grant(
            ("s3:GetBucketLocation",),
            SOURCE,
            "load.source set: Snowflake looks up that bucket's region",
        ),
    ],
    "FunctionsInvokeEnrichRole": [
        Grant(
            ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"),
            "arn:{AWS::Partition}:secretsmanager:{AWS::Region}:{AWS::AccountId}:secret:"
            "imdb-enrichment/api-key-??????",
            "enrichment.apiKeySecretName set: read that one API key secret",
        ),
    ],
}
