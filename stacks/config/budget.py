"""Retry policies and the time budget of one batch's Express child (at most 300 s)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from pydantic import model_validator

from stacks.config.limits import RECORD_FAILED_TIMEOUT_S
from stacks.config.problems import Problem, Section, number, whole


class RetryConfig(Section):
    """Exponential backoff with full jitter for one family of retryable errors."""

    interval_seconds: whole(1, 3600)
    """Wait before the first retry (s)"""
    backoff_rate: number(1.0, 10.0)
    """Each wait is the last one times this"""
    max_attempts: whole(0, 10)
    """Retries after the first attempt"""
    max_delay_seconds: whole(1, 3600)
    """Longest single wait (s)"""

    @model_validator(mode="after")
    def _delay_covers_interval(self) -> Self:
        if self.max_delay_seconds < self.interval_seconds:
            raise Problem(
                f"is below {{here}}.intervalSeconds ({self.interval_seconds})",
                "make maxDelaySeconds at least intervalSeconds",
                key="maxDelaySeconds",
                value=self.max_delay_seconds,
            )
        return self

    def waits(self) -> list[float]:
        """The un-jittered waits before each retry (what full jitter draws below)."""
        return [
            min(self.interval_seconds * self.backoff_rate**n, self.max_delay_seconds)
            for n in range(self.max_attempts)
        ]


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
