"""Reading the night's counts our handlers log (structured fields, no custom metrics)."""

from __future__ import annotations

import json

from enrich_shared.observability import COUNT_FIELDS


def logged_counts(out: str) -> dict[str, int]:
    """Count field -> its sum over the JSON log lines in captured handler output.

    The same sum the dashboard's Logs Insights widget computes (stacks/monitoring.py).
    """
    counts: dict[str, int] = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for name in COUNT_FIELDS:
            if name in record:
                counts[name] = counts.get(name, 0) + int(record[name])
    return counts
