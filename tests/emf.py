"""Reading the CloudWatch metrics our handlers print (Powertools' embedded metric format)."""

from __future__ import annotations

import json


def emitted_metrics(out: str) -> dict[str, float]:
    """Metric name -> value from the EMF lines in captured handler output."""
    values: dict[str, float] = {}
    for line in out.splitlines():
        if '"_aws"' in line:
            blob = json.loads(line)
            for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = blob[metric["Name"]]
                values[metric["Name"]] = value[0] if isinstance(value, list) else value
    return values
