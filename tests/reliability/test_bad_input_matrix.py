"""Bad-input matrix: hostile source values, empty and all-invalid nights, bad manual-run
input and bad configuration. Each must end in a clear error or a counted rejection, never
a bare stack trace, and never a malformed request to the API (asserted on what the local
API received and on the batch URLs). Outcomes are recorded for README (see support.py).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from build_url.batches import stream_ids
from enrich_shared.storage import ids_key
from enrichctl.local_run.template import REPO_ROOT
from stacks.config.context import DEFAULTS, load_config, with_local_placeholders
from stacks.config.problems import ConfigError
from tests.config_keys import leaf_keys
from tests.log_counts import logged_counts
from tests.reliability.support import (
    api_requests_well_formed,
    batch_urls_well_formed,
    malformed_requests,
    record_outcome,
    status_text,
    valid_unique,
)

#: (label, value in the IMDB_VALUE column). Expected outcome follows the contract:
#: trimmed `tt` + 7-10 ASCII digits is kept, anything else is rejected and counted.
DIRTY: list[tuple[str, Any]] = [
    ("null", None),
    ("blank", ""),
    ("whitespace only", "   "),
    ("padded with spaces", "  tt0111161  "),
    ("padded with tab/newline", "\ttt0068646\n"),
    ("uppercase prefix", "TT0111162"),
    ("lowercase (canonical form)", "tt0111163"),
    ("fullwidth digits", "tt\uff10\uff11\uff11\uff11\uff11\uff16\uff14"),
    ("Arabic-Indic digits", "tt\u0660\u0661\u0661\u0661\u0661\u0666\u0665"),
    ("non-ASCII letter", "tt0111166\u00e9"),
    ("digits only", "0111167"),
    ("a number (inserted as int)", 111168),
    ("too few digits", "tt123"),
    ("too many digits", "tt01234567890"),
    ("10,000 characters", "tt" + "1" * 9998),
    ("a name ID", "nm0000001"),
    ("duplicate of a valid ID", "tt0111161"),
]

URL_SYNTAX: list[tuple[str, str]] = [
    ("& + second parameter", "tt0111170&ids=tt0111171"),
    ("=", "tt0111172=1"),
    ("#", "tt0111173#x"),
    ("%26 (encoded &)", "tt0111174%26ids%3Dtt0111175"),
    ("inner space", "tt01 11176"),
    ("space + another ID", "tt0111177 tt0111178"),
    ("embedded newline", "tt0111179\nids=tt0111180"),
    ("CRLF + header", "tt0111181\r\nX-Injected: 1"),
    ("trailing newline", "tt0111182\n"),
    ("control character", "tt0111183\x00"),
]


def shown(value: Any) -> str:
    """A short printable rendering of a value for the README table."""
    text = ascii(value)
    return text if len(text) <= 34 else text[:30] + "...'"


def run_values(make_pipeline, seed, values, run_id, lambda_log) -> dict[str, Any]:
    """One run over `values`; returns the per-value rows and checks the API saw only IDs."""
    seed(values)
    pipeline, api = make_pipeline()
    report = pipeline.run({"run_id": run_id})
    assert report.status == "SUCCEEDED", (report.error, report.cause)

    expected = valid_unique(values)
    kept = list(stream_ids(pipeline.bucket, ids_key(run_id), boto3.client("s3")))
    assert kept == expected
    sent = [i for r in api.requests for i in r.ids]
    assert sorted(sent) == sorted(expected)  # each valid ID once, nothing else
    api_requests_well_formed(api)
    batch_urls_well_formed(pipeline, run_id)
    invalid = sum(1 for v in values if not (isinstance(v, str) and v.strip() in expected))
    assert report.invalid_ids == invalid
    # Hostile values cannot forge log lines: every line is one JSON document, none huge.
    lines = lambda_log.read_text().splitlines()
    assert lines and all(json.loads(line) is not None for line in lines)
    assert max(len(line) for line in lines) < 5000
    seen: set[str] = set()
    rows = []
    for label, value in values_with_labels(values):
        clean = value.strip() if isinstance(value, str) else None
        if clean in expected and clean not in seen:
            seen.add(clean)
            outcome = f"kept as {clean}, sent once"
        elif clean in expected:
            outcome = "counted as duplicate, not sent again"
        else:
            outcome = "rejected, counted in invalid_ids, not sent"
        rows.append({"input": f"{label}: {shown(value)}", "outcome": outcome})
    return {
        "rows": rows,
        "status": status_text(report),
        "invalid_ids": report.invalid_ids,
        "duplicate_ids": report.duplicate_ids,
        "api_requests": api.request_count,
        "malformed_api_requests": len(malformed_requests(api)),
    }


_LABELS: dict[int, str] = {}


def values_with_labels(values: list[Any]) -> list[tuple[str, Any]]:
    return [(_LABELS.get(i, "valid control"), v) for i, v in enumerate(values)]


def labelled(cases: list[tuple[str, Any]], controls: int) -> list[Any]:
    _LABELS.clear()
    values = [f"tt{9_000_000 + i:07d}" for i in range(controls)]
    for label, value in cases:
        _LABELS[len(values)] = label
        values.append(value)
    return values


@pytest.mark.parametrize(
    ("case_id", "cases", "run_id"),
    [("ids-dirty", DIRTY, "b-dirty"), ("ids-url-syntax", URL_SYNTAX, "b-url")],
    ids=["dirty", "url-syntax"],
)
def test_hostile_ids_are_trimmed_or_rejected_counted_and_never_reach_the_api_malformed(
    make_pipeline, seed, lambda_log, update_outcomes, case_id, cases, run_id
):
    values = labelled(cases, controls=3)
    observed = run_values(make_pipeline, seed, values, run_id, lambda_log)
    observed["rows"] = [r for r in observed["rows"] if not r["input"].startswith("valid")]
    record_outcome(case_id, observed, update_outcomes)


def test_a_numeric_id_column_is_rejected_and_counted(make_pipeline, seed, update_outcomes):
    seed([f"tt{9_100_000 + i:07d}" for i in range(5)])
    pipeline, api = make_pipeline(
        env={
            "SNOWFLAKE_QUERY": "SELECT ORG_ID, CREATIVEWORKID, 1234567 AS IMDB_VALUE "
            "FROM EIDR.PUBLIC.ORGS_IMDB_FILTERED"
        }
    )
    report = pipeline.run({"run_id": "b-numeric"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert (report.ids, report.invalid_ids, api.request_count) == (0, 5, 0)
    record_outcome(
        "ids-numeric-column",
        {
            "rows": [
                {
                    "input": "5 rows, IMDB_VALUE = 1234567 (NUMBER)",
                    "outcome": f"rejected: {report.invalid_ids} counted in invalid_ids, "
                    f"{report.ids} kept",
                }
            ],
            "status": status_text(report),
            "invalid_ids": report.invalid_ids,
            "api_requests": api.request_count,
            "malformed_api_requests": len(malformed_requests(api)),
        },
        update_outcomes,
    )


@pytest.mark.parametrize(
    ("case_id", "values"),
    [
        ("result-empty", []),
        ("result-only-invalid", [None, "", "TT0000001", "tt1", "nm0000002", "tt0000003&x"]),
    ],
)
def test_empty_and_only_invalid_results_succeed_quietly_with_counts(
    make_pipeline, seed, lambda_log, case_id, values, update_outcomes
):
    seed(values)
    pipeline, api = make_pipeline()
    report = pipeline.run({"run_id": f"b-{case_id}"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert (report.ids, report.invalid_ids, api.request_count) == (0, len(values), 0)
    assert report.http_requests == 0
    # The count the dashboard's Logs Insights widget sums (a log field, no custom metric).
    invalid_logged = logged_counts(lambda_log.read_text())["invalid_ids"]
    assert invalid_logged == len(values)
    requests = f"{api.request_count} requests" if api.request_count else "no request"
    record_outcome(
        case_id,
        {
            "rows": [
                {
                    "input": f"{len(values)} rows" + (" (all invalid)" if values else ""),
                    "outcome": f"{report.status} at {last_state(report)}, {requests}; "
                    f"invalid_ids logged {invalid_logged}",
                }
            ],
            "status": status_text(report),
            "invalid_ids": report.invalid_ids,
            "api_requests": api.request_count,
            "malformed_api_requests": len(malformed_requests(api)),
        },
        update_outcomes,
    )


def last_state(report: Any) -> str:
    """The name of the last state the execution entered (from its history)."""
    entered = [e for e in report.history if e["type"].endswith("StateEntered")]
    return entered[-1]["stateEnteredEventDetails"]["name"] if entered else "?"


MANUAL_INPUTS: list[tuple[str, dict[str, Any], str | None]] = [
    # (label, execution input beyond run_id/trigger, field the error must name or None);
    # a None value removes that key from the input.
    ("limit -1", {"limit": -1}, "limit"),
    ("limit 0", {"limit": 0}, "limit"),
    ("limit 10^12", {"limit": 10**12}, "limit"),
    ("limit '100' (string)", {"limit": "100"}, "limit"),
    ("limit 'abc'", {"limit": "abc"}, "limit"),
    ("limit 1.5", {"limit": 1.5}, "limit"),
    ("limit true", {"limit": True}, "limit"),
    ("limit '5; DROP TABLE x'", {"limit": "5; DROP TABLE x"}, "limit"),
    ("unknown field", {"limti": 10}, "limti"),
    ("dry_run 'yes'", {"dry_run": "yes"}, "dry_run"),
    ("trigger 'cron'", {"trigger": "cron"}, "trigger"),
    ("run_id '../../etc'", {"run_id": "../../etc"}, "run_id"),
    ("retry_of_run_id 5 (number)", {"retry_of_run_id": 5}, "retry_of_run_id"),
    # The schedule's shape (no run_id: it is derived from scheduled_time).
    (
        "scheduled_time keyword not replaced",
        {"run_id": None, "trigger": "schedule", "scheduled_time": "<aws.scheduler.scheduled-time>"},
        "scheduled_time",
    ),
    (
        "scheduled_time without a zone",
        {"run_id": None, "trigger": "schedule", "scheduled_time": "2026-11-25T02:00:00"},
        "scheduled_time",
    ),
    ("limit 10 (valid control)", {"limit": 10}, None),
]


def test_manual_run_input_is_validated_before_any_query(make_pipeline, seed, update_outcomes):
    seed([f"tt{9_200_000 + i:07d}" for i in range(30)])
    pipeline, api = make_pipeline()
    rows = []
    for n, (label, extra, field) in enumerate(MANUAL_INPUTS):
        run_input = {"run_id": f"b-manual-{n}", "trigger": "manual", **extra}
        run_input = {k: v for k, v in run_input.items() if v is not None}
        report = pipeline.run(run_input, name=f"b-manual-{n}")
        if field is None:
            assert report.status == "SUCCEEDED" and report.ids == 10, (label, report.cause)
            outcome = f"{report.status}: {report.ids} rows queried (LIMIT bound as a parameter)"
        else:
            assert report.status == "FAILED", label
            assert report.error == "InvalidInputError", (label, report.error, report.cause)
            assert field in (report.cause or ""), (label, report.cause)
            assert "Traceback" not in (report.cause or "")
            outcome = f"FAILED InvalidInputError: {_first_sentence(report.cause)}"
        rows.append({"input": label, "outcome": outcome})
    assert api.request_count == 1  # only the valid control asked the API anything
    api_requests_well_formed(api)
    record_outcome(
        "manual-input",
        {
            "rows": rows,
            "api_requests": api.request_count,
            "malformed_api_requests": len(malformed_requests(api)),
        },
        update_outcomes,
    )


def _first_sentence(cause: str | None) -> str:
    text = json.loads(cause)["errorMessage"] if cause and cause.startswith("{") else cause
    text = text or ""
    return text if len(text) <= 110 else text[:107] + "..."


# --------------------------------------------------------------------------- configuration
#: key -> (wrong value, wrong type). Every key of DEFAULTS (stacks/config/context.py) must be here.
WRONG_CONFIG: dict[str, tuple[Any, Any]] = {
    "schedule.cron": ("cron(0 2 * *)", 5),
    "schedule.timezone": ("Mars/Olympus_Mons", 1),
    "schedule.enabled": ("yes", 1),
    "snowflake.secretName": ("bad name!", 7),
    "snowflake.query": ("   ", 7),
    "snowflake.idColumn": ("IMDB VALUE", 7),
    "snowflake.fetchBatchSize": (0, "10000"),
    "snowflake.timeoutSeconds": (901, "900"),
    "snowflake.retry.intervalSeconds": (0, "30"),
    "snowflake.retry.backoffRate": (0.5, "2"),
    "snowflake.retry.maxAttempts": (11, 3.5),
    "snowflake.retry.maxDelaySeconds": (1, "300"),
    "snowflake.incremental.refreshAfterDays": (0, "7"),
    "enrichment.baseUrl": ("http://plain-http.example.com/x", 5),
    "enrichment.apiKeySecretName": ("bad name!", 5),
    "enrichment.apiKeyHeader": ("x api key", 5),
    "enrichment.maxIdsPerRequest": (0, "70"),
    "enrichment.maxUrlLength": (100, "8192"),
    "enrichment.maxConcurrency": (10001, "10"),
    "enrichment.timeoutSeconds": (181, "30"),
    "enrichment.retry.intervalSeconds": (0, "5"),
    "enrichment.retry.backoffRate": (11, "2"),
    "enrichment.retry.maxAttempts": (-1, "3"),
    "enrichment.retry.maxDelaySeconds": (0, "60"),
    "load.enabled": ("yes", 1),
    "load.source": ("https://bucket/prefix/", 5),
    "load.stage": ("ENRICH STAGE", 5),
    "load.landingTable": ("a.b.c.d", 5),
    "load.resultsTable": ("1RESULTS", 5),
    "load.stateTable": ("STATE-TABLE", 5),
    "load.recordsPath": ("records[0]", 5),
    "load.idField": ("imdb.id", 5),
    "load.snowflakeIamUserArn": ("arn:aws:iam::123:user/x", 5),
    "load.externalId": ("has space", 5),
    "load.roleName": ("x" * 65, 5),
    "load.timeoutSeconds": (901, "600"),
    "workflow.timeoutMinutes": (5, "360"),
    "alarms.emails": (["not-an-email"], "oncall@example.com"),
    "alarms.missedRunHours": (1, "26"),
    "alarms.slackWorkspaceId": ("lower-case", 5),
    "alarms.slackChannelId": ("C0123-!", 5),
    "retention.runDataDays": (0, "30"),
    "retention.logDays": (8, "30"),
    "logLevel": ("TRACE", 5),
}


def config_error(dotted: str, value: Any) -> str:
    """The ConfigError message for `pipeline.<dotted>` = value (fails on any other outcome).

    The value goes into the `pipeline` object (as in cdk.json): a `-c pipeline.x.y=...`
    override would parse "10000" as the number 10000.
    """
    pipeline = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["pipeline"]
    node = pipeline
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    try:
        load_config(with_local_placeholders({"pipeline": pipeline}))
    except ConfigError as exc:
        return str(exc)
    raise AssertionError(f"pipeline.{dotted}={value!r} was accepted")


def names(message: str, part: str, key: str, value: Any) -> bool:
    """Whether a ConfigError message names the key, the wrong value, or a fix."""
    if part == "key":
        return f"pipeline.{key}" in message
    if part == "fix":
        return "fix:" in message
    candidates = [value, *value] if isinstance(value, list) else [value]
    return any(repr(v) in message or str(v) in message for v in candidates)


def spoken(parts: list[str]) -> str:
    """["key", "value", "fix"] -> 'the key, the value and the fix'."""
    words = [f"the {part}" for part in parts]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def test_every_configuration_key_refuses_a_wrong_type_and_a_wrong_value(update_outcomes):
    keys = leaf_keys(DEFAULTS)
    assert sorted(keys) == sorted(WRONG_CONFIG), "add the new key's wrong values to WRONG_CONFIG"
    rows = []
    for key in keys:
        wrong_value, wrong_type = WRONG_CONFIG[key]
        named_in_both = None
        for value in (wrong_value, wrong_type):
            message = config_error(key, value)
            assert f"pipeline.{key}" in message, (key, value, message)
            assert "fix:" in message and "Traceback" not in message, message
            named = [part for part in ("key", "value", "fix") if names(message, part, key, value)]
            named_in_both = (
                named
                if named_in_both is None
                else [part for part in named_in_both if part in named]
            )
        rows.append(
            {
                "input": f"{key} = {shown(wrong_value)} / {shown(wrong_type)}",
                "outcome": f"ConfigError naming {spoken(named_in_both or [])} (both)",
            }
        )
    for key, value, named in (
        ("enrichment.maxIdz", 70, "pipeline.enrichment.maxIdz"),
        ("snowflake", 5, "pipeline.snowflake"),
    ):
        message = config_error(key, value)
        assert named in message and "fix:" in message, message
        rows.append({"input": f"{key} = {value!r}", "outcome": "ConfigError naming it + fix"})
    record_outcome("config-keys", {"rows": rows}, update_outcomes)
