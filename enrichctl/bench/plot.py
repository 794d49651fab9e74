"""The bench's PNG: wall time and handler memory against rows (log scale)."""

from __future__ import annotations

from pathlib import Path

from enrichctl.bench.table import BenchRow


def plot_results(rows: list[BenchRow], path: Path) -> Path:
    """Draw wall time (full runs) and peak memory per handler against rows; return `path`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    ran = [r for r in rows if r.full_run and r.wall_s is not None]
    if ran:
        left.plot([r.rows for r in ran], [r.wall_s for r in ran], "o-", label="wall (moto)")
        left.plot([r.rows for r in ran], [r.ideal_s for r in ran], "s--", label="ideal")
    left.set(xscale="log", yscale="log", xlabel="rows", ylabel="seconds")
    left.set_title("Whole run: wall time vs ideal (batches x latency / concurrency)")
    left.legend()
    for step in ("query_ids", "build_url"):
        points = [(r.rows, getattr(r, step)) for r in rows if getattr(r, step) is not None]
        if not points:
            continue
        xs = [x for x, _ in points]
        right.plot(xs, [m.rss_peak_mb for _, m in points], "o-", label=f"{step} peak RSS")
        py = [(x, m.py_peak_mb) for x, m in points if m.py_peak_mb is not None]
        if py:
            right.plot([x for x, _ in py], [v for _, v in py], "^--", label=f"{step} Python heap")
        configured = points[0][1].configured_mb
        if configured:
            right.axhline(configured, linestyle=":", linewidth=1, label=f"{step} configured")
    right.set(xscale="log", xlabel="rows", ylabel="MB")
    right.set_title("Peak memory per invocation")
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
