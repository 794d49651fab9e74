"""The nightly start: EventBridge Scheduler (time zone aware) with retries and a DLQ."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, TimeZone
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config.models import PipelineConfig

SCHEDULED_TIME = scheduler.ContextAttribute.scheduled_time  # "<aws.scheduler.scheduled-time>"


def schedule_input() -> dict[str, str]:
    """The execution input of a scheduled run.

    Scheduler documents its context keywords as whole JSON values only, so the scheduled
    time is passed alone and QueryIds derives the run ID from it (`scheduled-<UTC time>`,
    enrich_shared.models.scheduled_run_id): a second start for the same night (Scheduler
    retry, manual re-drive) carries the same ID and QueryIds' claim stops it.
    """
    return {"trigger": "schedule", "scheduled_time": str(SCHEDULED_TIME)}


class NightlySchedule(Construct):
    """Starts the state machine on the configured cron in the configured time zone."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        # Starts that Scheduler could not deliver after its retries land here (and alarm).
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="Starts the nightly IMDB enrichment run",
            schedule=scheduler.ScheduleExpression.expression(
                config.schedule.cron, TimeZone.of(config.schedule.timezone)
            ),
            enabled=config.schedule.enabled,
            target=targets.StepFunctionsStartExecution(
                state_machine,
                input=scheduler.ScheduleTargetInput.from_object(schedule_input()),
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=5,
                # A start later than this is no longer "tonight's run": send it to the DLQ.
                max_event_age=Duration.hours(2),
            ),
        )
