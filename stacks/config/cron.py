"""EventBridge Scheduler cron expressions, time zones and their daylight-saving gaps.

A night scheduled at a local time that does not exist (02:30 in America/New_York on the
spring-forward night) would be skipped; `check_dst` refuses it and suggests a safe time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from stacks.config.problems import Problem

_CRON = re.compile(r"^cron\((.*)\)$")
_CRON_FIELD = {
    "day-of-month": re.compile(r"^(\?|\*|L|LW|\d{1,2}W|[\d,\-*/]+)$"),
    "month": re.compile(r"^(\*|[\d,\-*/]+|[A-Za-z,\-]+)$"),
    "day-of-week": re.compile(r"^(\?|\*|L|[\d,\-*/#L]+|[A-Za-z,\-#L]+)$"),
    "year": re.compile(r"^(\*|[\d,\-*/]+)$"),
}
CRON_HINT = (
    "use cron(minutes hours day-of-month month day-of-week year), one of day-of-month or "
    "day-of-week being ?, e.g. cron(0 2 * * ? *)"
)


def _expand(field: str, low: int, high: int) -> set[int]:
    """Expand one numeric cron field (`*`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n`, lists)."""
    values: set[int] = set()
    for part in field.split(","):
        step = 1
        stepped = "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            step = int(step_text)
            if step < 1:
                raise ValueError("step must be at least 1")
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(part)
            end = high if stepped else start
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ValueError(f"{part} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def parse_cron_times(cron: str) -> list[tuple[int, int]]:
    """The (hour, minute) pairs a Scheduler cron fires at; ValueError when malformed."""
    match = _CRON.match(cron.strip())
    if not match:
        raise ValueError("it must look like cron(...)")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise ValueError(f"it has {len(fields)} fields inside cron(...), Scheduler needs 6")
    minutes, hours, dom, _, dow, _ = fields
    for (name, pattern), value in zip(_CRON_FIELD.items(), fields[2:], strict=True):
        if not pattern.match(value):
            raise ValueError(f"its {name} field {value!r} is malformed")
    if (dom == "?") == (dow == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be ?")
    try:
        mins, hrs = _expand(minutes, 0, 59), _expand(hours, 0, 23)
    except ValueError as exc:
        raise ValueError(f"its minutes/hours fields are malformed ({exc})") from None
    return sorted((h, m) for h in hrs for m in mins)


def check_cron(cron: str) -> str:
    """`cron` when Scheduler accepts it, else a `Problem` saying which part is wrong."""
    try:
        parse_cron_times(cron)
    except ValueError as exc:
        raise Problem(f"is not a valid Scheduler cron expression: {exc}", CRON_HINT) from None
    return cron


def check_timezone(timezone: str) -> str:
    """`timezone` when it is an IANA name, else a `Problem` (with the right case, if close)."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        close = sorted(z for z in available_timezones() if z.lower() == timezone.lower())
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise Problem(
            "is not a known IANA time zone",
            f"{hint}use a name such as UTC, Europe/Paris or America/New_York",
        ) from None
    return timezone


@dataclass(frozen=True)
class DstGap:
    """A stretch of local wall-clock time that does not exist (clocks jump forward)."""

    day: date
    start: time
    end: time


def dst_gaps(timezone: str, start: date, days: int = 366) -> list[DstGap]:
    """Spring-forward gaps of `timezone` in the `days` from `start` (computed with zoneinfo)."""
    tz = ZoneInfo(timezone)
    gaps: list[DstGap] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        begin = datetime.combine(day, time(0), tzinfo=UTC)
        end = begin + timedelta(days=1)
        before = begin.astimezone(tz).utcoffset()
        after = end.astimezone(tz).utcoffset()
        if before is None or after is None or after <= before:
            continue
        # Offset grew within this UTC day: find the transition instant to the minute.
        lo, hi = begin, end
        while hi - lo > timedelta(minutes=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        jump = hi.replace(second=0, microsecond=0)
        local_start = (jump + before).replace(tzinfo=None)
        local_end = (jump + after).replace(tzinfo=None)
        gaps.append(DstGap(local_start.date(), local_start.time(), local_end.time()))
    return gaps


def _in_gap(hour: int, minute: int, gap: DstGap) -> bool:
    t = time(hour, minute)
    if gap.start <= gap.end:
        return gap.start <= t < gap.end
    return t >= gap.start or t < gap.end  # gap spans local midnight


def check_dst(cron: str, timezone: str, today: date | None) -> None:
    """Refuse a `cron` firing in a daylight-saving gap of `timezone` within a year of `today`.

    The `Problem` names the night, the gap, and two safe times (just after, just before).
    """
    times = parse_cron_times(cron)
    start = today or datetime.now(UTC).date()
    for gap in dst_gaps(timezone, start):
        hit = [(h, m) for h, m in times if _in_gap(h, m, gap)]
        if hit:
            h, m = hit[0]
            last = (datetime.combine(gap.day, gap.end) - timedelta(minutes=1)).time()
            fields = cron.strip()[5:-1].split()
            after = f"cron({gap.end.minute} {gap.end.hour} {' '.join(fields[2:])})"
            before_hour = (gap.start.hour - 1) % 24
            before = f"cron({gap.start.minute} {before_hour} {' '.join(fields[2:])})"
            raise Problem(
                f"fires at {h:02d}:{m:02d} in {timezone}, a time that does not exist on "
                f"{gap.day.isoformat()}: clocks jump from {gap.start:%H:%M} to {gap.end:%H:%M} "
                "for daylight saving, so that night's run would be skipped",
                f"choose a time outside {gap.start:%H:%M}-{last:%H:%M}, e.g. {after} or "
                f"{before}, or use a zone without daylight saving such as UTC",
                key="cron",
                value=cron,
            )
