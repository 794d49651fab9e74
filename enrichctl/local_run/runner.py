"""`enrichctl local`: one or more nights of the synthesized pipeline on this machine.

`run_nights(options)` starts the services (template, embedded Snowflake, local enrichment
API), runs `options.nights` executions through `LocalPipeline` with a live progress report,
reads the results table back and writes the run's files into the output folder. The parts
live beside it: `options` (flags and their checks), `pipeline` (moto), `report` (what a run
reports), `logs` (handler output to lambda.log).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrichctl.local_run.execution import INTERNAL_ERROR_FILE
from enrichctl.local_run.logs import handler_output_to
from enrichctl.local_run.moto_setup import local_api_key
from enrichctl.local_run.options import LocalRunError, LocalRunOptions, read_secret_file
from enrichctl.local_run.pipeline import LocalPipeline
from enrichctl.local_run.report import RunReport

#: Rows of the results table `enrichctl local` reads back after the last night.
RESULTS_SAMPLE_ROWS = 5


def _prepare_output_dir(output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    # Only our own sub-folders are cleared: the user may point --output-dir anywhere.
    for sub in ("enriched", "s3"):
        shutil.rmtree(output_dir / sub, ignore_errors=True)


@dataclass
class LocalNights:
    """What `enrichctl local` ran: one report per night, and the results table read back."""

    reports: list[RunReport]
    #: The results table's name (LoadResults' LOAD_RESULTS_TABLE); None when loading is off.
    results_table: str | None = None
    #: Its row count and first rows (IMDB_ID, RUN_ID, RECORD as text), read back from the
    #: embedded Snowflake after the last night; None when not read (a real account, no table).
    results_count: int | None = None
    results_rows: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def last(self) -> RunReport:
        """The last night's report (its status is the exit code)."""
        return self.reports[-1]


def run_nights(
    options: LocalRunOptions,
    *,
    template: dict[str, Any] | None = None,
    on_event: Callable[[str, Any], None] | None = None,
) -> LocalNights:
    """What `enrichctl local` does: `options.nights` consecutive executions against one
    embedded Snowflake, one moto and one API, each night with its own run ID.

    `on_event(kind, value)` receives "template" (where it came from), "rewrite" (each
    definition rewrite), "services" (dict), "night" ((night, nights)) before a night,
    "progress" ((done, total)) during it and "night_done" (its RunReport) after it.
    """
    from enrichctl.local_api import LocalEnrichApi
    from enrichctl.local_run.template import SynthError, load_template

    options.validate()
    emit = on_event or (lambda kind, value: None)
    output_dir = Path(options.output_dir).resolve()
    _prepare_output_dir(output_dir)

    if template is None:
        try:
            template, source = load_template(options.context_overrides())
        except SynthError as exc:
            raise LocalRunError(str(exc)) from exc
        emit("template", source)

    with contextlib.ExitStack() as stack:
        # The embedded Snowflake starts and seeds (~2-3 s) while moto and the API come up.
        snowflake_job, embedded = _start_snowflake(options, stack)

        # Local enrichment API (unless a real one is given).
        api: Any = None
        if options.api_url is not None:
            base_url = options.api_url
            api_desc = f"{base_url} (real API)"
        else:
            api = stack.enter_context(
                LocalEnrichApi(
                    output_dir=output_dir / "enriched",
                    latency_ms=options.api_latency_ms,
                    fail_rate=options.api_fail_rate,
                    fail_status=options.api_fail_status,
                    max_lifetime_s=options.timeout_s + 60,
                    api_key=local_api_key(template),
                )
            )
            base_url = api.base_url
            api_desc = f"local API {base_url}"

        log_file = stack.enter_context((output_dir / "lambda.log").open("w"))
        pipeline = LocalPipeline(
            template,
            snowflake_secret=None,
            api_base_url=base_url,
            retry_waits=options.retry_waits,
            log_stream=log_file,
            api_request_count=(lambda: api.request_count) if api is not None else None,
            output_dir=output_dir,
            # A real account (--snowflake-secret-file) keeps its own stage and tables.
            embedded_snowflake=None
            if options.snowflake_secret_file is not None
            else (lambda: snowflake_job()[0]),
        )
        for rewrite in pipeline.local.rewrites:
            emit("rewrite", rewrite)
        stack.enter_context(handler_output_to(log_file))
        stack.enter_context(pipeline)
        secret, snowflake_desc = snowflake_job()
        pipeline.set_snowflake_secret(secret)
        emit("services", {"snowflake": snowflake_desc, "api": api_desc})
        reports: list[RunReport] = []
        for night in range(1, options.nights + 1):
            emit("night", (night, options.nights))
            report = pipeline.run(
                options.run_input(night),
                timeout_s=options.timeout_s,
                on_progress=lambda done, total: emit("progress", (done, total)),
            )
            pipeline.export_run(report.run_id, output_dir / "s3")
            reports.append(report)
            emit("night_done", report)
        nights = LocalNights(reports, results_table=_results_table(pipeline))
        if embedded is not None and nights.results_table:
            _read_back_results(embedded, nights)
    _write_run_files(nights.last, output_dir)
    (output_dir / "nights.json").write_text(
        json.dumps([r.summary() for r in reports], indent=2) + "\n"
    )
    return nights


def _results_table(pipeline: LocalPipeline) -> str | None:
    """The results table LoadResults merges into (None when the stack does not load)."""
    load = pipeline.functions.get("load_results")
    return load.environment.get("LOAD_RESULTS_TABLE", "ENRICH_RESULTS") if load else None


def _read_back_results(snowflake: Any, nights: LocalNights) -> None:
    """Count the results table and keep its first rows, as a data engineer would check."""
    table = nights.results_table  # validated by the stack's config: a plain identifier
    if "." not in table:  # as LoadResults resolves it: in the secret's database and schema
        secret = snowflake.secret()
        table = f"{secret['database']}.{secret['schema']}.{table}"
    try:
        count_sql = f"SELECT COUNT(*) FROM {table}"  # noqa: S608
        nights.results_count = int(snowflake.execute(count_sql)[0][0])
        nights.results_rows = snowflake.execute(
            f"SELECT IMDB_ID, RUN_ID, TO_VARCHAR(RECORD) FROM {table} "  # noqa: S608
            f"ORDER BY IMDB_ID LIMIT {RESULTS_SAMPLE_ROWS}"
        )
    except Exception as exc:  # the nights ran; a missing table is reported, not raised
        nights.results_count = None
        nights.results_rows = [("-", "-", f"not readable: {type(exc).__name__}")]


def _start_snowflake(
    options: LocalRunOptions, stack: contextlib.ExitStack
) -> tuple[Callable[[], tuple[dict[str, Any], str]], Any]:
    """Start (in a thread) the embedded Snowflake, or read a real account's secret.

    Returns a function that waits for it and gives (secret JSON, description), and the
    embedded server (None for a real account).
    """
    from concurrent.futures import ThreadPoolExecutor

    from enrichctl.embedded_snowflake import EmbeddedSnowflake, EmbeddedSnowflakeError

    if options.snowflake_secret_file is not None:
        secret = read_secret_file(options.snowflake_secret_file)
        desc = f"Snowflake account {secret.get('account')} (from {options.snowflake_secret_file})"
        return (lambda: (secret, desc)), None

    snow = EmbeddedSnowflake()

    def start() -> tuple[dict[str, Any], str]:
        snow.start()
        if options.rows is None:
            seeded, what = snow.seed_sample(), "sample EIDR rows"
        else:
            seeded, what = snow.seed_synthetic(options.rows), "synthetic rows"
        return snow.secret(), f"embedded Snowflake 127.0.0.1:{snow.port} ({seeded} {what})"

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-snowflake")
    future = executor.submit(start)

    def cleanup() -> None:
        with contextlib.suppress(Exception):
            future.result()  # never stop a server that is still starting
        snow.stop()
        executor.shutdown(wait=True)

    stack.callback(cleanup)

    def result() -> tuple[dict[str, Any], str]:
        try:
            return future.result()
        except EmbeddedSnowflakeError as exc:
            raise LocalRunError(str(exc).splitlines()[0]) from exc

    return result, snow


def _write_run_files(report: RunReport, output_dir: Path) -> None:
    (output_dir / "summary.json").write_text(json.dumps(report.summary(), indent=2) + "\n")
    (output_dir / "states.json").write_text(
        json.dumps([row.__dict__ for row in report.states], indent=2) + "\n"
    )
    (output_dir / "history.json").write_text(json.dumps(report.history, indent=1, default=str))
    internal = output_dir / INTERNAL_ERROR_FILE
    if report.internal_error:
        internal.write_text(report.internal_error)
    else:
        internal.unlink(missing_ok=True)  # from an earlier run into the same folder
    (output_dir / "retry-waits.json").write_text(
        json.dumps([wait.__dict__ for wait in report.retry_waits], indent=2) + "\n"
    )
