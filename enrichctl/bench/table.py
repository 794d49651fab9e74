"""The bench's rows and their arithmetic (pure: unit-tested without running anything)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def ideal_wall_s(batches: int, latency_ms: float, max_concurrency: int) -> float:
    """The fastest the Map could possibly go: `batches x latency / max_concurrency`.

    Every batch waits `latency_ms` for the API and at most `max_concurrency` wait at once;
    QueryIds, BuildUrls and the state machine itself are taken as free.
    """
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency={max_concurrency} must be at least 1")
    return batches * latency_ms / 1000.0 / max_concurrency


def wall_ratio(wall_s: float | None, ideal_s: float) -> float | None:
    """Wall time over the ideal (1.0 = as fast as the API allows); None if not measured."""
    if wall_s is None or ideal_s <= 0:
        return None
    return wall_s / ideal_s


def per_row_growth(rows_a: int, mb_a: float, rows_b: int, mb_b: float) -> float:
    """Bytes of peak memory per extra row between two sizes (flat memory: close to 0)."""
    if rows_b == rows_a:
        return 0.0
    return (mb_b - mb_a) * 1024 * 1024 / (rows_b - rows_a)


@dataclass
class HandlerMemory:
    """One handler invocation, measured in a process of its own (see memory_probe)."""

    duration_s: float
    cpu_s: float
    rss_before_mb: float
    rss_peak_mb: float
    py_peak_mb: float | None = None
    configured_mb: int | None = None

    @property
    def headroom(self) -> float | None:
        """Share of the configured memory left at the RSS peak (0.75 = 75 % free)."""
        if not self.configured_mb:
            return None
        return 1.0 - self.rss_peak_mb / self.configured_mb


@dataclass
class BenchRow:
    """One size of the bench: what ran, what it measured, what AWS would bill."""

    rows: int
    ids: int
    batches: int
    latency_ms: float
    max_concurrency: int
    #: True when the whole state machine ran (Distributed Map included) at this size.
    full_run: bool
    http_requests: int | None = None
    state_transitions: int | None = None
    wall_s: float | None = None
    #: CPU seconds inside our handlers / the local API / everything else (moto's
    #: interpreter, its S3, the poll loop). Only for full runs.
    cpu_ours_s: float | None = None
    cpu_api_s: float | None = None
    cpu_moto_s: float | None = None
    query_ids: HandlerMemory | None = None
    build_url: HandlerMemory | None = None
    cost_night_usd: float | None = None
    cost_month_usd: float | None = None
    agent_month_usd: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ideal_s(self) -> float:
        """See `ideal_wall_s`."""
        return ideal_wall_s(self.batches, self.latency_ms, self.max_concurrency)

    @property
    def ratio(self) -> float | None:
        """See `wall_ratio`."""
        return wall_ratio(self.wall_s, self.ideal_s)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived figures."""
        data = asdict(self)
        data["ideal_s"] = self.ideal_s
        data["wall_over_ideal"] = self.ratio
        for step in ("query_ids", "build_url"):
            memory = getattr(self, step)
            if memory is not None:
                data[step]["headroom"] = memory.headroom
        return data


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _memory(m: HandlerMemory | None) -> str:
    if m is None:
        return "-"
    py = f"{m.py_peak_mb:.0f}" if m.py_peak_mb is not None else "?"
    of = f"/{m.configured_mb}" if m.configured_mb else ""
    return f"{py} | {m.rss_peak_mb:.0f}{of}"


COLUMNS = (
    "rows",
    "batches",
    "HTTP requests",
    "transitions",
    "wall s",
    "wall/ideal",
    "CPU ours/API/moto s",
    "query_ids MB py | RSS/conf",
    "build_url MB py | RSS/conf",
    "AWS $/night",
    "AWS $/month",
    "agent $/month",
)


def table_cells(row: BenchRow) -> list[str]:
    """The printed cells of one row, in `COLUMNS` order."""
    from enrichctl.cost import usd

    cpu = "-"
    if row.cpu_ours_s is not None:
        cpu = f"{row.cpu_ours_s:.1f}/{row.cpu_api_s or 0:.1f}/{row.cpu_moto_s or 0:.1f}"
    return [
        f"{row.rows:,}",
        f"{row.batches:,}",
        _num(row.http_requests, ","),
        _num(row.state_transitions, ","),
        _num(row.wall_s, ".1f") if row.full_run else "not run",
        _num(row.ratio, ".2f"),
        cpu,
        _memory(row.query_ids),
        _memory(row.build_url),
        usd(row.cost_night_usd) if row.cost_night_usd is not None else "-",
        usd(row.cost_month_usd) if row.cost_month_usd is not None else "-",
        usd(row.agent_month_usd) if row.agent_month_usd is not None else "-",
    ]
