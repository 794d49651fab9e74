"""Secrets Manager access through Powertools Parameters (cached between invocations).

Secret values are returned to the caller and never logged here; callers must not log them.
Parameters is imported on the first read, not with this module: InvokeEnrich without an API
key never reads a secret, and the import costs ~0.1-0.2 s of its cold start.
"""

from __future__ import annotations

import logging
from typing import Any

from enrich_shared.errors import ConfigurationError

#: Seconds a secret is cached in a warm function before it is read again.
SECRET_CACHE_SECONDS = 300
#: Libraries that log HTTP request/response bodies at DEBUG; a secret's value is one of them.
SECRET_BEARING_LOGGERS = ("botocore", "boto3", "urllib3")


def guard_secret_bearing_loggers() -> None:
    """Keep botocore/boto3/urllib3 at INFO or above, whatever the root logger's level.

    botocore logs GetSecretValue's response body at DEBUG, and Lambda's log level control
    (or a debugging session) can put the root logger at DEBUG. Measured: with the root
    logger at DEBUG the Snowflake password appeared in the log; with this guard it does not.
    """
    for name in SECRET_BEARING_LOGGERS:
        library_logger = logging.getLogger(name)
        # Its own level, not the effective one: NOTSET would follow the root down to DEBUG.
        if library_logger.level < logging.INFO:
            library_logger.setLevel(logging.INFO)


guard_secret_bearing_loggers()


def get_secret_json(name: str) -> dict[str, Any]:
    """Return the secret `name` parsed as a JSON object."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(name, transform="json", max_age=SECRET_CACHE_SECONDS)
    except parameters.exceptions.TransformParameterError:
        raise ConfigurationError(f"secret {name!r} is not a JSON object") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {name!r} is not a JSON object")
    return value


def get_secret_string(name: str) -> str:
    """Return the secret `name` as a plain string."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, max_age=SECRET_CACHE_SECONDS)
    if isinstance(value, bytes):
        value = value.decode()
    return str(value)
