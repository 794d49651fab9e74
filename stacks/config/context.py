"""Reading the `pipeline` object from CDK context, over the models' defaults, and validating it.

`cdk.json` holds the `pipeline` object; `cdk -c pipeline='{...json...}'` replaces it and
`cdk -c pipeline.schedule.cron='cron(0 3 * * ? *)'` overrides one key.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from stacks.config.limits import (
    CONTEXT_KEY,
    LOCAL_PLACEHOLDER_EXTERNAL_ID,
    LOCAL_PLACEHOLDER_IAM_USER_ARN,
)
from stacks.config.models import IncrementalConfig, PipelineConfig
from stacks.config.problems import ConfigError, config_error, format_errors


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    """Every key of `model` with its default, as cdk.json writes them (None when required)."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        default = info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            out[key] = default.model_dump(mode="json")
        elif isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out[key] = defaults_of(info.annotation)
        else:
            out[key] = to_jsonable_python(default)
    return out


#: Every key the `pipeline` object accepts, with its default (from the models).
DEFAULTS: dict[str, Any] = defaults_of(PipelineConfig)


def load_config(context: dict[str, Any], today: date | None = None) -> PipelineConfig:
    """Read and validate the `pipeline` configuration from CDK context.

    `today` anchors the daylight-saving check (tests pin it); it defaults to today's UTC date.
    Raises `ConfigError` naming every bad key, its value and the fix.
    """
    return validate(raw_from_context(context), today=today)


def validate(raw: dict[str, Any], today: date | None = None) -> PipelineConfig:
    """Validate a merged raw `pipeline` object (see `raw_from_context`)."""
    try:
        config = PipelineConfig.model_validate(raw, by_alias=True, context={"today": today})
    except ValidationError as exc:
        raise config_error(exc) from None
    if not config.load.enabled and config.snowflake.refresh_after_days is not None:
        # The state table it reads is kept by the load step: without loading there is
        # no state, so every night queries every ID (docs/configuration.md documents it). Not
        # an error, so `load.enabled=false` alone turns loading off (the first deploy does).
        snowflake = config.snowflake.model_copy(
            update={"incremental": IncrementalConfig(refresh_after_days=None)}
        )
        config = config.model_copy(update={"snowflake": snowflake})
    return config


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
                "fix: see the configuration table in docs/configuration.md"
            )
        _merge(merged, base, CONTEXT_KEY, errors)
    prefix = CONTEXT_KEY + "."
    for key in sorted(k for k in context if k.startswith(prefix)):
        _set_dotted(merged, key[len(prefix) :], _parse_cli_value(context[key]), errors)
    if errors:
        raise ConfigError(format_errors(errors))
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
                errors.append(_not_an_object(full, value, target[key]))
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
            elif isinstance(node[part], dict):
                errors.append(_not_an_object(full, value, node[part]))
            else:
                node[part] = value
        else:
            node = node[part]


def _not_an_object(full: str, value: Any, section: dict[str, Any]) -> str:
    return (
        f"{full}={value!r} must be an object with keys {sorted(section)}; "
        "fix: see the configuration table in docs/configuration.md"
    )


def _unknown_key(full: str, value: Any, siblings: dict[str, Any]) -> str:
    known = sorted(siblings)
    return (
        f"{full}={value!r} is not a known configuration key; "
        f"fix: remove it or use one of {known} (check the spelling)"
    )


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
