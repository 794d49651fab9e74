"""What every reliability test checks and records.

- `ledger()`: the run's own account of its IDs (enriched by a successful InvokeEnrich, or
  listed in `runs/<run_id>/failed/`) checked against the valid IDs of the source, with the
  invariant "every valid ID is enriched or listed, none twice in the same run".
- `failed_batches_metric()`: what PublishFailedBatches put into (moto's) CloudWatch.
- `record_outcome()`: the observed row of a matrix case, compared with the committed
  `outcomes/<case>.json` (or rewritten with RELIABILITY_UPDATE=1). docs/reliability.md
  is rendered from those files (`readme.py`), so the table is what the tests saw.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

OUTCOMES_DIR = Path(__file__).resolve().parent / "outcomes"
IMDB_ID = re.compile(r"tt[0-9]{7,10}")
#: Alarm names (stacks/monitoring.py) paged for each final status.
STATUS_ALARM = {
    "SUCCEEDED": "none (ExecutionsSucceeded keeps MissedRun quiet)",
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}


def valid_unique(values: list[Any]) -> list[str]:
    """What QueryIds must keep: trimmed IMDB title IDs, first occurrence only."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and IMDB_ID.fullmatch(value.strip()):
            seen.setdefault(value.strip(), None)
    return list(seen)


@dataclass
class Ledger:
    """Where each valid ID of one run ended up."""

    enriched: Counter
    failed: Counter
    valid: list[str]

    @property
    def duplicates(self) -> list[str]:
        """IDs counted twice in the run: enriched twice, listed twice, or both."""
        both = set(self.enriched) & set(self.failed)
        twice = {i for i, n in (self.enriched + self.failed).items() if n > 1}
        return sorted(both | twice)

    @property
    def missing(self) -> list[str]:
        """Valid IDs neither enriched nor listed as failed."""
        return [i for i in self.valid if i not in self.enriched and i not in self.failed]

    @property
    def strangers(self) -> list[str]:
        """IDs enriched or listed that are not valid source IDs (must never happen)."""
        known = set(self.valid)
        return sorted(i for i in set(self.enriched) | set(self.failed) if i not in known)

    def summary(self) -> str:
        """One line for the README table."""
        return (
            f"{len(self.valid)} valid: {sum(self.enriched.values())} enriched, "
            f"{sum(self.failed.values())} listed in failed/, {len(self.missing)} in neither, "
            f"{len(self.duplicates)} twice"
        )


def ledger(pipeline: Any, report: Any, valid: list[str]) -> Ledger:
    """The run's account of its IDs, from its successful InvokeEnrich calls and failed/."""
    enrich = pipeline.functions["invoke_enrich"].name
    enriched: Counter = Counter()
    for call in report.invocations:
        event = call.event if isinstance(call.event, dict) else {}
        if (
            call.function == enrich
            and call.error_type is None
            and event.get("run_id") == (report.run_id)
        ):
            enriched.update(event.get("ids", []))
    failed: Counter = Counter()
    for record in pipeline.failed_records(report.run_id).values():
        failed.update(record.get("ids", []))
    return Ledger(enriched, failed, list(valid))


def assert_invariant(book: Ledger, *, whole_run_failed: bool = False) -> None:
    """Every valid ID enriched or listed in failed/, none twice, nothing else.

    `whole_run_failed`: the run failed before it built any batch (Snowflake down, S3
    refused the batch list...): then nothing may be enriched or listed, and the failed
    execution itself (status, error, cause) is the record; the whole run is repeated.
    """
    assert book.strangers == [], f"IDs that are not valid source IDs: {book.strangers[:5]}"
    assert book.duplicates == [], f"IDs counted twice in one run: {book.duplicates[:5]}"
    if whole_run_failed:
        assert not book.enriched and not book.failed, book.summary()
    else:
        assert book.missing == [], f"valid IDs neither enriched nor listed: {book.missing[:5]}"


def malformed_requests(api: Any, base_path: str = "/lamba-tmdb") -> list[Any]:
    """Requests the local API received that were not `<path>?ids=<IMDB ID>&...` only."""
    return [
        request
        for request in api.requests
        if request.path != base_path
        or not request.ids
        or not all(IMDB_ID.fullmatch(i) for i in request.ids)
        or request.status == 400
    ]


def api_requests_well_formed(api: Any, base_path: str = "/lamba-tmdb") -> None:
    """Every request the local API received was `<path>?ids=<IMDB ID>&...` and nothing else."""
    malformed = malformed_requests(api, base_path)
    assert malformed == [], malformed[:3]


def batch_urls_well_formed(pipeline: Any, run_id: str) -> int:
    """Every URL in the run's batches.json carries only `ids=<IMDB ID>` pairs; returns count."""
    batches = pipeline.read_json(f"runs/{run_id}/batches.json")
    for batch in batches:
        pairs = parse_qsl(urlsplit(batch["url"]).query, strict_parsing=True)
        assert pairs and all(k == "ids" and IMDB_ID.fullmatch(v) for k, v in pairs), batch
        assert [v for _, v in pairs] == batch["ids"]
    return len(batches)


def failed_batches_metric() -> list[float]:
    """Values PublishFailedBatches put into CloudWatch (ImdbEnrichment/FailedBatches)."""
    import boto3

    cloudwatch = boto3.client("cloudwatch")
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace="ImdbEnrichment",
        MetricName="FailedBatches",
        Dimensions=[{"Name": "service", "Value": "imdb-enrichment"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )
    return [p["Sum"] for p in stats["Datapoints"]]


def retries(report: Any) -> str:
    """State retries of the run as `State: n x Error` (sorted), or `none`."""
    counts = Counter((w.state or "?", w.error or "?") for w in report.retry_waits)
    if not counts:
        return "none"
    return ", ".join(f"{state}: {n} x {error}" for (state, error), n in sorted(counts.items()))


def alarms(report: Any, failed_metric: list[float]) -> str:
    """The alarms this run trips: the one for its final status, plus FailedBatches."""
    names = [STATUS_ALARM.get(report.status, report.status)]
    if sum(failed_metric) > 0:
        names.append(f"FailedBatches (metric {sum(failed_metric):g})")
    return "; ".join(names)


def status_text(report: Any) -> str:
    """`FAILED (BatchesFailed)` or `SUCCEEDED`."""
    return f"{report.status} ({report.error})" if report.error else report.status


# --------------------------------------------------------------------------- outcomes
def record_outcome(case_id: str, row: dict[str, Any], update: bool) -> None:
    """Compare the observed `row` with `outcomes/<case_id>.json` (or write it when updating)."""
    path = OUTCOMES_DIR / f"{case_id}.json"
    text = json.dumps(row, indent=2, ensure_ascii=True, sort_keys=True) + "\n"
    if update:
        path.write_text(text)
        return
    assert path.exists(), (
        f"no recorded outcome for {case_id}: run `make reliability-doc` to record it "
        "and regenerate docs/reliability.md"
    )
    recorded = json.loads(path.read_text())
    assert recorded == json.loads(text), (
        f"outcome of {case_id} changed (recorded vs observed): {recorded} != {row}. If the new "
        "behaviour is intended, run `make reliability-doc` and commit the outcome and the page"
    )
