"""Reading the night's counts our handlers log (structured fields, no custom metrics)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

from enrich_shared.observability import COUNT_FIELDS, SERVICE
from enrich_shared.observability import logger as step_logger


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


@contextlib.contextmanager
def step_log_lines() -> Iterator[list[str]]:
    """Every line the step logger writes while inside, formatted as Powertools writes it.

    (The logger's stream is bound when it is created, so capsys does not see its lines.)
    """
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    collector = Collect()
    collector.setFormatter(step_logger.registered_handler.formatter)
    logging.getLogger(SERVICE).addHandler(collector)
    try:
        yield lines
    finally:
        logging.getLogger(SERVICE).removeHandler(collector)
