"""Typed, validated pipeline configuration read from the `pipeline` context object.

`cdk.json` holds the `pipeline` object; `cdk -c pipeline='{...json...}'` replaces it and
`cdk -c pipeline.schedule.cron='cron(0 3 * * ? *)'` overrides one key. Every bad value stops
synth with one `ConfigError` whose message names the key, the value and the fix (all problems
found are listed together, so one synth shows everything that needs fixing).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

CONTEXT_KEY = "pipeline"

#: Every key the `pipeline` object accepts, with its default. README's table mirrors this.
DEFAULTS: dict[str, Any] = {
    "schedule": {
        "cron": "cron(0 2 * * ? *)",
        "timezone": "UTC",
        "enabled": True,
    },
    "snowflake": {
        "secretName": "imdb-enrichment/snowflake",
        "query": "SELECT ORG_ID, CREATIVEWORKID, IMDB_VALUE FROM EIDR.PUBLIC.ORGS_IMDB_FILTERED",
        "idColumn": "IMDB_VALUE",
        "fetchBatchSize": 10000,
        "timeoutSeconds": 900,
        "retry": {
            "intervalSeconds": 30,
            "backoffRate": 2.0,
            "maxAttempts": 3,
            "maxDelaySeconds": 300,
        },
        "incremental": {
            # On with loading: a night re-sends only what is stale (README "The loop").
            "refreshAfterDays": 30,
        },
    },
    "enrichment": {
        "baseUrl": None,
        "apiKeySecretName": None,
        "apiKeyHeader": "x-api-key",
        "maxIdsPerRequest": 70,
        "maxUrlLength": 8192,
        "maxConcurrency": 10,
        "timeoutSeconds": 30,
        "retry": {
            "intervalSeconds": 5,
            "backoffRate": 2.0,
            "maxAttempts": 3,
            "maxDelaySeconds": 60,
        },
    },
    "load": {
        "enabled": True,
        "source": None,
        "stage": "ENRICH_RUNS_STAGE",
        "landingTable": "ENRICH_LANDING",
        "resultsTable": "ENRICH_RESULTS",
        "stateTable": "ENRICH_STATE",
        "recordsPath": "records",
        "idField": "imdb_id",
        "snowflakeIamUserArn": None,
        "externalId": None,
        "roleName": "imdb-enrichment-snowflake-stage",
        "timeoutSeconds": 600,
    },
    "workflow": {
        "timeoutMinutes": 360,
    },
    "alarms": {
        "emails": [],
        "missedRunHours": 26,
        "slackWorkspaceId": None,
        "slackChannelId": None,
    },
    "retention": {
        "runDataDays": 30,
        "logDays": 30,
    },
    "logLevel": "INFO",
}

#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


def log_retention(days: int) -> Any:
    """The `aws_logs.RetentionDays` member for a validated number of days."""
    from aws_cdk import aws_logs

    members = [m for m in aws_logs.RetentionDays if m.name != "INFINITE"]
    return dict(zip(LOG_RETENTION_DAYS, members, strict=True))[days]


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

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_SLACK_WORKSPACE = re.compile(r"^[0-9A-Z]{1,255}$")
_SLACK_CHANNEL = re.compile(r"^[A-Za-z0-9]+$")
_CRON = re.compile(r"^cron\((.*)\)$")
#: A Snowflake object name, unquoted, optionally qualified: db.schema.name.
_SF_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")
#: A path into the API's JSON answer: field names joined by dots (records, data.items).
_JSON_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_JSON_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_S3_LOCATION = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([A-Za-z0-9!_.*'()/-]*/)?$")
_IAM_USER_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:user/[\w+=,.@/-]{1,512}$")
#: What IAM accepts as an sts:ExternalId (2-1224 characters).
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")

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


class ConfigError(ValueError):
    """The `pipeline` configuration is invalid; the message says what and how to fix it."""


@dataclass(frozen=True)
class RetryConfig:
    """Exponential backoff with full jitter for one family of retryable errors."""

    interval_seconds: int
    backoff_rate: float
    max_attempts: int
    max_delay_seconds: int

    def waits(self) -> list[float]:
        """The un-jittered waits before each retry (what full jitter draws below)."""
        return [
            min(self.interval_seconds * self.backoff_rate**n, self.max_delay_seconds)
            for n in range(self.max_attempts)
        ]


@dataclass(frozen=True)
class ScheduleConfig:
    """When the nightly run starts."""

    cron: str
    timezone: str
    enabled: bool


@dataclass(frozen=True)
class SnowflakeConfig:
    """Where the IDs come from, and how long the query step may take."""

    secret_name: str
    query: str
    id_column: str
    fetch_batch_size: int
    timeout_seconds: int
    retry: RetryConfig
    #: None: every night queries every ID; N: only IDs not enriched OK in the last N days.
    refresh_after_days: int | None = None

    @property
    def login_timeout_s(self) -> int:
        """Connector login timeout: a tenth of the Lambda's time, at most 30 s."""
        return min(30, self.timeout_seconds // 10)

    @property
    def statement_timeout_s(self) -> int:
        """Query timeout: two thirds of the Lambda's; the rest is login, fetch and S3 writes."""
        return self.timeout_seconds * 2 // 3

    @property
    def network_timeout_s(self) -> int:
        """Per-request network timeout, never longer than the statement timeout."""
        return min(120, self.statement_timeout_s)


@dataclass(frozen=True)
class EnrichmentConfig:
    """The enrichment API and how hard the pipeline may push it."""

    base_url: str
    api_key_secret_name: str | None
    api_key_header: str
    max_ids_per_request: int
    max_url_length: int
    max_concurrency: int
    timeout_seconds: int
    retry: RetryConfig

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


#: RecordFailedBatch's retrier: 2 retries, 1 s then 2 s (un-jittered), 5 s per attempt.
RECORD_FAILED_RETRY = RetryConfig(
    interval_seconds=1, backoff_rate=2.0, max_attempts=2, max_delay_seconds=2
)


@dataclass(frozen=True)
class ChildBudget:
    """Everything one batch's Express child may spend, in one place.

    A child is InvokeEnrich (one retrier for every retryable error: RetryableEnrichError,
    the Lambda service's errors and throttling, bounded by `enrichment.retry`) and, when
    that fails for good, RecordFailedBatch (its own short timeout and retrier). The state
    machine is built from these figures (stacks/workflow.py) and config validation refuses
    a `worst_case_s` of Express's 300 s or more; tests/infra/test_child_budget.py walks the
    synthesized child to prove the two agree.
    """

    invoke_timeout_s: int
    invoke_retry: RetryConfig
    record_timeout_s: int = RECORD_FAILED_TIMEOUT_S
    record_retry: RetryConfig = RECORD_FAILED_RETRY

    @property
    def invoke_worst_s(self) -> float:
        """InvokeEnrich: every attempt runs to its Task timeout, every wait is maximal."""
        r = self.invoke_retry
        return (r.max_attempts + 1) * self.invoke_timeout_s + sum(r.waits())

    @property
    def record_worst_s(self) -> float:
        """RecordFailedBatch, the same way."""
        r = self.record_retry
        return (r.max_attempts + 1) * self.record_timeout_s + sum(r.waits())

    @property
    def worst_case_s(self) -> float:
        """The longest a child can live: InvokeEnrich's worst case, then the record's."""
        return self.invoke_worst_s + self.record_worst_s

    def explain(self) -> str:
        """How `worst_case_s` is made up, for error messages and docs."""
        r, rr = self.invoke_retry, self.record_retry
        return (
            f"InvokeEnrich {r.max_attempts + 1} attempts x {self.invoke_timeout_s} s + "
            f"{sum(r.waits()):g} s of retry waits = {self.invoke_worst_s:g} s, then "
            f"RecordFailedBatch {rr.max_attempts + 1} x {self.record_timeout_s} s + "
            f"{sum(rr.waits()):g} s = {self.record_worst_s:g} s"
        )


@dataclass(frozen=True)
class LoadConfig:
    """Loading the stored answers into Snowflake through an external stage."""

    enabled: bool
    source: str | None
    stage: str
    landing_table: str
    results_table: str
    state_table: str
    records_path: str
    id_field: str
    snowflake_iam_user_arn: str | None
    external_id: str | None
    role_name: str
    #: LoadResults' Lambda timeout: COPY and the MERGEs of a large night run in Snowflake.
    timeout_seconds: int = 600

    @property
    def source_stage(self) -> str | None:
        """The stage over `source` (`<stage>_SOURCE`), when `source` is set."""
        return source_stage_name(self.stage) if self.source else None

    @property
    def login_timeout_s(self) -> int:
        """Connector login timeout: a tenth of the Lambda's time, at most 30 s."""
        return min(30, self.timeout_seconds // 10)

    @property
    def statement_timeout_s(self) -> int:
        """Per-statement timeout: two thirds of the Lambda's, so a stuck COPY or MERGE
        ends with Snowflake's error before Lambda kills the function."""
        return self.timeout_seconds * 2 // 3

    @property
    def network_timeout_s(self) -> int:
        """Per-request network timeout, never longer than the statement timeout."""
        return min(120, self.statement_timeout_s)

    @property
    def source_bucket(self) -> str | None:
        """The bucket of `source` (`s3://bucket/prefix/`), when set."""
        return urlsplit(self.source).netloc if self.source else None

    @property
    def source_prefix(self) -> str:
        """The key prefix of `source` ("" for a whole bucket)."""
        return urlsplit(self.source).path.lstrip("/") if self.source else ""


@dataclass(frozen=True)
class AlarmsConfig:
    """Who is told about problems, and when a missing run counts as one."""

    emails: tuple[str, ...]
    missed_run_hours: int
    slack_workspace_id: str | None
    slack_channel_id: str | None


@dataclass(frozen=True)
class PipelineConfig:
    """The whole validated configuration."""

    schedule: ScheduleConfig
    snowflake: SnowflakeConfig
    enrichment: EnrichmentConfig
    workflow_timeout_minutes: int
    alarms: AlarmsConfig
    run_data_days: int
    log_days: int
    log_level: str
    load: LoadConfig


# --------------------------------------------------------------------------- reading context


def raw_from_context(context: dict[str, Any]) -> dict[str, Any]:
    """Build the raw `pipeline` object from CDK context (object + dotted `pipeline.x.y` keys).

    Keys are applied over `DEFAULTS`; a JSON string (as `cdk -c` passes it) is parsed.
    """
    errors: list[str] = []
    merged = copy.deepcopy(DEFAULTS)
    base = context.get(CONTEXT_KEY)
    if isinstance(base, str):
        try:
            base = json.loads(base)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"context {CONTEXT_KEY}={base!r} is not valid JSON ({exc.msg}); "
                f"fix: pass a JSON object, e.g. -c {CONTEXT_KEY}='{{\"schedule\": {{...}}}}'"
            ) from None
    if base is not None:
        if not isinstance(base, dict):
            raise ConfigError(
                f"context {CONTEXT_KEY} must be a JSON object, got {type(base).__name__}; "
                "fix: see the configuration table in README.md"
            )
        _merge(merged, base, CONTEXT_KEY, errors)
    prefix = CONTEXT_KEY + "."
    for key in sorted(k for k in context if k.startswith(prefix)):
        _set_dotted(merged, key[len(prefix) :], _parse_cli_value(context[key]), errors)
    if errors:
        raise ConfigError(_format_errors(errors))
    return merged


def _parse_cli_value(value: Any) -> Any:
    # `cdk -c a.b=5` passes the string "5"; accept JSON scalars/lists, else keep the string.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _merge(target: dict[str, Any], source: dict[str, Any], path: str, errors: list[str]) -> None:
    for key, value in source.items():
        full = f"{path}.{key}"
        if key not in target:
            errors.append(_unknown_key(full, value, target))
        elif isinstance(target[key], dict):
            if not isinstance(value, dict):
                errors.append(
                    f"{full}={value!r} must be an object with keys {sorted(target[key])}; "
                    "fix: see the configuration table in README.md"
                )
            else:
                _merge(target[key], value, full, errors)
        else:
            target[key] = value


def _set_dotted(target: dict[str, Any], dotted: str, value: Any, errors: list[str]) -> None:
    parts = dotted.split(".")
    node: Any = target
    for depth, part in enumerate(parts):
        full = ".".join([CONTEXT_KEY, *parts[: depth + 1]])
        if not isinstance(node, dict) or part not in node:
            errors.append(_unknown_key(full, value, node if isinstance(node, dict) else {}))
            return
        if depth == len(parts) - 1:
            if isinstance(node[part], dict) and isinstance(value, dict):
                _merge(node[part], value, full, errors)
            else:
                node[part] = value
        else:
            node = node[part]


def _unknown_key(full: str, value: Any, siblings: dict[str, Any]) -> str:
    known = sorted(siblings)
    return (
        f"{full}={value!r} is not a known configuration key; "
        f"fix: remove it or use one of {known} (check the spelling)"
    )


def _format_errors(errors: list[str]) -> str:
    if len(errors) == 1:
        return f"Invalid pipeline configuration: {errors[0]}"
    lines = "\n".join(f"  - {e}" for e in errors)
    return f"Invalid pipeline configuration ({len(errors)} problems):\n{lines}"


# --------------------------------------------------------------------------- validation


class _Checker:
    """Collects one message per bad value: key, value, fix."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.errors: list[str] = []

    def get(self, dotted: str) -> Any:
        node: Any = self.raw
        for part in dotted.split("."):
            node = node[part]
        return node

    def fail(self, dotted: str, value: Any, problem: str, fix: str) -> None:
        self.errors.append(f"{CONTEXT_KEY}.{dotted}={value!r} {problem}; fix: {fix}")

    def integer(self, dotted: str, low: int, high: int) -> int:
        value = self.get(dotted)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(dotted, value, "is not a whole number", f"use a number from {low} to {high}")
            return low
        if not low <= value <= high:
            self.fail(dotted, value, "is out of range", f"use a number from {low} to {high}")
            return low
        return value

    def number(self, dotted: str, low: float, high: float) -> float:
        value = self.get(dotted)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(dotted, value, "is not a number", f"use a number from {low} to {high}")
            return low
        if not low <= value <= high:
            self.fail(dotted, value, "is out of range", f"use a number from {low} to {high}")
            return low
        return float(value)

    def boolean(self, dotted: str) -> bool:
        value = self.get(dotted)
        if not isinstance(value, bool):
            self.fail(dotted, value, "is not true or false", "use true or false (JSON booleans)")
            return False
        return value

    def string(self, dotted: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value = self.get(dotted)
        if not isinstance(value, str) or not value.strip():
            self.fail(dotted, value, "must be a non-empty string", hint or "set a value")
            return ""
        if pattern is not None and not pattern.match(value):
            self.fail(dotted, value, "is malformed", hint)
            return ""
        return value

    def optional_string(self, dotted: str, pattern: re.Pattern[str], hint: str) -> str | None:
        if self.get(dotted) in (None, ""):
            return None
        return self.string(dotted, pattern, hint) or None

    def retry(self, dotted: str) -> RetryConfig:
        retry = RetryConfig(
            interval_seconds=self.integer(f"{dotted}.intervalSeconds", 1, 3600),
            backoff_rate=self.number(f"{dotted}.backoffRate", 1.0, 10.0),
            max_attempts=self.integer(f"{dotted}.maxAttempts", 0, 10),
            max_delay_seconds=self.integer(f"{dotted}.maxDelaySeconds", 1, 3600),
        )
        if retry.max_delay_seconds < retry.interval_seconds:
            self.fail(
                f"{dotted}.maxDelaySeconds",
                retry.max_delay_seconds,
                f"is below {dotted}.intervalSeconds ({retry.interval_seconds})",
                "make maxDelaySeconds at least intervalSeconds",
            )
        return retry


def load_config(context: dict[str, Any], today: date | None = None) -> PipelineConfig:
    """Read and validate the `pipeline` configuration from CDK context.

    `today` anchors the daylight-saving check (tests pin it); it defaults to today's UTC date.
    Raises `ConfigError` naming every bad key, its value and the fix.
    """
    return validate(raw_from_context(context), today=today)


def validate(raw: dict[str, Any], today: date | None = None) -> PipelineConfig:
    """Validate a merged raw `pipeline` object (see `raw_from_context`)."""
    c = _Checker(raw)

    timezone = c.string("schedule.timezone", hint="use an IANA time zone such as Europe/Paris")
    if timezone:
        timezone = _check_timezone(c, timezone)
    cron = c.string("schedule.cron", hint="use a Scheduler cron such as cron(0 2 * * ? *)")
    if cron:
        cron = _check_cron(c, cron, timezone, today)
    schedule = ScheduleConfig(cron=cron, timezone=timezone, enabled=c.boolean("schedule.enabled"))

    snowflake = SnowflakeConfig(
        secret_name=c.string(
            "snowflake.secretName",
            _SECRET_NAME,
            "use a Secrets Manager secret name (letters, digits and /_+=.@-)",
        ),
        query=c.string("snowflake.query", hint="set the SELECT that returns the IDs"),
        id_column=c.string(
            "snowflake.idColumn", _IDENTIFIER, "use the column name of the IDs, e.g. IMDB_VALUE"
        ),
        fetch_batch_size=c.integer("snowflake.fetchBatchSize", 100, 1_000_000),
        timeout_seconds=c.integer("snowflake.timeoutSeconds", 60, 900),
        retry=c.retry("snowflake.retry"),
    )

    base_url = c.get("enrichment.baseUrl")
    if not isinstance(base_url, str) or not base_url:
        c.fail(
            "enrichment.baseUrl",
            base_url,
            "is required",
            "set the https URL of the enrichment API, e.g. https://abc.execute-api."
            "us-east-1.amazonaws.com/prod/lamba-tmdb",
        )
        base_url = ""
    else:
        base_url = _check_base_url(c, base_url)
    enrichment = EnrichmentConfig(
        base_url=base_url,
        api_key_secret_name=c.optional_string(
            "enrichment.apiKeySecretName",
            _SECRET_NAME,
            "use a Secrets Manager secret name, or null when the API needs no key",
        ),
        api_key_header=c.string(
            "enrichment.apiKeyHeader", _HEADER, "use an HTTP header name such as x-api-key"
        ),
        max_ids_per_request=c.integer("enrichment.maxIdsPerRequest", 1, 1000),
        max_url_length=c.integer("enrichment.maxUrlLength", 256, 65536),
        # The Distributed Map's limit is 10,000 parallel children.
        max_concurrency=c.integer("enrichment.maxConcurrency", 1, 10000),
        timeout_seconds=c.integer("enrichment.timeoutSeconds", 1, 180),
        retry=c.retry("enrichment.retry"),
    )
    # Only when both values are valid (a failed check returns a placeholder).
    if base_url and c.get("enrichment.maxUrlLength") == enrichment.max_url_length:
        longest = len(base_url) + 1 + len(LONGEST_ID_PART)
        if longest > enrichment.max_url_length:
            c.fail(
                "enrichment.maxUrlLength",
                enrichment.max_url_length,
                f"leaves no room for IDs after the {len(base_url)}-character "
                f"enrichment.baseUrl (one ID alone makes a {longest}-character URL)",
                f"raise it to at least {longest} or shorten enrichment.baseUrl",
            )
    budget = enrichment.child_budget()
    if not c.errors and budget.worst_case_s >= EXPRESS_CHILD_LIMIT_S:
        c.fail(
            "enrichment.retry",
            raw["enrichment"]["retry"],
            f"lets one batch's child execution run up to {budget.worst_case_s:g} s "
            f"({budget.explain()}; each InvokeEnrich attempt is timeoutSeconds="
            f"{enrichment.timeout_seconds} + {budget.invoke_timeout_s - enrichment.timeout_seconds}"
            f" s), not below the {EXPRESS_CHILD_LIMIT_S} s an Express child may live",
            "lower enrichment.retry.maxAttempts or maxDelaySeconds, or "
            "enrichment.timeoutSeconds, until the total is below "
            f"{EXPRESS_CHILD_LIMIT_S} s",
        )

    emails = c.get("alarms.emails")
    if not isinstance(emails, list):
        c.fail("alarms.emails", emails, "must be a list", 'use ["oncall@example.com"] or []')
        emails = []
    for i, email in enumerate(emails):
        if not isinstance(email, str) or not _EMAIL.match(email):
            c.fail(
                f"alarms.emails[{i}]",
                email,
                "is not an e-mail address",
                "use name@domain.tld, or remove it",
            )
    workspace = c.optional_string(
        "alarms.slackWorkspaceId", _SLACK_WORKSPACE, "use the workspace ID from the Chatbot console"
    )
    channel = c.optional_string(
        "alarms.slackChannelId", _SLACK_CHANNEL, "use the channel ID (e.g. C0123ABCD)"
    )
    if (workspace is None) != (channel is None):
        missing = "alarms.slackChannelId" if channel is None else "alarms.slackWorkspaceId"
        c.fail(
            missing,
            None,
            "is missing while the other Slack key is set",
            "set both slackWorkspaceId and slackChannelId, or neither",
        )
    alarms = AlarmsConfig(
        emails=tuple(e for e in emails if isinstance(e, str)),
        missed_run_hours=c.integer("alarms.missedRunHours", 2, 168),
        slack_workspace_id=workspace,
        slack_channel_id=channel,
    )

    log_days = c.get("retention.logDays")
    if log_days not in LOG_RETENTION_DAYS or isinstance(log_days, bool):
        c.fail(
            "retention.logDays",
            log_days,
            "is not a retention CloudWatch Logs accepts",
            f"use one of {list(LOG_RETENTION_DAYS)}",
        )
        log_days = 30
    log_level = c.get("logLevel")
    if log_level not in LOG_LEVELS:
        c.fail("logLevel", log_level, "is not a log level", f"use one of {list(LOG_LEVELS)}")
        log_level = "INFO"

    load = _check_load(c)
    refresh = c.get("snowflake.incremental.refreshAfterDays")
    if refresh is not None:
        refresh = c.integer("snowflake.incremental.refreshAfterDays", 1, 3650)
        if c.get("load.enabled") is False:
            # The state table it reads is kept by the load step: without loading there is
            # no state, so every night queries every ID (README documents it). Not an error,
            # so `load.enabled=false` alone turns loading off (the first deploy does).
            refresh = None
    snowflake = dataclasses.replace(snowflake, refresh_after_days=refresh)

    config = PipelineConfig(
        schedule=schedule,
        snowflake=snowflake,
        enrichment=enrichment,
        workflow_timeout_minutes=c.integer("workflow.timeoutMinutes", 15, 1440),
        alarms=alarms,
        run_data_days=c.integer("retention.runDataDays", 1, 3650),
        log_days=log_days,
        log_level=log_level,
        load=load,
    )
    if c.errors:
        raise ConfigError(_format_errors(c.errors))
    return config


def _check_load(c: _Checker) -> LoadConfig:
    name_hint = "use a Snowflake name: letters, digits, _ and $, optionally db.schema.name"
    load = LoadConfig(
        enabled=c.boolean("load.enabled"),
        source=c.optional_string(
            "load.source",
            _S3_LOCATION,
            "use null (load the stored answers) or the location the API writes to, as "
            "s3://bucket/prefix/ (ending in /)",
        ),
        stage=c.string("load.stage", _SF_NAME, name_hint),
        landing_table=c.string("load.landingTable", _SF_NAME, name_hint),
        results_table=c.string("load.resultsTable", _SF_NAME, name_hint),
        state_table=c.string("load.stateTable", _SF_NAME, name_hint),
        records_path=c.string(
            "load.recordsPath",
            _JSON_PATH,
            "use the field of the API's answer that holds the per-ID records, e.g. records "
            "or data.items",
        ),
        id_field=c.string(
            "load.idField", _JSON_FIELD, "use the record field holding the IMDB ID, e.g. imdb_id"
        ),
        snowflake_iam_user_arn=c.optional_string(
            "load.snowflakeIamUserArn",
            _IAM_USER_ARN,
            "use STORAGE_AWS_IAM_USER_ARN from DESC INTEGRATION, arn:aws:iam::<12 digits>:user/...",
        ),
        external_id=c.optional_string(
            "load.externalId",
            _EXTERNAL_ID,
            "use STORAGE_AWS_EXTERNAL_ID from DESC INTEGRATION (letters, digits and _+=,.@:/-)",
        ),
        role_name=c.string(
            "load.roleName", _ROLE_NAME, "use an IAM role name (1-64 of letters, digits, _+=,.@-)"
        ),
        # Lambda's limit is 900 s; 60 s is the least a COPY + two MERGEs can count on.
        timeout_seconds=c.integer("load.timeoutSeconds", 60, 900),
    )
    if load.enabled:
        missing = [
            f"load.{key}"
            for key in ("snowflakeIamUserArn", "externalId")
            if c.get(f"load.{key}") in (None, "")
        ]
        if missing:
            # One message for both: they come from the same DESC INTEGRATION.
            c.errors.append(
                f"{CONTEXT_KEY}.{' and '.join(missing)} not set while "
                f"{CONTEXT_KEY}.load.enabled=true (the stack creates the IAM role Snowflake's "
                f"storage integration assumes, and needs Snowflake's side of it); fix: "
                + SETUP_HINT
            )
    return load


def source_stage_name(stage: str) -> str:
    """The stage over `load.source` (the API's own result files), beside the runs stage."""
    return f"{stage}_SOURCE"


def stage_role_arn(account: str, role_name: str, partition: str = "aws") -> str:
    """The storage integration role's ARN, computable before it exists (its name is fixed)."""
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def with_local_placeholders(context: dict[str, Any]) -> dict[str, Any]:
    """`context` plus local-only stand-ins for the two DESC INTEGRATION values, when unset.

    For in-process synth (tests, the local runner): those never deploy, and Snowflake's
    side of the integration does not exist locally. app.py (`cdk deploy`) does not call it.
    """
    try:
        load = raw_from_context(context)["load"]
    except ConfigError:
        return context  # load_config reports it
    if load.get("enabled") is not True:
        return context
    out = dict(context)
    for key, value in (
        ("snowflakeIamUserArn", LOCAL_PLACEHOLDER_IAM_USER_ARN),
        ("externalId", LOCAL_PLACEHOLDER_EXTERNAL_ID),
    ):
        if load.get(key) in (None, ""):
            out[f"{CONTEXT_KEY}.load.{key}"] = value
    return out


def _check_timezone(c: _Checker, timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        close = sorted(z for z in available_timezones() if z.lower() == timezone.lower())
        hint = f"did you mean {close[0]!r}? " if close else ""
        c.fail(
            "schedule.timezone",
            timezone,
            "is not a known IANA time zone",
            f"{hint}use a name such as UTC, Europe/Paris or America/New_York",
        )
        return ""
    return timezone


def _check_base_url(c: _Checker, base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.hostname:
        c.fail(
            "enrichment.baseUrl",
            base_url,
            "is not an https URL",
            "use https://<host>/<path>; the API is called over TLS only",
        )
        return ""
    if parts.fragment:
        c.fail("enrichment.baseUrl", base_url, "has a #fragment", "remove the #... part")
        return ""
    return base_url


# --------------------------------------------------------------------------- cron


_FIELD_RANGES = {
    "minutes": (0, 59),
    "hours": (0, 23),
}
_CRON_FIELD = {
    "day-of-month": re.compile(r"^(\?|\*|L|LW|\d{1,2}W|[\d,\-*/]+)$"),
    "month": re.compile(r"^(\*|[\d,\-*/]+|[A-Za-z,\-]+)$"),
    "day-of-week": re.compile(r"^(\?|\*|L|[\d,\-*/#L]+|[A-Za-z,\-#L]+)$"),
    "year": re.compile(r"^(\*|[\d,\-*/]+)$"),
}
_CRON_HINT = (
    "use cron(minutes hours day-of-month month day-of-week year), one of day-of-month or "
    "day-of-week being ?, e.g. cron(0 2 * * ? *)"
)


def _expand(field: str, low: int, high: int) -> set[int]:
    """Expand one numeric cron field (`*`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n`, lists)."""
    values: set[int] = set()
    for part in field.split(","):
        step = 1
        stepped = "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            step = int(step_text)
            if step < 1:
                raise ValueError("step must be at least 1")
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(part)
            end = high if stepped else start
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ValueError(f"{part} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def parse_cron_times(cron: str) -> list[tuple[int, int]]:
    """The (hour, minute) pairs a Scheduler cron fires at; ValueError when malformed."""
    match = _CRON.match(cron.strip())
    if not match:
        raise ValueError("it must look like cron(...)")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise ValueError(f"it has {len(fields)} fields inside cron(...), Scheduler needs 6")
    minutes, hours, dom, month, dow, year = fields
    for name, value in zip(
        ("day-of-month", "month", "day-of-week", "year"), (dom, month, dow, year), strict=True
    ):
        if not _CRON_FIELD[name].match(value):
            raise ValueError(f"its {name} field {value!r} is malformed")
    if (dom == "?") == (dow == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be ?")
    try:
        mins = _expand(minutes, *_FIELD_RANGES["minutes"])
        hrs = _expand(hours, *_FIELD_RANGES["hours"])
    except ValueError as exc:
        raise ValueError(f"its minutes/hours fields are malformed ({exc})") from None
    return sorted((h, m) for h in hrs for m in mins)


@dataclass(frozen=True)
class DstGap:
    """A stretch of local wall-clock time that does not exist (clocks jump forward)."""

    day: date
    start: time
    end: time


def dst_gaps(timezone: str, start: date, days: int = 366) -> list[DstGap]:
    """Spring-forward gaps of `timezone` in the `days` from `start` (computed with zoneinfo)."""
    tz = ZoneInfo(timezone)
    gaps: list[DstGap] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        begin = datetime.combine(day, time(0), tzinfo=UTC)
        end = begin + timedelta(days=1)
        before = begin.astimezone(tz).utcoffset()
        after = end.astimezone(tz).utcoffset()
        if before is None or after is None or after <= before:
            continue
        # Offset grew within this UTC day: find the transition instant to the minute.
        lo, hi = begin, end
        while hi - lo > timedelta(minutes=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        jump = hi.replace(second=0, microsecond=0)
        local_start = (jump + before).replace(tzinfo=None)
        local_end = (jump + after).replace(tzinfo=None)
        gaps.append(DstGap(local_start.date(), local_start.time(), local_end.time()))
    return gaps


def _in_gap(hour: int, minute: int, gap: DstGap) -> bool:
    t = time(hour, minute)
    if gap.start <= gap.end:
        return gap.start <= t < gap.end
    return t >= gap.start or t < gap.end  # gap spans local midnight


def _check_cron(c: _Checker, cron: str, timezone: str, today: date | None) -> str:
    try:
        times = parse_cron_times(cron)
    except ValueError as exc:
        c.fail("schedule.cron", cron, f"is not a valid Scheduler cron expression: {exc}",
               _CRON_HINT)  # fmt: skip
        return ""
    if not timezone:
        return cron
    start = today or datetime.now(UTC).date()
    for gap in dst_gaps(timezone, start):
        hit = [(h, m) for h, m in times if _in_gap(h, m, gap)]
        if hit:
            h, m = hit[0]
            last = (datetime.combine(gap.day, gap.end) - timedelta(minutes=1)).time()
            fields = cron.strip()[5:-1].split()
            after = f"cron({gap.end.minute} {gap.end.hour} {' '.join(fields[2:])})"
            before_hour = (gap.start.hour - 1) % 24
            before = f"cron({gap.start.minute} {before_hour} {' '.join(fields[2:])})"
            c.fail(
                "schedule.cron",
                cron,
                f"fires at {h:02d}:{m:02d} in {timezone}, a time that does not exist on "
                f"{gap.day.isoformat()}: clocks jump from {gap.start:%H:%M} to {gap.end:%H:%M} "
                "for daylight saving, so that night's run would be skipped",
                f"choose a time outside {gap.start:%H:%M}-{last:%H:%M}, e.g. {after} or "
                f"{before}, or use a zone without daylight saving such as UTC",
            )
            return ""
    return cron
