"""Field types of the `pipeline` models: each checks its value and says how to fix it.

The factories (`whole`, `text`, ...) and, below them, the type of each kind of key
(`SecretName`, `S3Location`, ...) with the fix its message gives. Each is an `Annotated`
type: the JSON Schema sees the plain type with its bounds or pattern (for editors), and a
before-validator refuses a bad value with a `Problem` worded as users read it. The check is
strict: "10000" is not a number, 1 is not true.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from stacks.config.cron import check_cron, check_timezone
from stacks.config.problems import Problem


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole(low: int, high: int) -> Any:
    """A whole number from `low` to `high`."""

    def check(value: Any) -> int:
        if not _is_int(value):
            raise Problem("is not a whole number", f"use a number from {low} to {high}")
        if not low <= value <= high:
            raise Problem("is out of range", f"use a number from {low} to {high}")
        return value

    return Annotated[int, Field(ge=low, le=high), BeforeValidator(check)]


def optional_whole(low: int, high: int) -> Any:
    """`whole(low, high)`, or null."""
    check = _before(whole(low, high))
    return Annotated[
        Annotated[int, Field(ge=low, le=high)] | None,
        BeforeValidator(lambda v: None if v is None else check(v)),
    ]


def number(low: float, high: float) -> Any:
    """A number (whole or not) from `low` to `high`."""

    def check(value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Problem("is not a number", f"use a number from {low} to {high}")
        if not low <= value <= high:
            raise Problem("is out of range", f"use a number from {low} to {high}")
        return float(value)

    return Annotated[float, Field(ge=low, le=high), BeforeValidator(check)]


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Problem("is not true or false", "use true or false (JSON booleans)")
    return value


#: JSON true or false.
Flag = Annotated[bool, BeforeValidator(_flag)]


def text(fix: str = "set a value", pattern: re.Pattern[str] | None = None) -> Any:
    """A non-empty string, matching `pattern` when given; `fix` says what to write."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise Problem("must be a non-empty string", fix)
        if pattern is not None and not pattern.match(value):
            raise Problem("is malformed", fix)
        return value

    # The pattern is checked above with Python's `re`; the schema carries it for editors.
    schema = {"pattern": pattern.pattern} if pattern is not None else None
    return Annotated[str, Field(min_length=1, json_schema_extra=schema), BeforeValidator(check)]


def optional_text(fix: str, pattern: re.Pattern[str]) -> Any:
    """`text(fix, pattern)`, or null ("" counts as null)."""
    check = _before(text(fix, pattern))
    schema = {"pattern": pattern.pattern}
    return Annotated[
        Annotated[str, Field(json_schema_extra=schema)] | None,
        BeforeValidator(lambda v: None if v in (None, "") else check(v)),
    ]


def one_of(values: tuple[Any, ...], problem: str) -> Any:
    """One of `values` (compared as JSON does: true is not 1)."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in values:
            raise Problem(problem, f"use one of {list(values)}")
        return values[values.index(value)]

    kind = type(values[0])
    return Annotated[kind, Field(json_schema_extra={"enum": list(values)}), BeforeValidator(check)]


def _before(annotated: Any) -> Callable[[Any], Any]:
    """The before-validator function inside one of the types above."""
    (validator,) = [m for m in annotated.__metadata__ if isinstance(m, BeforeValidator)]
    return validator.func


# --------------------------------------------------------------------------- the keys' types

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_SLACK_WORKSPACE = re.compile(r"^[0-9A-Z]{1,255}$")
_SLACK_CHANNEL = re.compile(r"^[A-Za-z0-9]+$")
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
_SF_NAME_FIX = "use a Snowflake name: letters, digits, _ and $, optionally db.schema.name"


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


def _email_list(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        raise Problem("must be a list", 'use ["oncall@example.com"] or []')
    return value


BaseUrl = Annotated[
    str, Field(json_schema_extra={"pattern": "^https://"}), BeforeValidator(_base_url)
]
Email = Annotated[str, Field(json_schema_extra={"format": "email"}), BeforeValidator(_email)]
Cron = Annotated[text("use a Scheduler cron such as cron(0 2 * * ? *)"), AfterValidator(check_cron)]
TimeZone = Annotated[
    text("use an IANA time zone such as Europe/Paris"), AfterValidator(check_timezone)
]
SecretName = text("use a Secrets Manager secret name (letters, digits and /_+=.@-)", _SECRET_NAME)
SnowflakeName = text(_SF_NAME_FIX, _SF_NAME)
ColumnName = text("use the column name of the IDs, e.g. IMDB_VALUE", _IDENTIFIER)
Query = text("set the SELECT that returns the IDs")
OptionalSecretName = optional_text(
    "use a Secrets Manager secret name, or null when the API needs no key", _SECRET_NAME
)
HeaderName = text("use an HTTP header name such as x-api-key", _HEADER)
S3Location = optional_text(
    "use null (load the stored answers) or the location the API writes to, as "
    "s3://bucket/prefix/ (ending in /)",
    _S3_LOCATION,
)
JsonPath = text(
    "use the field of the API's answer that holds the per-ID records, e.g. records or data.items",
    _JSON_PATH,
)
JsonField = text("use the record field holding the IMDB ID, e.g. imdb_id", _JSON_FIELD)
IamUserArn = optional_text(
    "use STORAGE_AWS_IAM_USER_ARN from DESC INTEGRATION, arn:aws:iam::<12 digits>:user/...",
    _IAM_USER_ARN,
)
ExternalId = optional_text(
    "use STORAGE_AWS_EXTERNAL_ID from DESC INTEGRATION (letters, digits and _+=,.@:/-)",
    _EXTERNAL_ID,
)
RoleName = text("use an IAM role name (1-64 of letters, digits, _+=,.@-)", _ROLE_NAME)
SlackWorkspaceId = optional_text("use the workspace ID from the Chatbot console", _SLACK_WORKSPACE)
SlackChannelId = optional_text("use the channel ID (e.g. C0123ABCD)", _SLACK_CHANNEL)
Emails = Annotated[tuple[Email, ...], BeforeValidator(_email_list)]


class Section(BaseModel):
    """Base of every `pipeline` model: camelCase keys as in cdk.json, nothing unknown, frozen.

    Python code builds them by field name (`RetryConfig(interval_seconds=...)`).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )
