"""The bench table's arithmetic and cells (tools/docs.py renders them into docs/performance.md)."""

import json

import pytest

from enrichctl.bench.runner import CpuAccount
from enrichctl.bench.table import (
    BenchRow,
    HandlerMemory,
    ideal_wall_s,
    per_row_growth,
    table_cells,
    wall_ratio,
)


def test_ideal_is_batches_times_latency_over_concurrency():
    assert ideal_wall_s(1429, 50, 10) == pytest.approx(7.145)
    assert ideal_wall_s(0, 50, 10) == 0
    with pytest.raises(ValueError, match="max_concurrency"):
        ideal_wall_s(10, 50, 0)


def test_wall_ratio():
    assert wall_ratio(14.29, 7.145) == pytest.approx(2.0)
    assert wall_ratio(None, 7.0) is None
    assert wall_ratio(1.0, 0.0) is None


def test_per_row_growth_in_bytes():
    assert per_row_growth(1000, 100.0, 1_001_000, 100.0) == 0
    assert per_row_growth(0, 0.0, 1024 * 1024, 1.0) == pytest.approx(1.0)


def test_headroom_against_configured_memory():
    memory = HandlerMemory(1.0, 1.0, 100.0, 128.0, configured_mb=512)
    assert memory.headroom == pytest.approx(0.75)
    assert HandlerMemory(1.0, 1.0, 100.0, 128.0).headroom is None


def test_row_dict_and_cells():
    row = BenchRow(
        rows=10_000, ids=9_622, batches=138, latency_ms=50, max_concurrency=10, full_run=True,
        http_requests=138, state_transitions=148, wall_s=6.9,
        query_ids=HandlerMemory(1.0, 0.5, 200.0, 230.0, py_peak_mb=12.0, configured_mb=1024),
    )  # fmt: skip
    data = json.loads(json.dumps(row.to_dict()))
    assert data["ideal_s"] == pytest.approx(0.69)
    assert data["wall_over_ideal"] == pytest.approx(10.0)
    assert data["query_ids"]["headroom"] == pytest.approx(1 - 230 / 1024)
    cells = table_cells(row)
    assert cells[:6] == ["10,000", "138", "138", "148", "6.9", "10.00"]
    assert cells[7] == "12 | 230/1024"  # tools/docs._table escapes the pipe


def test_not_run_rows_say_so():
    row = BenchRow(1_000_000, 962_000, 13_743, 50, 10, full_run=False)
    assert row.ratio is None
    assert table_cells(row)[4] == "not run"


def test_cpu_account_adds_up_per_label():
    account = CpuAccount()
    double = account.wrap("x", lambda v: 2 * v)
    assert [double(1), double(2)] == [2, 4]
    assert account.calls == {"x": 2}
    assert account.wall["x"] >= 0
