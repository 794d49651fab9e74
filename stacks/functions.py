"""The pipeline steps as Lambda functions, each with its own least-privilege role."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.bundling import step_code
from stacks.config.limits import log_retention
from stacks.config.models import PipelineConfig
from stacks.memory import FUNCTION_MEMORY_MB

SERVICE_NAME = "imdb-enrichment"
#: Namespace of the one custom metric, FailedBatches (put by the state machine, not the
#: functions: they log their counts as fields instead, see enrich_shared/observability.py).
METRICS_NAMESPACE = "ImdbEnrichment"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
#: BuildUrls reads one ID list and writes one batch list: seconds, even for millions of IDs.
BUILD_URL_TIMEOUT_S = 300
#: CountFailedBatches lists 1,000 keys per call: ~15 calls for a night of 1,000,000 IDs.
COUNT_FAILED_TIMEOUT_S = 60
#: ListBucket on the failure records only (`s3:prefix` runs/<run_id>/failed/...).
FAILED_PREFIX_CONDITION = {"StringLike": {"s3:prefix": ["runs/*/failed/", "runs/*/failed/*"]}}


@dataclass(frozen=True)
class StepSpec:
    """How one step is deployed."""

    step: str
    timeout_s: int
    environment: dict[str, str]

    @property
    def memory_mb(self) -> int:
        """The step's size from stacks/memory.py (the cost model prices the same)."""
        return FUNCTION_MEMORY_MB[self.step]


class PipelineFunctions(Construct):
    """QueryIds, BuildUrls, InvokeEnrich, CountFailedBatches and (with `load.enabled`)
    LoadResults.

    Handlers are `<step>.handler.lambda_handler`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._bucket = bucket
        common = {
            "BUCKET_NAME": bucket.bucket_name,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": config.log_level,
        }
        sf = config.snowflake
        en = config.enrichment
        load = config.load

        # Snowflake's client timeouts are derived from the Lambda timeout (stacks/config),
        # so the connector gives up with a clear error before Lambda kills the function.
        query_env = {
            **common,
            "SNOWFLAKE_SECRET_NAME": sf.secret_name,
            "SNOWFLAKE_QUERY": sf.query,
            "SNOWFLAKE_ID_COLUMN": sf.id_column,
            "SNOWFLAKE_LOGIN_TIMEOUT_S": str(sf.login_timeout_s),
            "SNOWFLAKE_NETWORK_TIMEOUT_S": str(sf.network_timeout_s),
            "SNOWFLAKE_STATEMENT_TIMEOUT_S": str(sf.statement_timeout_s),
            "FETCH_BATCH_SIZE": str(sf.fetch_batch_size),
        }
        if sf.incremental.refresh_after_days is not None:
            # The incremental pull: only IDs the state table (kept by LoadResults) calls stale.
            query_env["SNOWFLAKE_REFRESH_AFTER_DAYS"] = str(sf.incremental.refresh_after_days)
            query_env["LOAD_STATE_TABLE"] = load.state_table
        self.query_ids = self._function(
            "QueryIds",
            StepSpec(
                "query_ids",
                timeout_s=sf.timeout_seconds,
                environment=query_env,
            ),
        )
        self.build_url = self._function(
            "BuildUrls",
            StepSpec(
                "build_url",
                timeout_s=BUILD_URL_TIMEOUT_S,
                environment={
                    **common,
                    "ENRICH_BASE_URL": en.base_url,
                    "MAX_IDS_PER_REQUEST": str(en.max_ids_per_request),
                    "MAX_URL_LENGTH": str(en.max_url_length),
                },
            ),
        )
        enrich_env = {
            **common,
            "HTTP_CONNECT_TIMEOUT_S": str(en.connect_timeout_s),
            "HTTP_READ_TIMEOUT_S": str(en.timeout_seconds),
            "API_KEY_HEADER": en.api_key_header,
        }
        if en.api_key_secret_name:
            enrich_env["API_KEY_SECRET_NAME"] = en.api_key_secret_name
        self.invoke_enrich = self._function(
            "InvokeEnrich",
            StepSpec(
                "invoke_enrich",
                timeout_s=en.lambda_timeout_s,
                environment=enrich_env,
            ),
        )
        self.count_failed = self._function(
            "CountFailedBatches",
            StepSpec(
                "count_failed",
                timeout_s=COUNT_FAILED_TIMEOUT_S,
                environment=common,
            ),
        )
        self.load_results: lambda_.Function | None = None
        if load.enabled:
            load_env = {
                **common,
                "SNOWFLAKE_SECRET_NAME": sf.secret_name,
                "SNOWFLAKE_LOGIN_TIMEOUT_S": str(load.login_timeout_s),
                "SNOWFLAKE_NETWORK_TIMEOUT_S": str(load.network_timeout_s),
                "SNOWFLAKE_STATEMENT_TIMEOUT_S": str(load.statement_timeout_s),
                "LOAD_STAGE": load.stage,
                "LOAD_LANDING_TABLE": load.landing_table,
                "LOAD_RESULTS_TABLE": load.results_table,
                "LOAD_STATE_TABLE": load.state_table,
                "LOAD_RECORDS_PATH": load.records_path,
                "LOAD_ID_FIELD": load.id_field,
            }
            if load.source_stage:
                # Named as `enrichctl snowflake-setup` creates it (stacks.config).
                load_env["LOAD_SOURCE_STAGE"] = load.source_stage
            self.load_results = self._function(
                "LoadResults",
                StepSpec(
                    "load_results",
                    timeout_s=load.timeout_seconds,
                    environment=load_env,
                ),
            )
        self._grant_permissions()

    @property
    def all(self) -> list[lambda_.Function]:
        """Every function, in pipeline order."""
        functions = [self.query_ids, self.build_url, self.invoke_enrich, self.count_failed]
        return functions + ([self.load_results] if self.load_results else [])

    def _function(self, name: str, spec: StepSpec) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=log_retention(self._config.retention.log_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{name} step of the IMDB enrichment pipeline (least privilege)",
        )
        # Only its own log group: no AWSLambdaBasicExecutionRole (logs:* on every group).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        function = lambda_.Function(
            self,
            name,
            description=f"IMDB enrichment: {name}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"{spec.step}.handler.lambda_handler",
            code=step_code(spec.step),
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_s),
            environment=spec.environment,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        return function

    def _objects(self, *patterns: str) -> list[str]:
        return [self._bucket.arn_for_objects(p) for p in patterns]

    def _grant_permissions(self) -> None:
        snowflake_secret = secretsmanager.Secret.from_secret_name_v2(
            self, "SnowflakeSecret", self._config.snowflake.secret_name
        )
        snowflake_secret.grant_read(self.query_ids)
        if self.load_results:
            # Its only grant: Snowflake reads the run's objects through the stage (the
            # storage integration's role, stacks/snowflake_stage.py), never this function.
            snowflake_secret.grant_read(self.load_results)
        # QueryIds claims the run (claim.json, conditional put) and writes the clean IDs.
        self.query_ids.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=self._objects("runs/*/claim.json", "runs/*/ids.jsonl"),
            )
        )
        self.query_ids.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=self._objects("runs/*/claim.json")
            )
        )
        # ids.jsonl may be a multipart upload (boto3's managed transfer); let it clean up.
        self.query_ids.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:AbortMultipartUpload"], resources=self._objects("runs/*/ids.jsonl")
            )
        )
        # BuildUrls reads IDs (normal run) or an earlier run's failure record (retry run)
        # and writes the batch list the Distributed Map reads.
        self.build_url.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=self._objects("runs/*/ids.jsonl", "runs/*/failed/*"),
            )
        )
        self.build_url.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=self._objects("runs/*/batches.json")
            )
        )
        # batches.json is a managed upload (upload_fileobj): multipart above 8 MB, and the
        # transfer aborts the upload when a part fails. Found by the IAM sufficiency test.
        self.build_url.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:AbortMultipartUpload"],
                resources=self._objects("runs/*/batches.json"),
            )
        )
        # BuildUrls (retry mode) and CountFailedBatches list a run's failure record.
        for function in (self.build_url, self.count_failed):
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[self._bucket.bucket_arn],
                    conditions=FAILED_PREFIX_CONDITION,
                )
            )
        # InvokeEnrich stores each 2xx answer (runs/<run_id>/results/<batch_id>.json) before
        # it reports the batch as enriched. Write-only: it never reads run data back.
        self.invoke_enrich.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=self._objects("runs/*/results/*")
            )
        )
        api_key = self._config.enrichment.api_key_secret_name
        if api_key:
            secretsmanager.Secret.from_secret_name_v2(self, "ApiKeySecret", api_key).grant_read(
                self.invoke_enrich
            )
