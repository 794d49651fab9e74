"""The options of `enrichctl local` and their checks (the one copy: the CLI's argparse only
parses types, and `LocalRunOptions.validate()` says what is wrong and the fix)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from enrichctl.local_run.moto_hooks import RETRY_WAIT_MODES
from enrichctl.local_run.report import default_run_id, run_id_in

DEFAULT_OUTPUT_DIR = Path("enrich-output")
#: `enrichctl local --nights N`: at most a month of nights against one embedded Snowflake.
MAX_NIGHTS = 30


class LocalRunError(Exception):
    """`enrichctl local` cannot run as asked (bad option, missing service, bad template)."""


@dataclass
class LocalRunOptions:
    """The flags of `enrichctl local` (see its --help)."""

    rows: int | None = None
    max_concurrency: int | None = None
    api_latency_ms: int = 0
    api_fail_rate: float = 0.0
    api_fail_status: int = 503
    retry_waits: str = "skip"
    output_dir: Path = DEFAULT_OUTPUT_DIR
    snowflake_secret_file: Path | None = None
    api_url: str | None = None
    run_id: str | None = None
    timeout_s: float = 600.0
    #: Start with the schedule's input for this time instead of a manual run's.
    scheduled_time: str | None = None
    #: Consecutive nights (executions) against the same Snowflake, bucket and API.
    nights: int = 1
    #: The first night ignores the state table (the manual input `{"full": true}`).
    full: bool = False
    #: `snowflake.incremental.refreshAfterDays` for this run (None: as in cdk.json).
    refresh_after_days: int | None = None

    def validate(self) -> None:
        """Raise `LocalRunError` with the fix for the first bad value."""
        if self.rows is not None and self.rows < 0:
            raise LocalRunError(f"--rows {self.rows}: use 0 or more rows")
        if self.max_concurrency is not None and not 1 <= self.max_concurrency <= 10_000:
            raise LocalRunError(f"--max-concurrency {self.max_concurrency}: use 1 to 10000")
        if self.api_latency_ms < 0:
            raise LocalRunError(f"--api-latency-ms {self.api_latency_ms}: use 0 or more")
        if not 0.0 <= self.api_fail_rate <= 1.0:
            raise LocalRunError(f"--api-fail-rate {self.api_fail_rate}: use a share from 0 to 1")
        if not 400 <= self.api_fail_status <= 599:
            raise LocalRunError(
                f"--api-fail-status {self.api_fail_status}: use an HTTP error status (400-599)"
            )
        if not 1 <= self.nights <= MAX_NIGHTS:
            raise LocalRunError(f"--nights {self.nights}: use 1 to {MAX_NIGHTS} consecutive nights")
        if self.refresh_after_days is not None and not 1 <= self.refresh_after_days <= 3650:
            raise LocalRunError(
                f"--refresh-after-days {self.refresh_after_days}: use 1 to 3650 days"
            )
        if self.retry_waits not in RETRY_WAIT_MODES:
            raise LocalRunError(f"--retry-waits {self.retry_waits}: use 'real' or 'skip'")
        if self.api_url is not None and not re.match(r"^https?://[^/\s]+", self.api_url):
            raise LocalRunError(f"--api-url {self.api_url!r}: use an http(s):// URL")
        if self.snowflake_secret_file is not None:
            read_secret_file(self.snowflake_secret_file)
        if self.scheduled_time is not None:
            run_id = run_id_in({"scheduled_time": self.scheduled_time}, "")
            if not run_id:
                raise LocalRunError(
                    f"--scheduled-time {self.scheduled_time!r}: use an ISO 8601 time with a "
                    "zone, e.g. 2026-11-25T02:00:00Z"
                )

    def run_input(self, night: int = 1) -> dict[str, Any]:
        """The execution input of night `night` (1-based): the schedule's shape with
        --scheduled-time (one day later each night), else a manual run with its own ID.
        --full adds `"full": true` to the first night only."""
        run_input: dict[str, Any]
        if self.scheduled_time is not None:
            # What EventBridge Scheduler sends (stacks/schedule.py): the pipeline derives the ID.
            when = self.scheduled_time
            if night > 1:
                start = datetime.fromisoformat(self.scheduled_time.replace("Z", "+00:00"))
                when = (start + timedelta(days=night - 1)).isoformat()
            run_input = {"trigger": "schedule", "scheduled_time": when}
        else:
            run_id = self.run_id or default_run_id()
            if self.run_id and night > 1:
                run_id = f"{self.run_id}-night{night}"
            run_input = {"run_id": run_id, "trigger": "manual"}
        if self.full and night == 1:
            run_input["full"] = True
        return run_input

    def context_overrides(self) -> dict[str, Any]:
        """CDK context that shapes the synthesized template (only what the flags change)."""
        overrides: dict[str, Any] = {}
        if self.max_concurrency is not None:
            overrides["pipeline.enrichment.maxConcurrency"] = self.max_concurrency
        if self.refresh_after_days is not None:
            overrides["pipeline.snowflake.incremental.refreshAfterDays"] = self.refresh_after_days
        return overrides


def read_secret_file(path: Path) -> dict[str, Any]:
    """Read a Snowflake secret JSON file (same fields as the deployed secret)."""
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LocalRunError(f"--snowflake-secret-file {path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise LocalRunError(f"--snowflake-secret-file {path}: not JSON ({exc.msg})") from None
    missing = (
        [k for k in ("account", "user") if not value.get(k)] if isinstance(value, dict) else []
    )
    if not isinstance(value, dict) or missing:
        raise LocalRunError(
            f"--snowflake-secret-file {path}: needs a JSON object with account, user and "
            "private_key or password"
        )
    return value
