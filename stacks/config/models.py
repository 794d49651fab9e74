"""The `pipeline` object of cdk.json as pydantic models: keys, defaults, meanings, checks.

Each key is a field: its type checks the value and gives the fix its message shows (`whole`,
`text`, ... in problems.py), its default is the code's, and the docstring under it is its
meaning in the configuration reference (docs/configuration.md) and the JSON Schemas.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator

from stacks.config import limits
from stacks.config.budget import ChildBudget, RetryConfig
from stacks.config.cron import check_cron, check_dst, check_timezone
from stacks.config.problems import Fix, Flag, Problem, Section, one_of, text, whole

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
#: A Secrets Manager secret name.
_SM_NAME = r"^[A-Za-z0-9/_+=.@-]{1,512}$"
#: A Snowflake object name, unquoted, optionally qualified: db.schema.name.
SnowflakeName = text(
    "use a Snowflake name: letters, digits, _ and $, optionally db.schema.name",
    r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$",
)


def _base_url(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Problem(
            "is required",
            "set the https URL of the enrichment API, e.g. https://abc.execute-api."
            "us-east-1.amazonaws.com/prod/lamba-tmdb",
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed [IPv6 address]
        host = None
    if not host or parts.scheme != "https":
        raise Problem(
            "is not an https URL", "use https://<host>/<path>; the API is called over TLS only"
        )
    if parts.fragment:
        raise Problem("has a #fragment", "remove the #... part")
    return value


def _email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value):
        raise Problem("is not an e-mail address", "use name@domain.tld, or remove it")
    return value


Email = Annotated[str, Field(json_schema_extra={"format": "email"}), BeforeValidator(_email)]


class ScheduleConfig(Section):
    """When the nightly run starts."""

    cron: Annotated[
        text("use a Scheduler cron such as cron(0 2 * * ? *)"), AfterValidator(check_cron)
    ] = "cron(0 2 * * ? *)"
    """EventBridge Scheduler cron (6 fields, one of day-of-month/day-of-week `?`). A time
    inside a daylight-saving gap of the time zone (2:30 in `America/New_York` does not exist one
    night a year) is refused with a suggested safe time."""
    timezone: Annotated[
        text("use an IANA time zone such as Europe/Paris"), AfterValidator(check_timezone)
    ] = "UTC"
    """IANA time zone the cron is read in"""
    enabled: Flag = True
    """`false` creates the schedule disabled and leaves out the missed-run alarm"""

    @model_validator(mode="after")
    def _not_in_a_dst_gap(self, info: ValidationInfo) -> Self:
        # Both fields are valid here; `today` (tests pin it) anchors the year searched.
        check_dst(self.cron, self.timezone, (info.context or {}).get("today"))
        return self


class IncrementalConfig(Section):
    """Which IDs a night queries again."""

    refresh_after_days: whole(1, 3650, nullable=True) = 30
    """N: each night queries only IDs never enriched, not `OK` last time, or enriched more than
    N days ago (the loop, see How it works), so a night re-sends only what is stale; `null`
    queries every ID each night. Takes effect only with `load.enabled` (the state it reads is
    kept by LoadResults): with loading off every night queries every ID"""


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

    secret_name: text(
        "use a Secrets Manager secret name (letters, digits and /_+=.@-)", _SM_NAME
    ) = "imdb-enrichment/snowflake"  # noqa: S105 (the name of a secret, not one)
    """Secrets Manager secret with the Snowflake credentials"""
    query: text("set the SELECT that returns the IDs") = (
        "SELECT ORG_ID, CREATIVEWORKID, IMDB_VALUE FROM EIDR.PUBLIC.ORGS_IMDB_FILTERED"
    )
    """Query returning the IDs"""
    id_column: text(
        "use the column name of the IDs, e.g. IMDB_VALUE", r"^[A-Za-z_][A-Za-z0-9_$]*$"
    ) = "IMDB_VALUE"
    """Column holding the IMDB IDs"""
    fetch_batch_size: whole(100, 1_000_000) = 10000
    """Rows per `fetchmany`"""
    timeout_seconds: whole(60, 900) = 900
    """QueryIds Lambda timeout. Login (≤30 s), network (≤120 s) and statement (⅔ of it)
    timeouts are derived from it."""
    retry: RetryConfig = RetryConfig(
        interval_seconds=30, backoff_rate=2.0, max_attempts=3, max_delay_seconds=300
    )
    """Backoff for `SnowflakeUnavailableError` (full jitter)"""
    incremental: IncrementalConfig = IncrementalConfig()


class EnrichmentConfig(Section):
    """The enrichment API and how hard the pipeline may push it."""

    base_url: Annotated[
        str, Field(json_schema_extra={"pattern": "^https://"}), BeforeValidator(_base_url)
    ] = None
    """https URL of the enrichment API (set yours before deploying)"""
    api_key_secret_name: text(
        "use a Secrets Manager secret name, or null when the API needs no key",
        _SM_NAME,
        nullable=True,
    ) = None
    """Secret holding the API key, if the API needs one"""
    api_key_header: text(
        "use an HTTP header name such as x-api-key", r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
    ) = "x-api-key"
    """Header that carries the key"""
    max_ids_per_request: whole(1, 1000) = 70
    """IDs per request URL"""
    max_url_length: whole(256, 65536) = 8192
    """Longest request URL allowed"""
    # The Distributed Map's limit is 10,000 parallel children.
    max_concurrency: whole(1, 10000) = 10
    """Batches in flight at once (Distributed Map MaxConcurrency)"""
    timeout_seconds: whole(1, 180) = 30
    """HTTP read timeout. Connect timeout is 5 s; the Lambda timeout is read + 5 + 15 s."""
    retry: RetryConfig = RetryConfig(
        interval_seconds=5, backoff_rate=2.0, max_attempts=3, max_delay_seconds=60
    )
    """Backoff for everything InvokeEnrich retries: `RetryableEnrichError` (429/5xx/timeouts),
    Lambda service errors and throttling. A batch's worst case (see "A child's whole time
    budget") must stay under Express's 300 s."""

    @model_validator(mode="after")
    def _fits(self) -> Self:
        longest = len(self.base_url) + 1 + len(limits.LONGEST_ID_PART)
        if longest > self.max_url_length:
            # Otherwise synth passes and every night fails in BuildUrls.
            raise Problem(
                f"leaves no room for IDs after the {len(self.base_url)}-character "
                f"enrichment.baseUrl (one ID alone makes a {longest}-character URL)",
                f"raise it to at least {longest} or shorten enrichment.baseUrl",
                key="maxUrlLength",
                value=self.max_url_length,
            )
        budget, limit = self.child_budget(), limits.EXPRESS_CHILD_LIMIT_S
        if budget.worst_case_s >= limit:
            raise Problem(
                f"lets one batch's child execution run up to {budget.worst_case_s:g} s "
                f"({budget.explain()}; each InvokeEnrich attempt is timeoutSeconds="
                f"{self.timeout_seconds} + {budget.invoke_timeout_s - self.timeout_seconds} s),"
                f" not below the {limit} s an Express child may live",
                "lower enrichment.retry.maxAttempts or maxDelaySeconds, or "
                f"enrichment.timeoutSeconds, until the total is below {limit} s",
                key="retry",
                value=self.retry.model_dump(),
            )
        return self

    @property
    def connect_timeout_s(self) -> int:
        """HTTP connect timeout of one request."""
        return limits.HTTP_CONNECT_TIMEOUT_S

    @property
    def lambda_timeout_s(self) -> int:
        """InvokeEnrich's Lambda timeout: connect + read + margin, so HTTP times out first."""
        return limits.HTTP_CONNECT_TIMEOUT_S + self.timeout_seconds + limits.ENRICH_LAMBDA_MARGIN_S

    def child_budget(self) -> ChildBudget:
        """The worst-case time of one batch's Express child (see `ChildBudget`)."""
        return ChildBudget(
            invoke_timeout_s=self.lambda_timeout_s + limits.TASK_TIMEOUT_MARGIN_S,
            invoke_retry=self.retry,
        )


class LoadConfig(SnowflakeTimeouts, Section):
    """Loading the stored answers into Snowflake through an external stage."""

    enabled: Flag = True
    """Load the stored answers into Snowflake. On, the stack creates the IAM role Snowflake's
    storage integration assumes, and needs the two values below (see Deploy); `false` deploys
    without loading"""
    source: text(
        "use null (load the stored answers) or the location the API writes to, as "
        "s3://bucket/prefix/ (ending in /)",
        r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([A-Za-z0-9!_.*'()/-]*/)?$",
        nullable=True,
    ) = None
    """`s3://bucket/prefix/` where the API writes its own results, when it answers only a
    status; a second stage (`<load.stage>_SOURCE`) reads there and the role may read that
    prefix"""
    stage: SnowflakeName = "ENRICH_RUNS_STAGE"
    """Snowflake external stage over `s3://<bucket>/runs/` (names: letters, digits, `_`, `$`,
    optionally `db.schema.name`)"""
    landing_table: SnowflakeName = "ENRICH_LANDING"
    """One-column VARIANT table COPY INTO loads the answers into"""
    results_table: SnowflakeName = "ENRICH_RESULTS"
    """Results table keyed by IMDB ID"""
    state_table: SnowflakeName = "ENRICH_STATE"
    """Per-ID state: last status, run, attempt and success time, error, attempts"""
    records_path: text(
        "use the field of the API's answer that holds the per-ID records, e.g. records or "
        "data.items",
        r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",  # field names joined by dots
    ) = "records"
    """Field of the API's answer holding the per-ID records (dots for nesting, e.g.
    `data.items`)"""
    id_field: text(
        "use the record field holding the IMDB ID, e.g. imdb_id", r"^[A-Za-z_][A-Za-z0-9_]*$"
    ) = "imdb_id"
    """Field of a record holding its IMDB ID"""
    snowflake_iam_user_arn: text(
        "use STORAGE_AWS_IAM_USER_ARN from DESC INTEGRATION, arn:aws:iam::<12 digits>:user/...",
        r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:user/[\w+=,.@/-]{1,512}$",
        nullable=True,
    ) = None
    """`STORAGE_AWS_IAM_USER_ARN` from `DESC INTEGRATION` (`arn:aws:iam::<12 digits>:user/...`):
    the only principal the role trusts. Required while `load.enabled`"""
    external_id: text(
        "use STORAGE_AWS_EXTERNAL_ID from DESC INTEGRATION (letters, digits and _+=,.@:/-)",
        r"^[\w+=,.@:/-]{2,1224}$",  # what IAM accepts as an sts:ExternalId
        nullable=True,
    ) = None
    """`STORAGE_AWS_EXTERNAL_ID` from `DESC INTEGRATION`: the `sts:ExternalId` the role
    requires. Required while `load.enabled`"""
    role_name: text(
        "use an IAM role name (1-64 of letters, digits, _+=,.@-)", r"^[\w+=,.@-]{1,64}$"
    ) = "imdb-enrichment-snowflake-stage"
    """Fixed name of that role, so its ARN is known before the first deploy"""
    # Lambda's limit is 900 s; 60 s is the least a COPY + two MERGEs can count on.
    timeout_seconds: whole(60, 900) = 600
    """LoadResults' Lambda timeout: COPY and two MERGEs of a large night. Login (≤30 s),
    network (≤120 s) and statement (⅔ of it) timeouts are derived from it"""

    @model_validator(mode="after")
    def _integration_values_set(self) -> Self:
        values = {
            "snowflakeIamUserArn": self.snowflake_iam_user_arn,
            "externalId": self.external_id,
        }
        missing = [f"load.{key}" for key, value in values.items() if value is None]
        if self.enabled and missing:
            # One message for both: they come from the same DESC INTEGRATION.
            pipeline = limits.CONTEXT_KEY
            raise Problem(
                line=f"{pipeline}.{' and '.join(missing)} not set while {pipeline}.load.enabled="
                "true (the stack creates the IAM role Snowflake's storage integration assumes, "
                "and needs Snowflake's side of it); fix: " + limits.SETUP_HINT
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

    timeout_minutes: whole(15, 1440) = 360
    """Time limit for one whole run"""


class AlarmsConfig(Section):
    """Who is told about problems, and when a missing run counts as one."""

    emails: Annotated[
        tuple[Email, ...],
        Field(strict=False),  # a JSON list becomes the tuple
        Fix('use ["oncall@example.com"] or []'),
    ] = ()
    """E-mail addresses subscribed to the alarm topic"""
    missed_run_hours: whole(2, 168) = 26
    """Alarm when no run has succeeded for this many hours; keep it above the schedule's
    interval"""
    slack_workspace_id: text(
        "use the workspace ID from the Chatbot console", r"^[0-9A-Z]{1,255}$", nullable=True
    ) = None
    """With `slackChannelId`: alarms also go to Slack through AWS Chatbot"""
    slack_channel_id: text(
        "use the channel ID (e.g. C0123ABCD)", r"^[A-Za-z0-9]+$", nullable=True
    ) = None
    """With `slackWorkspaceId`: the Slack channel alarms go to"""

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

    run_data_days: whole(1, 3650) = 30
    """Days before `runs/…` objects expire"""
    log_days: one_of(limits.LOG_RETENTION_DAYS, "is not a retention CloudWatch Logs accepts") = 30
    """Days CloudWatch Logs keeps the logs (only some values are accepted)"""


class PipelineConfig(Section):
    """The whole validated configuration: cdk.json's `pipeline` object."""

    schedule: ScheduleConfig = ScheduleConfig()
    snowflake: SnowflakeConfig = SnowflakeConfig()
    enrichment: EnrichmentConfig
    load: LoadConfig
    workflow: WorkflowConfig = WorkflowConfig()
    alarms: AlarmsConfig = AlarmsConfig()
    retention: RetentionConfig = RetentionConfig()
    log_level: one_of(limits.LOG_LEVELS, "is not a log level") = "INFO"
    """Powertools log level of the Lambdas"""


def source_stage_name(stage: str) -> str:
    """The stage over `load.source` (the API's own result files), beside the runs stage."""
    return f"{stage}_SOURCE"


def stage_role_arn(account: str, role_name: str, partition: str = "aws") -> str:
    """The storage integration role's ARN, computable before it exists (its name is fixed)."""
    return f"arn:{partition}:iam::{account}:role/{role_name}"
