"""The terminal view of a run: notes, a live progress bar, the states and summary tables.

`enrichctl local` shows each night through it; `enrichctl run --wait` and `retry --wait`
(`enrichctl.ops.commands`) show a deployed run's report through the same tables. It lives in
its own module so both import it (and neither imports the other).
"""

from __future__ import annotations

from typing import Any


class RunView:
    """Terminal output of a run: notes, a live progress bar, tables (rich `console`)."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
            # Handler output goes to lambda.log; rich must not re-route stdout to the screen.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.task: Any = None
        self.nights = 1

    def on_event(self, kind: str, value: Any) -> None:
        """Show one event of `run_nights` (see its docstring for the kinds)."""
        if kind == "template":
            self.console.print(f"  template    {value}")
        elif kind == "services":
            self.console.print(f"  snowflake   {value['snowflake']}")
            self.console.print(f"  enrichment  {value['api']}")
        elif kind == "rewrite":
            self.console.print(f"  [yellow]note[/]        {value}")
        elif kind == "night":
            night, self.nights = value
            if self.task is not None:  # the previous night's bar stays, finished
                self.progress.stop_task(self.task)
            self.task = None
            if self.nights > 1:
                self.console.print(f"[bold]night {night}/{self.nights}[/]")
        elif kind == "progress":
            done, total = value
            if self.task is None:
                self.progress.start()
                self.task = self.progress.add_task("batches", total=None)
            self.progress.update(self.task, completed=done, total=total or None)
        elif kind == "night_done" and self.nights > 1:
            colour = "green" if value.status == "SUCCEEDED" else "red"
            self.console.print(
                f"  [{colour}]{value.status}[/] {value.run_id}: {value.ids} sent, "
                f"{value.loaded_ids} loaded, {value.skipped_fresh_ids} fresh"
            )

    def stop(self) -> None:
        """End the progress bar (before any other output)."""
        if self.task is not None:
            self.progress.stop()

    def show_nights(self, nights: Any) -> None:
        """Per night what was sent, loaded and skipped; then rows of the results table."""
        from rich.table import Table

        if len(nights.reports) > 1:
            table = Table(
                title="Nights",
                title_justify="left",
                caption="sent: IDs queried and sent; loaded: merged into the state table as "
                "OK; fresh: left out by the incremental query",
                caption_justify="left",
            )
            for column in ("night", "run ID", "status", "sent", "loaded", "fresh"):
                table.add_column(
                    column, justify="left" if column == "run ID" else "right", no_wrap=True
                )
            for number, report in enumerate(nights.reports, start=1):
                colour = "green" if report.status == "SUCCEEDED" else "red"
                table.add_row(
                    str(number), report.run_id, f"[{colour}]{report.status}[/]",
                    str(report.ids), str(report.loaded_ids), str(report.skipped_fresh_ids),
                )  # fmt: skip
            self.console.print(table)
        if nights.results_table is None:
            return
        if nights.results_count is None and not nights.results_rows:
            self.console.print(f"results table {nights.results_table}: not read back "
                               "(a real Snowflake account)")  # fmt: skip
            return
        count = "?" if nights.results_count is None else f"{nights.results_count:,}"
        rows = Table(
            title=f"{nights.results_table} in the embedded Snowflake ({count} rows, first "
            f"{len(nights.results_rows)})",
            title_justify="left",
        )
        for column in ("IMDB_ID", "RUN_ID", "RECORD"):
            rows.add_column(column, no_wrap=True)
        for imdb_id, run_id, record in nights.results_rows:
            # The key and the run in full; the record gets what is left of the width.
            room = max(20, self.console.width - len(str(imdb_id)) - len(str(run_id)) - 10)
            text = str(record)
            rows.add_row(str(imdb_id), str(run_id), text if len(text) <= room else
                         text[: room - 3] + "...")  # fmt: skip
        self.console.print(rows)

    def show_report(self, report: Any, wall_s: float, nights: Any = None) -> None:
        """One run's states and summary (with `nights`: the last night's, then every night
        and the results table), then one line: how it ended. `enrichctl run --wait` shows
        a deployed run's report through this too."""
        from rich.table import Table

        count = len(nights.reports) if nights is not None else 1
        states = Table(
            title="States" + (f" (night {count}, run {report.run_id})" if count > 1 else ""),
            title_justify="left",
        )
        states.add_column("state")
        states.add_column("status")
        states.add_column("attempts", justify="right")
        states.add_column("duration", justify="right")
        for row in report.states:
            colour = {"SUCCEEDED": "green", "FAILED": "red", "CAUGHT": "yellow"}.get(
                row.status, "yellow"
            )
            states.add_row(
                row.name, f"[{colour}]{row.status}[/]", str(row.attempts), f"{row.duration_s:.2f}s"
            )
        self.console.print(states)

        waits = report.retry_waits
        skipped = sum(1 for w in waits if not w.slept)
        summary = Table(
            title="Summary" + (f" (night {count})" if count > 1 else ""),
            title_justify="left",
            show_header=False,
        )
        summary.add_column("what")
        summary.add_column("value", justify="right")
        summary.add_row("IDs queried (valid, unique)", str(report.ids))
        summary.add_row("invalid IDs (rejected)", str(report.invalid_ids))
        summary.add_row("duplicate IDs (dropped)", str(report.duplicate_ids))
        summary.add_row("IDs skipped as fresh", str(report.skipped_fresh_ids))
        summary.add_row("batches", str(report.batches))
        summary.add_row("batches enriched", str(report.batches - report.failed_batches))
        summary.add_row("batches failed", str(report.failed_batches))
        summary.add_row("HTTP requests", str(report.http_requests))
        summary.add_row("IDs loaded into Snowflake (OK)", str(report.loaded_ids))
        summary.add_row("state transitions", str(report.state_transitions))
        summary.add_row(
            "retry waits", f"{len(waits)} ({skipped} skipped, {sum(w.seconds for w in waits):.1f}s)"
        )
        summary.add_row("run duration", f"{report.duration_s:.2f}s")
        summary.add_row("output", str(report.output_dir))
        self.console.print(summary)
        if nights is not None:
            self.show_nights(nights)
        colour = "green" if report.status == "SUCCEEDED" else "red"
        line = f"[bold {colour}]{report.status}[/] run {report.run_id} in {wall_s:.1f}s"
        if count > 1:
            line = f"[bold {colour}]{report.status}[/] night {count} of {count}, run "
            line += f"{report.run_id}; {count} nights in {wall_s:.1f}s"
        if report.error:
            line += f": {report.error}"
            if report.cause:
                line += f" ({report.cause[:200]})"
        self.console.print(line)
