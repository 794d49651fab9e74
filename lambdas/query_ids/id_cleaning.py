"""Cleaning of raw IMDB ID values: trim, validate, de-duplicate, count, report.

Only values that are IMDB title IDs after trimming (`tt` followed by 7 to 10 ASCII digits)
pass. Everything else (NULL, blank, `TT0111161`, `tt1234567&ids=x`, numbers, ...) is
rejected and counted; a short escaped sample is kept for the log, never passed on.
Validation is strict on purpose: a value that is not exactly an ID is a data problem
to fix upstream, not something to guess at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

#: An IMDB title ID. `[0-9]` rather than `\d`: `\d` also matches non-ASCII digits.
IMDB_ID_PATTERN = re.compile(r"tt[0-9]{7,10}")
#: How many rejected values the log sample keeps, and how long each may be.
SAMPLE_SIZE = 5
SAMPLE_VALUE_CHARS = 40


def clean_id(value: object) -> str | None:
    """Return the trimmed IMDB title ID in `value`, or None when it is not one."""
    if not isinstance(value, str):
        return None
    candidate = value.strip()
    return candidate if IMDB_ID_PATTERN.fullmatch(candidate) else None


def escape_for_log(value: object, max_chars: int = SAMPLE_VALUE_CHARS) -> str:
    """A short, printable, ASCII-only rendering of a rejected value.

    `ascii()` escapes control characters, newlines and non-ASCII text, so a hostile value
    cannot forge log lines or terminal escapes; long values are cut.
    """
    if isinstance(value, str) and len(value) > max_chars:
        return ascii(value[:max_chars]) + "..."
    return ascii(value)


@dataclass
class IdCleaner:
    """Cleans a stream of raw values one at a time; memory grows only with unique IDs.

    Use `clean(values)` to get the accepted IDs in first-seen order; the counters and
    `invalid_sample` describe everything that was dropped.
    """

    rows: int = 0
    ids_count: int = 0
    invalid_count: int = 0
    null_count: int = 0
    duplicate_count: int = 0
    invalid_sample: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def accept(self, value: object) -> str | None:
        """Return the clean ID if `value` is a valid ID not seen before, else None."""
        self.rows += 1
        clean = clean_id(value)
        if clean is None:
            self.invalid_count += 1
            if value is None:
                self.null_count += 1
            if len(self.invalid_sample) < SAMPLE_SIZE:
                self.invalid_sample.append(escape_for_log(value))
            return None
        if clean in self._seen:
            self.duplicate_count += 1
            return None
        self._seen.add(clean)
        self.ids_count += 1
        return clean

    def clean(self, values: Iterable[object]) -> Iterator[str]:
        """Yield the accepted IDs of `values` lazily, in first-occurrence order."""
        for value in values:
            clean = self.accept(value)
            if clean is not None:
                yield clean

    def summary(self) -> dict[str, object]:
        """Counts and the escaped invalid sample, for one structured log line."""
        return {
            "rows": self.rows,
            "ids_count": self.ids_count,
            "invalid_count": self.invalid_count,
            "null_count": self.null_count,
            "duplicate_count": self.duplicate_count,
            "invalid_sample": list(self.invalid_sample),
        }


def clean_ids(values: Iterable[object]) -> tuple[list[str], IdCleaner]:
    """Clean a whole (small) collection at once: the IDs plus the cleaner with its counts."""
    cleaner = IdCleaner()
    return list(cleaner.clean(values)), cleaner
