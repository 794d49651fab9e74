"""The bench's LoadResults measurement, at a small size against the embedded Snowflake."""

from __future__ import annotations

import math

from enrichctl.bench.load_probe import IDS_PER_BATCH, measure_load


def test_load_probe_loads_every_id_once_and_measures_both_processes(snowflake, tmp_path):
    ids = 2 * IDS_PER_BATCH + 5

    load = measure_load(snowflake, ids, tmp_path)

    batches = math.ceil(ids / IDS_PER_BATCH)
    assert load["ids"] == ids and load["batches"] == batches == 3
    first, rerun = load["first"], load["rerun"]
    assert first["files_loaded"] == batches
    assert first["results_merged"] == first["ids_ok"] == ids
    assert first["ids_failed"] == 0
    # The rerun a redrive makes: nothing loaded or merged again, the same outcome counted.
    assert rerun["files_loaded"] == rerun["results_merged"] == rerun["state_merged"] == 0
    assert rerun["ids_ok"] == ids
    assert load["duration_s"] > 0 and load["rerun_s"] > 0
    assert load["rss_peak_mb"] >= load["rss_before_mb"] > 0
    server = load["server_rss_peak_mb"]
    assert server is None or server > 0

    # `enrichctl bench` prints it as one row of its load-step table.
    from rich.console import Console

    from enrichctl.bench.cli import _print_load_step

    console = Console(record=True, width=200)
    _print_load_step(console, [{"rows": ids, "load": load}, {"rows": 1}])
    row = next(line for line in console.export_text().splitlines() if line.startswith("│"))
    assert [cell.strip() for cell in row.strip("│").split("│")][:3] == [
        str(ids), str(batches), f"{load['duration_s']:.1f}",
    ]  # fmt: skip
