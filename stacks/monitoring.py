"""Alarms that page someone, the topic they go to, and a dashboard of the runs."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config.models import PipelineConfig
from stacks.functions import METRICS_NAMESPACE, SERVICE_NAME
from stacks.workflow import FAILED_BATCHES_METRIC

FIVE_MINUTES = Duration.minutes(5)
CONSOLE_HINT = "Step Functions console > state machine {name} > Executions"

#: The night's counts, as the handlers log them (lambdas/enrich_shared/observability.py
#: COUNT_FIELDS says what each counts; a test keeps the two equal). The dashboard's table
#: has one column per field, named as the field.
NIGHT_COUNTS = (
    "ids_queried",
    "invalid_ids",
    "batches_built",
    "batches_enriched",
    "enrich_failures",
    "batches_failed",
    "ids_loaded",
)

#: The dashboard's default time range: what one view of its counts table scans (the costs
#: page prices such a view).
DASHBOARD_DAYS = 14


def night_counts_query() -> str:
    """Logs Insights query: each count summed per day over the functions' log groups.

    Each field is on exactly one kind of log line, so `sum()` counts it once; lines without
    the field are ignored by `sum()`. Querying scans the selected log groups for the
    dashboard's time range (Logs Insights bills per GB scanned: enrichctl/cost.py).
    """
    present = " or ".join(f"ispresent({name})" for name in NIGHT_COUNTS)
    sums = ", ".join(f"sum({name}) as {name}" for name in NIGHT_COUNTS)
    return "\n".join(
        [
            "fields @timestamp",
            f"| filter {present}",
            f"| stats {sums} by bin(1d) as night",
            "| sort night desc",
        ]
    )


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm as the README documents it."""

    name: str
    metric: cloudwatch.IMetric
    threshold: float
    comparison: cloudwatch.ComparisonOperator
    treat_missing: cloudwatch.TreatMissingData
    description: str
    evaluation_periods: int = 1


class PipelineMonitoring(Construct):
    """SNS topic (KMS, TLS only) with e-mail/Slack, alarms with actions, and a dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        state_machine: sfn.StateMachine,
        state_machine_name: str,
        dead_letter_queue: sqs.IQueue,
        functions: list[lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the IMDB enrichment alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="IMDB enrichment alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in config.alarms.emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        if config.alarms.slack_workspace_id and config.alarms.slack_channel_id:
            chatbot.SlackChannelConfiguration(
                self,
                "Slack",
                slack_channel_configuration_name=f"{state_machine_name}-alarms",
                slack_workspace_id=config.alarms.slack_workspace_id,
                slack_channel_id=config.alarms.slack_channel_id,
                notification_topics=[self.topic],
                # Chatbot only relays notifications; channel members get read-only rights.
                guardrail_policies=[
                    iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchReadOnlyAccess")
                ],
                logging_level=chatbot.LoggingLevel.ERROR,
            )

        # Alarms are created only here, and the publish grants below are derived from this
        # dict: an alarm cannot page through the topic without being named in its policy.
        specs = self._alarm_specs(config, state_machine, state_machine_name, dead_letter_queue)
        self.alarms: dict[str, cloudwatch.Alarm] = {spec.name: self._alarm(spec) for spec in specs}
        self._allow_alarms_to_publish()

        self.dashboard = self._dashboard(state_machine, functions)

    # ------------------------------------------------------------------ alarms

    def _alarm(self, spec: AlarmSpec) -> cloudwatch.Alarm:
        """One alarm with a fixed name (so its ARN is known when the policies are written)."""
        alarm = cloudwatch.Alarm(
            self,
            spec.name,
            alarm_name=self.alarm_name(spec.name),
            alarm_description=spec.description,
            metric=spec.metric,
            threshold=spec.threshold,
            comparison_operator=spec.comparison,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.evaluation_periods,
            treat_missing_data=spec.treat_missing,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        return alarm

    def alarm_name(self, alarm_id: str) -> str:
        """`<stack name>-<AlarmId>`: unique per account and region, known before deploy."""
        return f"{Stack.of(self).stack_name}-{alarm_id}"

    def _alarm_arns(self) -> list[str]:
        # Formatted from the fixed names, not alarm.alarm_arn: the policy then does not
        # depend on the alarms, which depend on the topic (no dependency cycle).
        stack = Stack.of(self)
        return [
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=self.alarm_name(alarm_id),
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for alarm_id in self.alarms
        ]

    def _allow_alarms_to_publish(self) -> None:
        """Let this stack's alarms, and only them, publish to the topic and use its key.

        A topic policy replaces SNS's default policy, and `enforce_ssl` writes one holding
        only a TLS Deny: without this Allow every alarm action fails with "not authorized to
        perform: SNS:Publish". Scoped by aws:SourceAccount and aws:SourceArn against the
        confused deputy (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html,
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html).
        The topic is KMS-encrypted, so CloudWatch must also use the key
        (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
        Subscribers (e-mail, AWS Chatbot) need nothing: SNS decrypts before delivering.
        """
        conditions = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": self._alarm_arns()},
        }
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStacksAlarmsToPublish",
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=conditions,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStacksAlarmsToUseTheTopicKey",
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions=conditions,
            )
        )

    @staticmethod
    def failed_batches_metric(period: Duration = FIVE_MINUTES) -> cloudwatch.Metric:
        """FailedBatches as PublishFailedBatches writes it (Sum per period)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=FAILED_BATCHES_METRIC,
            dimensions_map={"service": SERVICE_NAME},
            statistic="Sum",
            period=period,
        )

    def _alarm_specs(
        self,
        config: PipelineConfig,
        sm: sfn.StateMachine,
        name: str,
        dlq: sqs.IQueue,
    ) -> list[AlarmSpec]:
        where = CONSOLE_HINT.format(name=name)
        gt = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        # A quiet night emits no data points: that is fine for "something went wrong"
        # alarms (NOT_BREACHING); the missed-run alarm below covers "nothing happened".
        quiet_ok = cloudwatch.TreatMissingData.NOT_BREACHING
        sum5 = {"period": FIVE_MINUTES, "statistic": "Sum"}
        # Every alarm but one watches a metric AWS publishes for free:
        # - AWS/States ExecutionsFailed/TimedOut/Aborted/Succeeded and ExecutionThrottled,
        #   dimension StateMachineArn (the parent only: a Distributed Map's children publish
        #   under "<state machine ARN>/<Map Run label>", so a child never trips these):
        #   https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html,
        #   https://docs.aws.amazon.com/step-functions/latest/dg/concepts-examine-map-run.html
        # - AWS/SQS ApproximateNumberOfMessagesVisible, dimension QueueName; SQS emits it only
        #   while the queue is active (a message arriving makes it active), hence
        #   NOT_BREACHING when it is silent:
        #   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
        # FailedBatches stays a custom metric: no built-in metric counts batches failed for
        # good (a child catches its failure and succeeds; AWS/Lambda Errors also count
        # attempts that a retry then healed). It is put once per run, and custom metrics
        # are billed per hour in which data is sent (https://aws.amazon.com/cloudwatch/pricing/),
        # so it costs ~1/730 of $0.30 a night. Missing data:
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
        specs = [
            AlarmSpec(
                "ExecutionsFailed",
                sm.metric_failed(**sum5),
                1,
                gt,
                quiet_ok,
                "An IMDB enrichment run FAILED. What to do: open the failed execution in the "
                f"{where}. If the error is BatchesFailed, the cause names how many batches "
                "failed and the s3://.../runs/<run_id>/failed/ record; fix the API problem, "
                'then start an execution with {"retry_of_run_id": "<run_id>"} to enrich '
                "only those batches. QueryError/ConfigurationError: fix snowflake.query or the "
                "secret and start a manual run. SnowflakeUnavailableError: Snowflake was down "
                "through all retries; start a manual run once it is back. "
                "FailureRecordIncomplete: fix S3 access, then start a new run (new run_id).",
            ),
            AlarmSpec(
                "ExecutionsTimedOut",
                sm.metric_timed_out(**sum5),
                1,
                gt,
                quiet_ok,
                f"An IMDB enrichment run hit its {config.workflow.timeout_minutes}-minute "
                "execution timeout and was stopped. What to do: check in the "
                f"{where} which state was slow (usually EnrichBatches: a slow API or low "
                "enrichment.maxConcurrency); raise workflow.timeoutMinutes or the concurrency "
                "if the night has grown, then redrive the execution or start a manual run "
                "with a new run_id (a reused run_id is skipped as already_ran).",
            ),
            AlarmSpec(
                "ExecutionsAborted",
                sm.metric_aborted(**sum5),
                1,
                gt,
                quiet_ok,
                "An IMDB enrichment run was ABORTED (stopped by a person or a deployment). "
                f"What to do: confirm in the {where} that the stop was intended; if not, start "
                "a manual run with a new run_id (a reused run_id is skipped as already_ran; "
                "already-enriched IDs are cheap to redo) or redrive the execution.",
            ),
            AlarmSpec(
                "ExecutionThrottled",
                sm.metric_throttled(**sum5),
                1,
                gt,
                quiet_ok,
                "Step Functions THROTTLED state transitions of the IMDB enrichment pipeline. "
                "What to do: lower enrichment.maxConcurrency, or ask AWS for a higher "
                "Step Functions quota; check the run finished in the "
                f"{where}.",
            ),
            AlarmSpec(
                "SchedulerDeadLetters",
                dlq.metric_approximate_number_of_messages_visible(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                1,
                gt,
                quiet_ok,
                "EventBridge Scheduler could NOT START the nightly IMDB enrichment run (the "
                "start is in the dead-letter queue). What to do: read the message's "
                "attributes (ERROR_CODE, ERROR_MESSAGE) in the SQS console, fix the cause "
                "(permissions, state machine deleted, quota), start tonight's run manually, "
                "then purge the queue.",
            ),
            AlarmSpec(
                "FailedBatches",
                self.failed_batches_metric(),
                1,
                gt,
                quiet_ok,
                "Some enrichment batches failed for good (the API rejected them or stayed "
                "unavailable through all retries). What to do: open runs/<run_id>/failed/ in "
                "the run-data bucket (each file has the batch's IDs and error), fix the API "
                'side, then start an execution with {"retry_of_run_id": "<run_id>"}.',
            ),
        ]
        if config.schedule.enabled:
            hours = config.alarms.missed_run_hours
            specs.append(
                AlarmSpec(
                    "MissedRun",
                    # Hourly sums, `hours` of them breaching in a row = no success in `hours`.
                    sm.metric_succeeded(period=Duration.hours(1), statistic="Sum"),
                    1,
                    cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    # No data at all is exactly the failure mode of the old agent: BREACHING.
                    cloudwatch.TreatMissingData.BREACHING,
                    f"NO IMDB enrichment run has succeeded in the last {hours} hours: the "
                    "nightly run did not start, or started and did not finish. What to do: "
                    f"check the {where} for a failed or running execution and the scheduler "
                    "(is it enabled? its dead-letter queue?); then start a manual run.",
                    evaluation_periods=hours,
                )
            )
        return specs

    # ------------------------------------------------------------------ dashboard

    def _dashboard(
        self, sm: sfn.StateMachine, functions: list[lambda_.Function]
    ) -> cloudwatch.Dashboard:
        hour = Duration.hours(1)
        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", default_interval=Duration.days(DASHBOARD_DAYS)
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Runs",
                left=[
                    sm.metric_started(period=hour, statistic="Sum", label="started"),
                    sm.metric_succeeded(period=hour, statistic="Sum", label="succeeded"),
                    sm.metric_failed(period=hour, statistic="Sum", label="failed"),
                    sm.metric_timed_out(period=hour, statistic="Sum", label="timed out"),
                    sm.metric_aborted(period=hour, statistic="Sum", label="aborted"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Run duration",
                left=[sm.metric_time(period=hour, statistic="Maximum", label="max (ms)")],
                width=12,
            ),
        )
        # The night's counts come from the handlers' structured log lines, not custom
        # metrics (each would cost $0.30 a month): one table row per day.
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Stats.html
        # (`by bin(1d) as night`: CWL_QuerySyntax-alias.html, same guide)
        dashboard.add_widgets(
            cloudwatch.LogQueryWidget(
                title="IDs and batches per night (from the step logs)",
                log_group_names=[f.log_group.log_group_name for f in functions],
                query_string=night_counts_query(),
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=24,
                height=6,
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[f.metric_errors(period=hour, label=f.node.id) for f in functions],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration (max)",
                left=[
                    f.metric_duration(period=hour, statistic="Maximum", label=f.node.id)
                    for f in functions
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24
            )
        )
        return dashboard
