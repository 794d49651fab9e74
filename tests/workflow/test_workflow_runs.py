"""The synthesized state machine, run under moto with the real handlers, the embedded
Snowflake and the local enrichment API (see conftest.py). One behaviour per test.

Faults (503 bursts, a failing batch, Snowflake down, a duplicate start) and empty nights
are run once, by the reliability matrices (tests/reliability/), not again here.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import pytest

from enrichctl.local_run.report import SUMMARY_KEYS
from tests.reliability.support import failed_batches_metric, valid_unique


def source_values(n: int = 200) -> list[str | None]:
    """n valid IDs plus the dirt real EIDR rows carry: blanks, NULLs, junk, duplicates."""
    values: list[str | None] = [f"tt{1_000_000 + i:07d}" for i in range(n)]
    values[5] = f"  {values[5]}  "  # trimmed, still valid
    values += [None, "", "TT0111161", "tt123", "nm0000001", "tt0000001&ids=x", values[0], values[7]]
    return values


def enrich_waits(report, error: str):
    return [w for w in report.retry_waits if w.state == "InvokeEnrich" and w.error == error]


def test_happy_path_every_valid_id_reaches_the_api_once_in_bounded_batches(
    make_pipeline, seed, pipeline_config
):
    values = source_values(200)
    seed(values)
    pipeline, api = make_pipeline()

    report = pipeline.run({"run_id": "happy-1"})

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    expected = valid_unique(values)
    sent = Counter(i for r in api.requests for i in r.ids)
    assert sent == Counter(expected)  # every valid ID exactly once, nothing else
    assert all(r.status == 200 for r in api.requests)
    limits = pipeline_config.enrichment
    batches = pipeline.read_json("runs/happy-1/batches.json")
    assert len(batches) == len(api.requests) == report.batches
    for batch in batches:
        assert 1 <= len(batch["ids"]) <= limits.max_ids_per_request
        assert len(batch["url"]) <= limits.max_url_length
        assert urlsplit(batch["url"]).netloc == urlsplit(api.base_url).netloc
    assert report.ids == len(expected)
    assert report.invalid_ids == 6  # None, "", "TT0111161", "tt123", "nm0000001", "tt..&ids=x"
    assert report.duplicate_ids == 2
    assert report.failed_batches == 0
    assert report.http_requests == len(api.requests)
    summary = report.summary()
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["status"] == "SUCCEEDED"


def test_400_is_rejected_without_retry(make_pipeline, seed):
    values = [f"tt{4_000_000 + i:07d}" for i in range(100)]
    seed(values)
    pipeline, api = make_pipeline(rules={values[0]: 400})

    report = pipeline.run({"run_id": "rejected-1"})

    assert report.status == "FAILED"
    assert report.error == "BatchesFailed"
    rejected = [r for r in api.requests if values[0] in r.ids]
    assert len(rejected) == 1  # asked once, never again
    (record,) = pipeline.failed_records("rejected-1").values()
    assert record["error"]["Error"] == "RejectedEnrichError"
    assert values[0] in record["ids"]
    assert enrich_waits(report, "RejectedEnrichError") == []
    assert [w for w in report.retry_waits if w.state == "InvokeEnrich"] == []


def test_the_definition_that_runs_is_the_synthesized_one_with_only_the_child_rewrite(
    pipeline_template,
):
    from enrichctl.local_run.definition import find_state_machine, local_definition

    local = local_definition(pipeline_template)
    raw = pipeline_template["Resources"][find_state_machine(pipeline_template)]["Properties"][
        "DefinitionString"
    ]
    literal_parts = [p for p in raw["Fn::Join"][1] if isinstance(p, str)]
    text = local.definition.replace(
        '"ExecutionType":"STANDARD"', '"ExecutionType":"EXPRESS"'
    )  # undo the one rewrite (the stack deploys EXPRESS children)
    position = 0
    for part in literal_parts:  # every synthesized character, in order; tokens in between
        found = text.find(part, position)
        assert found >= 0, f"synthesized text missing locally: {part[:80]!r}"
        position = found + len(part)
    assert len(local.rewrites) == 1 and "EnrichBatches" in local.rewrites[0]


@pytest.mark.slow  # ~2 minutes: 1,103 map children under moto
def test_more_than_1000_failed_batches_are_counted_exactly(make_pipeline, seed):
    # ListObjectsV2's KeyCount stops at 1,000: the old ListFailedBatches said 1000 here.
    # One ID per request turns 1,103 rows into 1,103 batches; the API rejects them all.
    values = [f"tt{4_000_000 + i:07d}" for i in range(1_103)]
    seed(values)
    pipeline, api = make_pipeline(env={"MAX_IDS_PER_REQUEST": "1"}, rule=lambda request: 400)

    # 1,103 children take ~2 minutes alone but over 300 s (run()'s default) on a loaded machine.
    report = pipeline.run({"run_id": "many-failed"}, timeout_s=900)

    assert report.status == "FAILED" and report.error == "BatchesFailed", report.cause
    assert report.batches == report.failed_batches == len(api.requests) == 1_103
    assert (report.cause or "").startswith("1103 batch(es) failed after all retries")
    assert sum(failed_batches_metric()) == 1_103
