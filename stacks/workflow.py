"""The Step Functions state machine that runs one night (or one manual/retry run).

    RouteRun (Choice) -- input has retry_of_run_id --> BuildRetryBatches --+
        `-- otherwise --> QueryIds -> AlreadyRanOrEmpty (Choice)            |
                            already_ran / no IDs --> NothingToEnrich        |
                            otherwise --> BuildUrls --+                     |
                                                      v                     v
                                     DryRunOrEmpty (Choice) <---------------+
                                       dry run / no batches --> DryRunOrNoBatches
                                       otherwise --> EnrichBatches (Distributed Map)
                                                      InvokeEnrich --Catch--> RecordFailedBatch
                                     CountFailedBatches -> LoadResults (load.enabled)
                                     -> PublishFailedBatches
                                     -> AnyBatchFailed (Choice) --> BatchesFailed (Fail)
                                                                `-> AllBatchesEnriched

After BuildUrls the state is the BuildResult: `$.run_id`, `$.dry_run`, `$.batches_key`,
`$.batch_count`, `$.ids_count`. The map's result is discarded (ResultWriter keeps it in S3),
so `$.run_id` is still there for the steps after the map; CountFailedBatches adds
`$.failed` (`{"count", "prefix"}`, an exact count at any size) and LoadResults `$.loaded`
(its counts). A normal run and a retry run (retry_of_run_id) go through the same map, so
both load their answers and failure records before the outcome is decided.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config.budget import RetryConfig
from stacks.config.limits import TASK_TIMEOUT_MARGIN_S, log_retention
from stacks.config.models import PipelineConfig
from stacks.functions import METRICS_NAMESPACE, SERVICE_NAME, PipelineFunctions
from stacks.storage import MAP_RESULTS_PREFIX

#: Error names (Lambda errorType = exception class name, see lambdas/enrich_shared/errors.py).
SNOWFLAKE_RETRYABLE = "SnowflakeUnavailableError"
#: LoadResult's counts, kept at `$.loaded` (lambdas/enrich_shared/models.py LoadResult).
LOADED_FIELDS = ("files_loaded", "results_merged", "state_merged", "ids_ok", "ids_failed")
ENRICH_RETRYABLE = "RetryableEnrichError"
#: What LambdaInvoke's retry_on_service_exceptions retries (the Lambda service's own errors).
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
)
#: Lambda throttling under map concurrency: back off rather than fail the batch.
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"
FAILED_BATCHES_METRIC = "FailedBatches"
SDK_TASK_TIMEOUT_S = 60
#: Retries of idempotent SDK calls outside the map (a metric): any failure, briefly.
SDK_TASK_RETRY = RetryConfig(
    interval_seconds=2, backoff_rate=2.0, max_attempts=3, max_delay_seconds=20
)


def _retry_props(retry: RetryConfig) -> dict:
    return {
        "interval": Duration.seconds(retry.interval_seconds),
        "backoff_rate": retry.backoff_rate,
        "max_attempts": retry.max_attempts,
        "max_delay": Duration.seconds(retry.max_delay_seconds),
        "jitter_strategy": sfn.JitterType.FULL,
    }


class PipelineWorkflow(Construct):
    """The state machine, its log group and its (hand-written, least-privilege) role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        bucket: s3.IBucket,
        functions: PipelineFunctions,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.state_machine_name = f"{stack.stack_name}-Pipeline"
        state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self._config = config
        self._bucket = bucket

        run_payload = sfn.TaskInput.from_object(
            {
                "input": sfn.JsonPath.entire_payload,
                "execution_id": sfn.JsonPath.execution_id,
                "execution_name": sfn.JsonPath.execution_name,
            }
        )

        # ---- query, or take the batches of an earlier run's failure record
        query_ids = self._lambda_task("QueryIds", functions.query_ids, run_payload)
        query_ids.add_retry(errors=[SNOWFLAKE_RETRYABLE], **_retry_props(config.snowflake.retry))

        build_urls = self._lambda_task("BuildUrls", functions.build_url, None)
        build_retry = self._lambda_task("BuildRetryBatches", functions.build_url, run_payload)

        # ---- one child execution per batch, built from its time budget (stacks/config/budget.py)
        budget = config.enrichment.child_budget()
        invoke_enrich = self._lambda_task(
            "InvokeEnrich",
            functions.invoke_enrich,
            None,
            service_retries=False,
            timeout_s=budget.invoke_timeout_s,
        )
        # ONE retrier for everything retryable (the API's 429/5xx/timeouts, the Lambda
        # service's errors and throttling), bounded by enrichment.retry: Step Functions
        # counts attempts per retrier, so separate retriers would add up, and the child
        # must stay inside Express's 5 minutes (stacks/config checks these figures).
        invoke_enrich.add_retry(
            errors=[ENRICH_RETRYABLE, *LAMBDA_SERVICE_ERRORS, LAMBDA_THROTTLED],
            **_retry_props(budget.invoke_retry),
        )
        record_failed = self._sdk_task(
            "RecordFailedBatch",
            timeout_s=budget.record_timeout_s,
            retry=budget.record_retry,
            service="s3",
            action="putObject",
            parameters={
                "Bucket": bucket.bucket_name,
                "Key": sfn.JsonPath.format(
                    "runs/{}/failed/{}.json",
                    sfn.JsonPath.string_at("$.run_id"),
                    sfn.JsonPath.string_at("$.batch_id"),
                ),
                # moto (and S3) want a string body: the failed item, its IDs and the error.
                "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.entire_payload),
            },
        )
        # Every failure of a batch becomes data, so the child succeeds and its siblings
        # go on; the run's outcome is decided from the failure record after the map.
        invoke_enrich.add_catch(record_failed, errors=["States.ALL"], result_path="$.error")

        # Children are EXPRESS: a batch is one short HTTP call (worst case bounded below 5
        # minutes by config validation). Express bills $1.00/million executions plus
        # ~$0.000001 per 64 MB-second; Standard bills $0.025 per 1,000 transitions and a
        # child makes >= 3 (start, InvokeEnrich, end), i.e. ~$0.000075 per batch against
        # ~$0.000003 for Express: ~25x cheaper per batch. moto only runs STANDARD
        # children, so the local runner rewrites this one field (and says so).
        enrich_batches = sfn.DistributedMap(
            self,
            "EnrichBatches",
            item_reader=sfn.S3JsonItemReader(
                bucket=bucket, key=sfn.JsonPath.string_at("$.batches_key")
            ),
            item_selector={
                "batch_id": sfn.JsonPath.string_at("$$.Map.Item.Value.batch_id"),
                "url": sfn.JsonPath.string_at("$$.Map.Item.Value.url"),
                "ids": sfn.JsonPath.list_at("$$.Map.Item.Value.ids"),
                "run_id": sfn.JsonPath.string_at("$.run_id"),
            },
            max_concurrency=config.enrichment.max_concurrency,
            map_execution_type=sfn.StateMachineType.EXPRESS,
            # The children's results go to S3, never into the state (256 KB limit).
            # V2 renders only with the feature flag
            # @aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2 (set in cdk.json).
            result_writer_v2=sfn.ResultWriterV2(
                bucket=bucket, prefix=MAP_RESULTS_PREFIX.rstrip("/")
            ),
            result_path=sfn.JsonPath.DISCARD,
            # No ItemBatcher and no ToleratedFailurePercentage: moto's grammar rejects them,
            # and failures are recorded as data instead (see RecordFailedBatch).
        )
        enrich_batches.item_processor(invoke_enrich)
        # A child fails only if RecordFailedBatch itself failed after its retries: that
        # batch's IDs are then in neither the API nor the failure record, so a retry run
        # would miss them. Say so plainly instead of a bare map failure. (moto ignores
        # failed children, so this path is AWS-only; tests/reliability records that.)
        enrich_batches.add_catch(
            sfn.Fail(
                self,
                "FailureRecordIncomplete",
                error="FailureRecordIncomplete",
                cause=(
                    "A batch failed and its failure could not be written to runs/<run_id>/"
                    "failed/, so the failure record is incomplete. Fix S3 access, then start "
                    "a new run for the whole night (a new run_id), not a retry of this one."
                ),
            ),
            errors=["States.ALL"],
            result_path="$.map_error",
        )

        # ---- decide the run's outcome from its failure record
        # An exact, paginated count in a Lambda: ListObjectsV2's KeyCount stops at 1,000
        # and a 1,000-key listing nears the 256 KiB state limit (DataLimitExceeded is not
        # caught by States.ALL). Only {"count", "prefix"} comes back into the state.
        count_failed = self._lambda_task(
            "CountFailedBatches",
            functions.count_failed,
            sfn.TaskInput.from_object({"run_id": sfn.JsonPath.string_at("$.run_id")}),
            result_selector={
                "count": sfn.JsonPath.number_at("$.Payload.count"),
                "prefix": sfn.JsonPath.string_at("$.Payload.prefix"),
            },
            result_path="$.failed",
        )
        # Counting is read-only: retry S3's errors (boto3's ClientError, after boto3's own
        # retries) and a timed-out attempt briefly; our own errors (bad input) never.
        count_failed.add_retry(
            errors=["ClientError", "States.Timeout"], **_retry_props(SDK_TASK_RETRY)
        )
        publish_failed = self._sdk_task(
            "PublishFailedBatches",
            service="cloudwatch",
            action="putMetricData",
            parameters={
                "Namespace": METRICS_NAMESPACE,
                "MetricData": [
                    {
                        "MetricName": FAILED_BATCHES_METRIC,
                        "Dimensions": [{"Name": "service", "Value": SERVICE_NAME}],
                        "Unit": "Count",
                        "Value": sfn.JsonPath.number_at("$.failed.count"),
                    }
                ],
            },
        )
        batches_failed = sfn.Fail(
            self,
            "BatchesFailed",
            error="BatchesFailed",
            cause_path=sfn.JsonPath.format(
                "{} batch(es) failed after all retries; failure record: s3://"
                + bucket.bucket_name
                + "/runs/{}/failed/ (one JSON file per batch with its IDs and error). "
                "Enrich just those batches again by starting an execution with "
                "retry_of_run_id set to {}",
                sfn.JsonPath.string_at("$.failed.count"),
                sfn.JsonPath.string_at("$.run_id"),
                sfn.JsonPath.string_at("$.run_id"),
            ),
        )
        any_failed = (
            sfn.Choice(self, "AnyBatchFailed")
            .when(sfn.Condition.number_greater_than("$.failed.count", 0), batches_failed)
            .otherwise(sfn.Succeed(self, "AllBatchesEnriched"))
        )
        # The steps after the map, in order; the run's outcome (AnyBatchFailed) comes last.
        after_map: list[sfn.TaskStateBase] = [count_failed]
        if functions.load_results is not None:
            after_map.append(self._load_results(functions.load_results))
        after_map.append(publish_failed)
        chain = sfn.Chain.start(enrich_batches)
        for step in after_map:
            chain = chain.next(step)
        enrich_and_judge = chain.next(any_failed)

        dry_run_or_empty = (
            sfn.Choice(self, "DryRunOrEmpty")
            .when(
                sfn.Condition.or_(
                    sfn.Condition.boolean_equals("$.dry_run", True),
                    sfn.Condition.number_equals("$.batch_count", 0),
                ),
                sfn.Succeed(self, "DryRunOrNoBatches"),
            )
            .otherwise(enrich_and_judge)
        )
        build_urls.next(dry_run_or_empty)
        build_retry.next(dry_run_or_empty)

        already_ran_or_empty = (
            sfn.Choice(self, "AlreadyRanOrEmpty")
            .when(
                sfn.Condition.or_(
                    sfn.Condition.string_equals("$.status", "already_ran"),
                    sfn.Condition.number_equals("$.ids_count", 0),
                ),
                sfn.Succeed(self, "NothingToEnrich"),
            )
            .otherwise(build_urls)
        )
        route_run = (
            sfn.Choice(self, "RouteRun")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.retry_of_run_id"),
                    sfn.Condition.is_string("$.retry_of_run_id"),
                ),
                build_retry,
            )
            .otherwise(query_ids.next(already_ran_or_empty))
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # The /aws/vendedlogs/ prefix keeps CloudWatch's resource policy small.
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=log_retention(config.retention.log_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="IMDB enrichment state machine (least privilege, written by hand)",
        )
        # Every permission is written out below; the automatic grants of the constructs
        # (some on bucket/* or without conditions) go to a read-only view and are dropped.
        self.policy = iam.Policy(
            self,
            "Policy",
            roles=[self.role],
            statements=self._statements(state_machine_arn, functions),
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(route_run),
            role=self.role.without_policy_updates(),
            timeout=Duration.minutes(config.workflow.timeout_minutes),
            tracing_enabled=True,
            # ERROR, with execution data. A Distributed Map's children log through their
            # parent's LoggingConfiguration (ProcessorConfig has only Mode and
            # ExecutionType), so one level serves both. At ALL every Express child wrote
            # its batch twice, the answer's summary and seven events
            # (enrichctl/cost.CHILD_LOG_BYTES_AT_ALL; docs/costs.md prices what that cost).
            # ERROR keeps the failure events (TaskFailed,
            # LambdaFunctionFailed/TimedOut, ExecutionFailed/TimedOut/Aborted,
            # FailStateEntered, MapRun/MapState failures) with their error and cause:
            # https://docs.aws.amazon.com/step-functions/latest/dg/cloudwatch-log-level.html
            # A failed batch's input is kept whole by RecordFailedBatch (runs/<run_id>/failed/).
            # The parent is a STANDARD workflow: Step Functions keeps its full history
            # (every state's input and output) for 90 days whatever the log level
            # (GetExecutionHistory, the console, `enrichctl show`).
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ERROR,
                include_execution_data=True,
            ),
            comment="Nightly IMDB-ID enrichment: Snowflake -> URL batches -> enrichment API",
        )
        # The construct adds a DistributedMapPolicy for its role; ours is read-only, so that
        # policy would never be attached or deployed. Drop it so nothing suggests otherwise:
        # the same permissions (scoped tighter) are in `self.policy`.
        self.state_machine.node.try_remove_child("DistributedMapPolicy")
        # Step Functions checks the logging permissions when it creates the state machine.
        self.state_machine.node.add_dependency(self.policy)

    # ------------------------------------------------------------------ helpers

    def _load_results(self, function: lambda_.Function) -> tasks.LambdaInvoke:
        """LoadResults: the run's answers and failure records into Snowflake.

        Before the outcome, so a night with failed batches still records every ID's state
        (FAILED ones are re-pulled by the next incremental query). Only Snowflake being
        unreachable is retried (with snowflake.retry's backoff, like QueryIds), besides the
        Lambda service's own errors; anything else fails the execution with its error. Every
        statement is idempotent per run, so the recovery is a redrive of the execution.
        """
        load = self._lambda_task(
            "LoadResults",
            function,
            sfn.TaskInput.from_object(
                {
                    "run_id": sfn.JsonPath.string_at("$.run_id"),
                    # The run's start time: when its failed IDs were attempted.
                    "started_at": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                }
            ),
            result_selector={
                name: sfn.JsonPath.number_at(f"$.Payload.{name}") for name in LOADED_FIELDS
            },
            result_path="$.loaded",
        )
        load.add_retry(errors=[SNOWFLAKE_RETRYABLE], **_retry_props(self._config.snowflake.retry))
        return load

    def _lambda_task(
        self,
        name: str,
        function: lambda_.Function,
        payload: sfn.TaskInput | None,
        *,
        service_retries: bool = True,
        timeout_s: int | None = None,
        result_selector: dict | None = None,
        result_path: str | None = None,
    ) -> tasks.LambdaInvoke:
        if timeout_s is None:
            function_s = int(function.timeout.to_seconds()) if function.timeout else 900
            timeout_s = function_s + TASK_TIMEOUT_MARGIN_S
        # retry_on_service_exceptions (default True) retries Lambda.ServiceException,
        # Lambda.AWSLambdaException, Lambda.SdkClientException and
        # Lambda.ClientExecutionTimeoutException. Our own errors are retried only where a
        # retry can help (added by the caller); QueryError, RejectedEnrichError,
        # InvalidInputError, ConfigurationError and IdTooLongError never are.
        return tasks.LambdaInvoke(
            self,
            name,
            lambda_function=function,
            payload=payload,
            # Either the whole result replaces the state, or a selected part goes to a path.
            output_path=None if result_path else "$.Payload",
            result_selector=result_selector,
            result_path=result_path,
            task_timeout=sfn.Timeout.duration(Duration.seconds(timeout_s)),
            retry_on_service_exceptions=service_retries,
        )

    def _sdk_task(
        self,
        name: str,
        *,
        service: str,
        action: str,
        parameters: dict,
        timeout_s: int = SDK_TASK_TIMEOUT_S,
        retry: RetryConfig = SDK_TASK_RETRY,
    ) -> tasks.CallAwsService:
        task = tasks.CallAwsService(
            self,
            name,
            service=service,
            action=action,
            # The real grants are in `_statements`; this one only satisfies the construct.
            iam_resources=[self._bucket.bucket_arn],
            parameters=parameters,
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(Duration.seconds(timeout_s)),
        )
        # Idempotent calls (same key/body, a metric): retrying any failure of the call
        # itself is safe and cheap.
        task.add_retry(errors=["States.TaskFailed", "States.Timeout"], **_retry_props(retry))
        return task

    def _statements(
        self, state_machine_arn: str, functions: PipelineFunctions
    ) -> list[iam.PolicyStatement]:
        stack = Stack.of(self)
        bucket = self._bucket
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        return [
            iam.PolicyStatement(
                sid="InvokeThePipelineFunctions",
                actions=["lambda:InvokeFunction"],
                resources=[f.function_arn for f in functions.all],
            ),
            iam.PolicyStatement(
                sid="ReadBatchLists",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects("runs/*/batches.json")],
            ),
            iam.PolicyStatement(
                sid="WriteFailureRecords",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects("runs/*/failed/*")],
            ),
            iam.PolicyStatement(
                sid="WriteMapResults",
                actions=[
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[bucket.arn_for_objects(f"{MAP_RESULTS_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="RunMapChildren",
                actions=["states:StartExecution"],
                resources=[state_machine_arn],
            ),
            iam.PolicyStatement(
                sid="ManageMapChildren",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[executions],
            ),
            iam.PolicyStatement(
                sid="PublishFailedBatchesMetric",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; the condition scopes it
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            ),
            iam.PolicyStatement(
                sid="DeliverExecutionLogs",
                actions=[
                    "logs:CreateLogDelivery",
                    "logs:GetLogDelivery",
                    "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies",
                    "logs:DescribeLogGroups",
                ],
                resources=["*"],  # log delivery actions support no resource-level scoping
            ),
            iam.PolicyStatement(
                sid="WriteTraces",
                actions=[
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                ],
                resources=["*"],  # X-Ray actions support no resource-level scoping
            ),
        ]
