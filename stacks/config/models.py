"""The `pipeline` object of cdk.json as pydantic models: keys, defaults, meanings, checks.

Field descriptions are the configuration reference (`python -m stacks.config.reference`)
and the editor help of the JSON Schema (`python -m stacks.config.schema`).
"""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, model_validator

from stacks.config.budget import ChildBudget, RetryConfig
from stacks.config.cron import check_dst
from stacks.config.fields import (
    BaseUrl,
    ColumnName,
    Cron,
    Emails,
    ExternalId,
    Flag,
    HeaderName,
    IamUserArn,
    JsonField,
    JsonPath,
    OptionalSecretName,
    Query,
    RoleName,
    S3Location,
    SecretName,
    Section,
    SlackChannelId,
    SlackWorkspaceId,
    SnowflakeName,
    TimeZone,
    one_of,
    optional_whole,
    whole,
)
from stacks.config.limits import (
    CONTEXT_KEY,
    ENRICH_LAMBDA_MARGIN_S,
    EXPRESS_CHILD_LIMIT_S,
    HTTP_CONNECT_TIMEOUT_S,
    LOG_LEVELS,
    LOG_RETENTION_DAYS,
    LONGEST_ID_PART,
    SETUP_HINT,
    TASK_TIMEOUT_MARGIN_S,
)
from stacks.config.problems import Problem


class ScheduleConfig(Section):
    """When the nightly run starts."""

    cron: Cron = Field(
        "cron(0 2 * * ? *)",
        description="EventBridge Scheduler cron (6 fields, one of day-of-month/day-of-week `?`). "
        "A time inside a daylight-saving gap of the time zone (2:30 in `America/New_York` does "
        "not exist one night a year) is refused with a suggested safe time.",
    )
    timezone: TimeZone = Field("UTC", description="IANA time zone the cron is read in")
    enabled: Flag = Field(
        True,
        description="`false` creates the schedule disabled and leaves out the missed-run alarm",
    )

    @model_validator(mode="after")
    def _not_in_a_dst_gap(self, info: ValidationInfo) -> Self:
        # Both fields are valid here; `today` (tests pin it) anchors the year searched.
        check_dst(self.cron, self.timezone, (info.context or {}).get("today"))
        return self


class IncrementalConfig(Section):
    """Which IDs a night queries again."""

    refresh_after_days: optional_whole(1, 3650) = Field(
        30,
        description="N: each night queries only IDs never enriched, not `OK` last time, "
        "or enriched more than N days ago (the loop, see How it works), so a night re-sends "
        "only what is stale; `null` queries every ID each night. Takes effect only with "
        "`load.enabled` (the state it reads is kept by LoadResults): with loading off every "
        "night queries every ID",
    )


class SnowflakeTimeouts:
    """The Snowflake connector's timeouts, derived from the model's Lambda `timeout_seconds`.

    (No annotation here: pydantic would take it for a field of the models.)
    """

    @property
    def login_timeout_s(self) -> int:
        """Connector login timeout: a tenth of the Lambda's time, at most 30 s."""
        return min(30, self.timeout_seconds // 10)

    @property
    def statement_timeout_s(self) -> int:
        """Per-statement timeout: two thirds of the Lambda's; the rest is login and the
        Lambda's own work, so a stuck query ends with Snowflake's error before Lambda
        kills the function."""
        return self.timeout_seconds * 2 // 3

    @property
    def network_timeout_s(self) -> int:
        """Per-request network timeout, never longer than the statement timeout."""
        return min(120, self.statement_timeout_s)


class SnowflakeConfig(SnowflakeTimeouts, Section):
    """Where the IDs come from, and how long the query step may take."""

    secret_name: SecretName = Field(
        "imdb-enrichment/snowflake",
        description="Secrets Manager secret with the Snowflake credentials",
    )
    query: Query = Field(
        "SELECT ORG_ID, CREATIVEWORKID, IMDB_VALUE FROM EIDR.PUBLIC.ORGS_IMDB_FILTERED",
        description="Query returning the IDs",
    )
    id_column: ColumnName = Field("IMDB_VALUE", description="Column holding the IMDB IDs")
    fetch_batch_size: whole(100, 1_000_000) = Field(10000, description="Rows per `fetchmany`")
    timeout_seconds: whole(60, 900) = Field(
        900,
        description="QueryIds Lambda timeout. Login (≤30 s), network (≤120 s) and "
        "statement (⅔ of it) timeouts are derived from it.",
    )
    retry: RetryConfig = Field(
        RetryConfig(interval_seconds=30, backoff_rate=2.0, max_attempts=3, max_delay_seconds=300),
        description="Backoff for `SnowflakeUnavailableError` (full jitter)",
    )
    incremental: IncrementalConfig = Field(IncrementalConfig())

    @property
    def refresh_after_days(self) -> int | None:
        """None: every night queries every ID; N: only IDs not enriched OK in the last N days."""
        return self.incremental.refresh_after_days


class EnrichmentConfig(Section):
    """The enrichment API and how hard the pipeline may push it."""

    base_url: BaseUrl = Field(
        None,
        description="https URL of the enrichment API (set yours before deploying)",
    )
    api_key_secret_name: OptionalSecretName = Field(
        None, description="Secret holding the API key, if the API needs one"
    )
    api_key_header: HeaderName = Field("x-api-key", description="Header that carries the key")
    max_ids_per_request: whole(1, 1000) = Field(70, description="IDs per request URL")
    max_url_length: whole(256, 65536) = Field(8192, description="Longest request URL allowed")
    # The Distributed Map's limit is 10,000 parallel children.
    max_concurrency: whole(1, 10000) = Field(
        10,
        description="Batches in flight at once (Distributed Map MaxConcurrency)",
    )
    timeout_seconds: whole(1, 180) = Field(
        30,
        description="HTTP read timeout. Connect timeout is 5 s; the Lambda timeout is "
        "read + 5 + 15 s.",
    )
    retry: RetryConfig = Field(
        RetryConfig(interval_seconds=5, backoff_rate=2.0, max_attempts=3, max_delay_seconds=60),
        description="Backoff for everything InvokeEnrich retries: `RetryableEnrichError` "
        "(429/5xx/timeouts), Lambda service errors and throttling. A batch's worst case (see "
        "\"A child's whole time budget\") must stay under Express's 300 s.",
    )

    @model_validator(mode="after")
    def _fits(self) -> Self:
        longest = len(self.base_url) + 1 + len(LONGEST_ID_PART)
        if longest > self.max_url_length:
            # Otherwise synth passes and every night fails in BuildUrls.
            raise Problem(
                f"leaves no room for IDs after the {len(self.base_url)}-character "
                f"enrichment.baseUrl (one ID alone makes a {longest}-character URL)",
                f"raise it to at least {longest} or shorten enrichment.baseUrl",
                key="maxUrlLength",
                value=self.max_url_length,
            )
        budget = self.child_budget()
        if budget.worst_case_s >= EXPRESS_CHILD_LIMIT_S:
            raise Problem(
                f"lets one batch's child execution run up to {budget.worst_case_s:g} s "
                f"({budget.explain()}; each InvokeEnrich attempt is timeoutSeconds="
                f"{self.timeout_seconds} + {budget.invoke_timeout_s - self.timeout_seconds} s),"
                f" not below the {EXPRESS_CHILD_LIMIT_S} s an Express child may live",
                "lower enrichment.retry.maxAttempts or maxDelaySeconds, or "
                f"enrichment.timeoutSeconds, until the total is below {EXPRESS_CHILD_LIMIT_S} s",
                key="retry",
                value=self.retry.model_dump(),
            )
        return self

    @property
    def connect_timeout_s(self) -> int:
        """HTTP connect timeout of one request."""
        return HTTP_CONNECT_TIMEOUT_S

    @property
    def lambda_timeout_s(self) -> int:
        """InvokeEnrich's Lambda timeout: connect + read + margin, so HTTP times out first."""
        return HTTP_CONNECT_TIMEOUT_S + self.timeout_seconds + ENRICH_LAMBDA_MARGIN_S

    def child_budget(self) -> ChildBudget:
        """The worst-case time of one batch's Express child (see `ChildBudget`)."""
        return ChildBudget(
            invoke_timeout_s=self.lambda_timeout_s + TASK_TIMEOUT_MARGIN_S,
            invoke_retry=self.retry,
        )


class LoadConfig(SnowflakeTimeouts, Section):
    """Loading the stored answers into Snowflake through an external stage."""

    enabled: Flag = Field(
        True,
        description="Load the stored answers into Snowflake. On, the stack creates the IAM role "
        "Snowflake's storage integration assumes, and needs the two values below (see Deploy); "
        "`false` deploys without loading",
    )
    source: S3Location = Field(
        None,
        description="`s3://bucket/prefix/` where the API writes its own results, when it answers "
        "only a status; a second stage (`<load.stage>_SOURCE`) reads there and the role may "
        "read that prefix",
    )
    stage: SnowflakeName = Field(
        "ENRICH_RUNS_STAGE",
        description="Snowflake external stage over `s3://<bucket>/runs/` (names: letters, "
        "digits, `_`, `$`, optionally `db.schema.name`)",
    )
    landing_table: SnowflakeName = Field(
        "ENRICH_LANDING",
        description="One-column VARIANT table COPY INTO loads the answers into",
    )
    results_table: SnowflakeName = Field(
        "ENRICH_RESULTS", description="Results table keyed by IMDB ID"
    )
    state_table: SnowflakeName = Field(
        "ENRICH_STATE",
        description="Per-ID state: last status, run, attempt and success time, error, attempts",
    )
    records_path: JsonPath = Field(
        "records",
        description="Field of the API's answer holding the per-ID records (dots for nesting, "
        "e.g. `data.items`)",
    )
    id_field: JsonField = Field("imdb_id", description="Field of a record holding its IMDB ID")
    snowflake_iam_user_arn: IamUserArn = Field(
        None,
        description="`STORAGE_AWS_IAM_USER_ARN` from `DESC INTEGRATION` (`arn:aws:iam::<12 "
        "digits>:user/...`): the only principal the role trusts. Required while `load.enabled`",
    )
    external_id: ExternalId = Field(
        None,
        description="`STORAGE_AWS_EXTERNAL_ID` from `DESC INTEGRATION`: the `sts:ExternalId` the "
        "role requires. Required while `load.enabled`",
    )
    role_name: RoleName = Field(
        "imdb-enrichment-snowflake-stage",
        description="Fixed name of that role, so its ARN is known before the first deploy",
    )
    # Lambda's limit is 900 s; 60 s is the least a COPY + two MERGEs can count on.
    timeout_seconds: whole(60, 900) = Field(
        600,
        description="LoadResults' Lambda timeout: COPY and two MERGEs of a large night. "
        "Login (≤30 s), network (≤120 s) and statement (⅔ of it) timeouts are derived from it",
    )

    @model_validator(mode="after")
    def _integration_values_set(self) -> Self:
        missing = [
            f"load.{key}"
            for key, value in (
                ("snowflakeIamUserArn", self.snowflake_iam_user_arn),
                ("externalId", self.external_id),
            )
            if value is None
        ]
        if self.enabled and missing:
            # One message for both: they come from the same DESC INTEGRATION.
            raise Problem(
                line=f"{CONTEXT_KEY}.{' and '.join(missing)} not set while "
                f"{CONTEXT_KEY}.load.enabled=true (the stack creates the IAM role Snowflake's "
                f"storage integration assumes, and needs Snowflake's side of it); fix: "
                + SETUP_HINT
            )
        return self

    @property
    def source_stage(self) -> str | None:
        """The stage over `source` (`<stage>_SOURCE`), when `source` is set."""
        return source_stage_name(self.stage) if self.source else None

    @property
    def source_bucket(self) -> str | None:
        """The bucket of `source` (`s3://bucket/prefix/`), when set."""
        return urlsplit(self.source).netloc if self.source else None

    @property
    def source_prefix(self) -> str:
        """The key prefix of `source` ("" for a whole bucket)."""
        return urlsplit(self.source).path.lstrip("/") if self.source else ""


class WorkflowConfig(Section):
    """The whole run."""

    timeout_minutes: whole(15, 1440) = Field(360, description="Time limit for one whole run")


class AlarmsConfig(Section):
    """Who is told about problems, and when a missing run counts as one."""

    emails: Emails = Field((), description="E-mail addresses subscribed to the alarm topic")
    missed_run_hours: whole(2, 168) = Field(
        26,
        description="Alarm when no run has succeeded for this many hours; keep it above "
        "the schedule's interval",
    )
    slack_workspace_id: SlackWorkspaceId = Field(
        None,
        description="With `slackChannelId`: alarms also go to Slack through AWS Chatbot",
    )
    slack_channel_id: SlackChannelId = Field(
        None,
        description="With `slackWorkspaceId`: the Slack channel alarms go to",
    )

    @model_validator(mode="after")
    def _slack_both_or_neither(self) -> Self:
        if (self.slack_workspace_id is None) != (self.slack_channel_id is None):
            missing = "slackChannelId" if self.slack_channel_id is None else "slackWorkspaceId"
            raise Problem(
                "is missing while the other Slack key is set",
                "set both slackWorkspaceId and slackChannelId, or neither",
                key=missing,
                value=None,
            )
        return self


class RetentionConfig(Section):
    """How long run data and logs are kept."""

    run_data_days: whole(1, 3650) = Field(30, description="Days before `runs/…` objects expire")
    log_days: one_of(LOG_RETENTION_DAYS, "is not a retention CloudWatch Logs accepts") = Field(
        30,
        description="Days CloudWatch Logs keeps the logs (only some values are accepted)",
    )


class PipelineConfig(Section):
    """The whole validated configuration: cdk.json's `pipeline` object."""

    schedule: ScheduleConfig = Field(ScheduleConfig())
    snowflake: SnowflakeConfig = Field(SnowflakeConfig())
    enrichment: EnrichmentConfig
    load: LoadConfig
    workflow: WorkflowConfig = Field(WorkflowConfig())
    alarms: AlarmsConfig = Field(AlarmsConfig())
    retention: RetentionConfig = Field(RetentionConfig())
    log_level: one_of(LOG_LEVELS, "is not a log level") = Field(
        "INFO", description="Powertools log level of the Lambdas"
    )

    @property
    def workflow_timeout_minutes(self) -> int:
        """`workflow.timeoutMinutes`."""
        return self.workflow.timeout_minutes

    @property
    def run_data_days(self) -> int:
        """`retention.runDataDays`."""
        return self.retention.run_data_days

    @property
    def log_days(self) -> int:
        """`retention.logDays`."""
        return self.retention.log_days


def source_stage_name(stage: str) -> str:
    """The stage over `load.source` (the API's own result files), beside the runs stage."""
    return f"{stage}_SOURCE"


def stage_role_arn(account: str, role_name: str, partition: str = "aws") -> str:
    """The storage integration role's ARN, computable before it exists (its name is fixed)."""
    return f"arn:{partition}:iam::{account}:role/{role_name}"
