"""Secrets Manager access through Powertools Parameters (cached between invocations).

Secret values are returned to the caller and never logged here; callers must not log them.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters

from enrich_shared.errors import ConfigurationError

#: Seconds a secret is cached in a warm function before it is read again.
SECRET_CACHE_SECONDS = 300


def get_secret_json(name: str) -> dict[str, Any]:
    """Return the secret `name` parsed as a JSON object."""
    try:
        value = parameters.get_secret(name, transform="json", max_age=SECRET_CACHE_SECONDS)
    except parameters.exceptions.TransformParameterError:
        raise ConfigurationError(f"secret {name!r} is not a JSON object") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {name!r} is not a JSON object")
    return value


def get_secret_string(name: str) -> str:
    """Return the secret `name` as a plain string."""
    value = parameters.get_secret(name, max_age=SECRET_CACHE_SECONDS)
    if isinstance(value, bytes):
        value = value.decode()
    return str(value)
