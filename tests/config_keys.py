"""The dotted keys of a `pipeline` object (shared by the config tests and the bad-input matrix)."""

from __future__ import annotations

from typing import Any


def leaf_keys(node: dict[str, Any], prefix: str = "") -> list[str]:
    """Every leaf of `node` as a dotted key (`schedule.cron`, `snowflake.retry.maxAttempts`)."""
    keys = []
    for key, value in node.items():
        if isinstance(value, dict):
            keys += leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys
