"""Typed, validated pipeline configuration read from the `pipeline` context object.

Every bad value stops synth with one `ConfigError` whose message names the key, the value
and the fix (all problems found are listed together, so one synth shows everything that
needs fixing). The package, by job:

- `models`: the `pipeline` object as pydantic models (keys, defaults, meanings, checks);
- `fields`: the field types and their messages; `problems`: turning failures into messages;
- `cron`: Scheduler cron expressions, time zones, daylight-saving gaps;
- `budget`: retry policies and the time budget of one Express child;
- `context`: reading CDK context over the defaults; `limits`: AWS's and our fixed limits;
- `schema` and `reference`: the JSON Schema for editors and the Markdown reference.
"""

from stacks.config.budget import RECORD_FAILED_RETRY, ChildBudget, RetryConfig
from stacks.config.context import (
    DEFAULTS,
    load_config,
    raw_from_context,
    validate,
    with_local_placeholders,
)
from stacks.config.cron import DstGap, dst_gaps, parse_cron_times
from stacks.config.limits import (
    CONTEXT_KEY,
    ENRICH_LAMBDA_MARGIN_S,
    EXPRESS_CHILD_LIMIT_S,
    HTTP_CONNECT_TIMEOUT_S,
    LOCAL_PLACEHOLDER_EXTERNAL_ID,
    LOCAL_PLACEHOLDER_IAM_USER_ARN,
    LOG_LEVELS,
    LOG_RETENTION_DAYS,
    LONGEST_ID_PART,
    RECORD_FAILED_TIMEOUT_S,
    SETUP_HINT,
    TASK_TIMEOUT_MARGIN_S,
    log_retention,
)
from stacks.config.models import (
    AlarmsConfig,
    EnrichmentConfig,
    IncrementalConfig,
    LoadConfig,
    PipelineConfig,
    RetentionConfig,
    ScheduleConfig,
    SnowflakeConfig,
    WorkflowConfig,
    source_stage_name,
    stage_role_arn,
)
from stacks.config.problems import ConfigError

__all__ = [
    "CONTEXT_KEY",
    "DEFAULTS",
    "ENRICH_LAMBDA_MARGIN_S",
    "EXPRESS_CHILD_LIMIT_S",
    "HTTP_CONNECT_TIMEOUT_S",
    "LOCAL_PLACEHOLDER_EXTERNAL_ID",
    "LOCAL_PLACEHOLDER_IAM_USER_ARN",
    "LOG_LEVELS",
    "LOG_RETENTION_DAYS",
    "LONGEST_ID_PART",
    "RECORD_FAILED_RETRY",
    "RECORD_FAILED_TIMEOUT_S",
    "SETUP_HINT",
    "TASK_TIMEOUT_MARGIN_S",
    "AlarmsConfig",
    "ChildBudget",
    "ConfigError",
    "DstGap",
    "EnrichmentConfig",
    "IncrementalConfig",
    "LoadConfig",
    "PipelineConfig",
    "RetentionConfig",
    "RetryConfig",
    "ScheduleConfig",
    "SnowflakeConfig",
    "WorkflowConfig",
    "dst_gaps",
    "load_config",
    "log_retention",
    "parse_cron_times",
    "raw_from_context",
    "source_stage_name",
    "stage_role_arn",
    "validate",
    "with_local_placeholders",
]
