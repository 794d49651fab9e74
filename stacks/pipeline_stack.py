"""The stack: composes one construct per concern and records cdk-nag acknowledgements."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, CfnOutput, Stack, Validations
from constructs import Construct

from stacks.config.models import PipelineConfig
from stacks.functions import PipelineFunctions
from stacks.monitoring import PipelineMonitoring
from stacks.schedule import NightlySchedule
from stacks.snowflake_stage import READABLE_KEYS, SnowflakeStageAccess
from stacks.storage import RunDataStorage
from stacks.workflow import PipelineWorkflow


class PipelineStack(Stack):
    """Everything `cdk deploy` creates for the nightly IMDB enrichment pipeline."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PipelineConfig, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.storage = RunDataStorage(self, "Storage", config=config)
        self.functions = PipelineFunctions(
            self, "Functions", config=config, bucket=self.storage.bucket
        )
        self.workflow = PipelineWorkflow(
            self,
            "Workflow",
            config=config,
            bucket=self.storage.bucket,
            functions=self.functions,
        )
        # Only when loading is on: the role trusts Snowflake's IAM user, so it exists only
        # while something needs it.
        self.snowflake_stage = (
            SnowflakeStageAccess(
                self, "SnowflakeStage", config=config.load, bucket=self.storage.bucket
            )
            if config.load.enabled
            else None
        )
        self.schedule = NightlySchedule(
            self, "Schedule", config=config, state_machine=self.workflow.state_machine
        )
        self.monitoring = PipelineMonitoring(
            self,
            "Monitoring",
            config=config,
            state_machine=self.workflow.state_machine,
            state_machine_name=self.workflow.state_machine_name,
            dead_letter_queue=self.schedule.dead_letter_queue,
            functions=self.functions.all,
        )

        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        CfnOutput(self, "RunDataBucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        # Names `enrichctl smoke` checks (names only: no secret value is ever an output).
        CfnOutput(self, "ScheduleName", value=self.schedule.schedule.schedule_name)
        CfnOutput(self, "SnowflakeSecretName", value=config.snowflake.secret_name)
        if config.enrichment.api_key_secret_name:
            CfnOutput(self, "ApiKeySecretName", value=config.enrichment.api_key_secret_name)
        CfnOutput(
            self,
            "DashboardUrl",
            value=(
                f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region="
                f"{Aws.REGION}#dashboards:name={self.monitoring.dashboard.dashboard_name}"
            ),
        )
        if self.snowflake_stage is not None:
            CfnOutput(
                self,
                "SnowflakeStageRoleArn",
                value=self.snowflake_stage.role.role_arn,
                description="STORAGE_AWS_ROLE_ARN of the Snowflake storage integration",
            )
            CfnOutput(
                self,
                "SnowflakeStageUrl",
                value=self.snowflake_stage.stage_url,
                description="URL of the Snowflake stage over the stored answers",
            )
        self._acknowledge_nag_findings()

    def _acknowledge_nag_findings(self) -> None:
        """cdk-nag AwsSolutions findings we accept on purpose, each with its reason."""
        for scope, rule, reason in NAG_ACKNOWLEDGEMENTS(self):
            Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def NAG_ACKNOWLEDGEMENTS(stack: PipelineStack) -> list[tuple[Construct, str, str]]:
    """(construct, rule, reason) for every accepted cdk-nag finding (docs/deploy.md points here)."""
    bucket = stack.storage.bucket
    bucket_arn = f"<{stack.resolve(stack.get_logical_id(bucket.node.default_child))}.Arn>"
    functions = stack.functions
    workflow = stack.workflow
    xray = (
        "X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions "
        "(the service authorization reference lists no resource type), so '*' is the only "
        "possible resource; granted because tracing is active"
    )
    per_run = (
        "The wildcard is the run ID segment of runs/<run_id>/...: run IDs are chosen per "
        "execution at run time, so the key cannot be named in advance; the file name part "
        "is fixed"
    )
    acks: list[tuple[Construct, str, str]] = [
        (
            bucket,
            "AwsSolutions-S1",
            "Run data is transient (expires after retention.runDataDays) and only this "
            "pipeline's own roles can touch it (no public access, TLS only); API calls are "
            "in CloudTrail. A second bucket for access logs would have no reader; enable S3 "
            "data events in CloudTrail if object-level audit is ever required",
        ),
        (
            stack.schedule.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue IS the dead-letter queue of the Scheduler target; a DLQ for a DLQ "
            "adds nothing. Its messages raise the SchedulerDeadLetters alarm and are kept 14 "
            "days",
        ),
    ]
    for function in functions.all:
        acks.append(
            (
                function,
                "AwsSolutions-L1",
                "Python 3.12 on purpose: the bundles are built from cp312 manylinux wheels "
                "(snowflake-connector-python 5.2 among them) and the pipeline is tested on "
                "3.12 semantics; moving up is a change of RUNTIME and bundling.PYTHON_VERSION "
                "together, after checking the connector's wheels",
            )
        )
        acks.append((function.role, "AwsSolutions-IAM5[Resource::*]", xray))
    for function, keys in (
        (functions.query_ids, ("runs/*/claim.json", "runs/*/ids.jsonl")),
        (functions.build_url, ("runs/*/ids.jsonl", "runs/*/failed/*", "runs/*/batches.json")),
        (functions.invoke_enrich, ("runs/*/results/*",)),
    ):
        for key in keys:
            acks.append(
                (function.role, f"AwsSolutions-IAM5[Resource::{bucket_arn}/{key}]", per_run)
            )
    stage = stack.snowflake_stage
    if stage is not None:
        readable = (
            "Snowflake's storage integration reads runs/<run_id>/results/ and failed/ of "
            "every run (run IDs are chosen at run time); the role is read-only and trusts "
            "only Snowflake's IAM user with our external ID"
        )
        for key in READABLE_KEYS:
            acks.append((stage.role, f"AwsSolutions-IAM5[Resource::{bucket_arn}/{key}]", readable))
        load = stack.config.load
        if load.source_bucket:
            acks.append(
                (
                    stage.role,
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
                    f"{load.source_bucket}/{load.source_prefix}*]",
                    "load.source: the enrichment API writes its own result files under this "
                    "prefix with names it chooses; the storage integration may only read them",
                )
            )
    policy = workflow.policy
    acks += [
        (
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Three statements need '*': cloudwatch:PutMetricData has no resource type (scoped "
            "by the cloudwatch:namespace condition to ImdbEnrichment); the logs:*LogDelivery "
            "and resource-policy actions Step Functions uses to deliver execution logs have "
            "no resource-level permissions; " + xray,
        ),
        (
            workflow.state_machine,
            "AwsSolutions-SF1",
            "Logs level ERROR with execution data on purpose: a Distributed Map's Express "
            "children log through the parent's one logging configuration, and at ALL each "
            "child wrote its whole batch (~2/3 of the bill at 1,000,000 IDs). Failures are "
            "logged with their error and cause; a failed batch's input is kept in "
            "runs/<run_id>/failed/; the parent (STANDARD) keeps its full history with every "
            "state's input and output in Step Functions for 90 days (GetExecutionHistory)",
        ),
        (policy, f"AwsSolutions-IAM5[Resource::{bucket_arn}/runs/*/batches.json]", per_run),
        (policy, f"AwsSolutions-IAM5[Resource::{bucket_arn}/runs/*/failed/*]", per_run),
        (
            policy,
            f"AwsSolutions-IAM5[Resource::{bucket_arn}/runs/_map-results/*]",
            "The Distributed Map's ResultWriter names its objects itself "
            "(<prefix>/<map run id>/manifest.json and result files) under this fixed prefix",
        ),
        (
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
            f"<AWS::AccountId>:execution:{workflow.state_machine_name}/*]",
            "The Distributed Map starts child executions of this state machine whose names "
            "Step Functions generates; Describe/StopExecution are limited to this state "
            "machine's executions",
        ),
    ]
    return [(scope, f"AwsSolutions::{rule}", reason) for scope, rule, reason in acks]
