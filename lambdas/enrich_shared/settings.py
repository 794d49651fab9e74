"""Typed reading of a function's environment variables, with errors that name the fix."""

import os

from enrich_shared.errors import ConfigurationError


def env_str(name: str, default: str | None = None) -> str:
    """Return environment variable `name`, or `default`; raise if neither is set."""
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigurationError(
            f"environment variable {name} is not set; the stack sets it, so redeploy "
            "or export it for a local run"
        )
    return value


def env_optional(name: str) -> str | None:
    """Return environment variable `name`, or None when unset or empty."""
    return os.environ.get(name) or None


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """Return environment variable `name` as an int >= `minimum` (default when unset)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"environment variable {name}={raw!r} is not a whole number"
        ) from None
    if value < minimum:
        raise ConfigurationError(f"environment variable {name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    """Return environment variable `name` as a float > `minimum` (default when unset)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a number") from None
    if value <= minimum:
        raise ConfigurationError(f"environment variable {name}={value} must be above {minimum}")
    return value
