"""The cases of the fault and bad-input matrices, in the order docs/reliability.md shows them.

Each case has a test that runs it and records what it observed in `outcomes/<id>.json`;
`readme.py` renders these titles plus the recorded outcomes into docs/reliability.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One row of a matrix: what goes wrong and how it is made to go wrong here."""

    id: str
    title: str
    injection: str


FAULTS: tuple[Case, ...] = (
    Case(
        "api-503-burst",
        "API 503 bursts",
        "local API: two batches get three 503s in a row each, then 200",
    ),
    Case(
        "api-429-retry-after",
        "429 with Retry-After",
        "local API: one batch gets 429 + `Retry-After: 120` twice",
    ),
    Case(
        "api-slow",
        "Responses slower than the read timeout",
        "local API sleeps 2 s on one batch twice; HTTP_READ_TIMEOUT_S=0.5",
    ),
    Case(
        "api-reset",
        "Connection reset mid-response",
        "local API sends headers + half the body, then RST, twice for one batch",
    ),
    Case(
        "api-one-batch-permanent",
        "One batch failing permanently, the rest succeed",
        "local API answers 500 to every request for one batch",
    ),
    Case(
        "api-down",
        "API down for the whole run",
        "ENRICH_BASE_URL points at a closed 127.0.0.1 port",
    ),
    Case(
        "snowflake-down-login",
        "Snowflake down at login",
        "Snowflake secret points at a closed port; login timeout 1 s",
    ),
    Case(
        "snowflake-mid-stream-once",
        "Snowflake failing mid-stream (once)",
        "first query's cursor dies after 50 rows (connector OperationalError; mocked)",
    ),
    Case(
        "snowflake-mid-stream-always",
        "Snowflake failing mid-stream (every attempt)",
        "every query's cursor dies after 50 rows (connector OperationalError; mocked)",
    ),
    Case(
        "snowflake-down-load",
        "Snowflake down at LoadResults (after the map)",
        "Snowflake secret switched to a closed port once the map is done; login timeout 1 s",
    ),
    Case(
        "s3-batches-denied",
        "S3 write failure: batch list",
        "moto S3 refuses PutObject of runs/*/batches.json (AccessDenied)",
    ),
    Case(
        "s3-ids-denied",
        "S3 write failure: ID list",
        "moto S3 refuses PutObject of runs/*/ids.jsonl (AccessDenied)",
    ),
    Case(
        "s3-failure-record-denied",
        "S3 write failure: failure record",
        "one batch always 500 and moto S3 refuses PutObject of runs/*/failed/*",
    ),
    Case(
        "enrich-time-budget",
        "InvokeEnrich at its time budget",
        "Lambda timeout 3 s, read timeout 30 s, API sleeps 10 s on one batch",
    ),
    Case(
        "query-time-budget",
        "QueryIds exceeding its time budget",
        "Lambda timeout 1 s enforced; Snowflake accepts TCP but never answers (login 3 s)",
    ),
    Case(
        "execution-timeout",
        "Run exceeding the state machine timeout",
        "definition TimeoutSeconds set to 2 (local rewrite); API answers after 3 s",
    ),
    Case(
        "duplicate-start",
        "Duplicate start for the same scheduled time",
        "two executions started together with the scheduler's input for one time",
    ),
)

BAD_INPUTS: tuple[Case, ...] = (
    Case("ids-dirty", "IDs: null, blank, padded, case, non-ASCII, numbers, 10,000 chars", ""),
    Case("ids-url-syntax", "IDs carrying URL syntax (&, =, #, %26, spaces, newlines)", ""),
    Case("ids-numeric-column", "ID column of a numeric type", ""),
    Case("result-empty", "Empty result", ""),
    Case("result-only-invalid", "Result of only invalid IDs", ""),
    Case("manual-input", "Manual-run input", ""),
    Case("config-keys", "Each configuration key with a wrong type or value", ""),
)
