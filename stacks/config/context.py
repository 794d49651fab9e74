"""Reading the `pipeline` object from CDK context, over the models' defaults, and validating it.

`cdk.json` holds the `pipeline` object; `cdk -c pipeline='{...json...}'` replaces it and
`cdk -c pipeline.schedule.cron='cron(0 3 * * ? *)'` overrides one key.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

from pydantic import ValidationError

from stacks.config.limits import (
    CONTEXT_KEY,
    LOCAL_PLACEHOLDER_EXTERNAL_ID,
    LOCAL_PLACEHOLDER_IAM_USER_ARN,
)
from stacks.config.models import EnrichmentConfig, IncrementalConfig, LoadConfig, PipelineConfig
from stacks.config.problems import ConfigError, config_error

#: Every key the `pipeline` object accepts, with its default, as cdk.json writes them. The
#: two sections without a default (their keys have one each) are built unvalidated to read them.
DEFAULTS: dict[str, Any] = PipelineConfig.model_construct(
    enrichment=EnrichmentConfig.model_construct(), load=LoadConfig.model_construct()
).model_dump(mode="json")


def load_config(context: dict[str, Any], today: date | None = None) -> PipelineConfig:
    """Read and validate the `pipeline` configuration from CDK context.

    `today` anchors the daylight-saving check (tests pin it); it defaults to today's UTC date.
    Raises `ConfigError` naming every bad key, its value and the fix.
    """
    raw = raw_from_context(context)
    try:
        config = PipelineConfig.model_validate(raw, by_alias=True, context={"today": today})
    except ValidationError as exc:
        raise config_error(exc, PipelineConfig) from None
    if not config.load.enabled and config.snowflake.incremental.refresh_after_days is not None:
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

    Keys are applied over `DEFAULTS`; a JSON string (as `cdk -c` passes it) is parsed. Unknown
    keys are kept: validation names them with the keys known there.
    """
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
        _merge(merged, base)
    prefix = CONTEXT_KEY + "."
    for key in sorted(k for k in context if k.startswith(prefix)):
        *parents, last = key[len(prefix) :].split(".")
        override = {last: _parse_cli_value(context[key])}
        for part in reversed(parents):
            override = {part: override}
        _merge(merged, override)
    return merged


def _parse_cli_value(value: Any) -> Any:
    # `cdk -c a.b=5` passes the string "5"; accept JSON scalars/lists, else keep the string.
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return value


def _merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    """Deep-merge `source` into `target`: objects key by key, any other value replaces."""
    for key, value in source.items():
        if isinstance(target.get(key), dict) and isinstance(value, dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)  # a later override must not change the caller's


def with_local_placeholders(context: dict[str, Any]) -> dict[str, Any]:
    """`context` plus local-only stand-ins for the two DESC INTEGRATION values, when unset.

    For in-process synth (tests, the local runner): those never deploy, and Snowflake's
    side of the integration does not exist locally. app.py (`cdk deploy`) does not call it.
    """
    try:
        load = raw_from_context(context)["load"]
    except ConfigError:
        return context  # load_config reports it
    if not isinstance(load, dict) or load.get("enabled") is not True:
        return context  # off, or not an object (load_config reports it)
    out = dict(context)
    for key, value in (
        ("snowflakeIamUserArn", LOCAL_PLACEHOLDER_IAM_USER_ARN),
        ("externalId", LOCAL_PLACEHOLDER_EXTERNAL_ID),
    ):
        if load.get(key) in (None, ""):
            out[f"{CONTEXT_KEY}.load.{key}"] = value
    return out
