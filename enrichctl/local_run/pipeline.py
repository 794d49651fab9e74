"""`LocalPipeline`: the synthesized pipeline inside moto, with its handlers in-process.

It composes the parts: `moto_setup` (resources), `execution` (start, wait), `s3_reads`
(the run's objects), `history` (the states table) and `report` (what a run reports).
Tests use it directly (several executions against the same services).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enrichctl.local_run import execution, moto_setup, s3_reads
from enrichctl.local_run.definition import LocalDefinition, LocalNames, local_definition
from enrichctl.local_run.history import execution_history, state_rows
from enrichctl.local_run.moto_hooks import (
    Invocation,
    LocalAws,
    LocalFunction,
    LocalLambdaRuntime,
    RetryWait,
    ThreadFailure,
    local_aws,
)
from enrichctl.local_run.report import RunReport, run_id_in
from enrichctl.local_run.stage import LocalStage
from enrichctl.paths import use_repo_code


class LocalPipeline:
    """The synthesized pipeline inside moto, with its handlers running in-process.

    Args:
        template: the synthesized CloudFormation template.
        snowflake_secret: JSON of the Snowflake secret (embedded server or a real account);
            None to set it later with `set_snowflake_secret()` (before the first run).
        api_base_url: what ENRICH_BASE_URL becomes locally.
        retry_waits: "skip" (record only) or "real" (sleep them).
        env_overrides: extra environment for every function (e.g. shorter timeouts in tests).
        log_stream: where handler logs go (None: leave them on stdout).
        api_request_count: returns how many HTTP requests the enrichment API saw so far
            (None: count InvokeEnrich attempts instead, e.g. for a real API).
        embedded_snowflake: the embedded Snowflake's secret (or a function returning it,
            called on entering: the server may still be starting). With a LoadResults function,
            the pipeline creates there (fresh, on entering) the load tables and a `file://`
            stage over `<output_dir or a temp dir>/snowflake-stage/`, and mirrors each run's
            results/ and failed/ objects into it before LoadResults (enrichctl/local_run/
            stage.py). None: a real account, whose own setup is used as is.
    """

    def __init__(
        self,
        template: dict[str, Any],
        *,
        snowflake_secret: dict[str, Any] | None,
        api_base_url: str,
        retry_waits: str = "skip",
        env_overrides: dict[str, str] | None = None,
        log_stream: Any = None,
        api_request_count: Callable[[], int] | None = None,
        output_dir: Path | None = None,
        embedded_snowflake: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.names = LocalNames()
        self.local: LocalDefinition = local_definition(template, self.names)
        self.snowflake_secret = snowflake_secret
        self.api_base_url = api_base_url
        self.retry_waits_mode = retry_waits
        self.env_overrides = env_overrides or {}
        self.log_stream = log_stream
        self.api_request_count = api_request_count
        self.output_dir = output_dir
        self.runtime = LocalLambdaRuntime()
        self.functions: dict[str, LocalFunction] = {}
        self.bucket = ""
        self.state_machine_arn = ""
        self.aws: LocalAws | None = None
        self._stack = contextlib.ExitStack()
        #: batch_count of the latest BuildUrls result (the progress bar's total).
        self.batch_count = 0
        #: execution ARN -> how many thread failures had been recorded when it started.
        self._failures_before: dict[str, int] = {}
        self.runtime.listeners.append(self._watch_build_result)
        self.embedded_snowflake = embedded_snowflake
        self.stage: LocalStage | None = None
        if embedded_snowflake is not None:
            envs = (f.environment for f in self.local.functions.values())
            self.stage = LocalStage.for_functions(envs, output_dir)
        if self.stage is not None:
            self.local.rewrites.append(self.stage.rewrite)
            self.runtime.before_invoke.append(self._mirror_for_load)

    def _watch_build_result(self, call: Invocation) -> None:
        build = self.functions.get("build_url")
        if build and call.function == build.name and isinstance(call.result, dict):
            self.batch_count = int(call.result.get("batch_count", 0) or 0)

    # -- setup ---------------------------------------------------------------------------
    def __enter__(self) -> LocalPipeline:
        use_repo_code()  # handlers import from the lambdas/ root
        self.functions = moto_setup.local_functions(
            self.local, self.api_base_url, self.env_overrides
        )
        for function in self.functions.values():
            self.runtime.register(function)
        if self.stage is not None:
            self._stack.callback(self.stage.remove)
        self.aws = self._stack.enter_context(local_aws(self.runtime, self.retry_waits_mode))
        try:
            self.bucket, self.state_machine_arn = moto_setup.create_resources(
                self.local, self.functions
            )
            if self.snowflake_secret is not None:
                self.set_snowflake_secret(self.snowflake_secret)
            if self.stage is not None and self.embedded_snowflake is not None:
                secret = self.embedded_snowflake
                self.stage.prepare(secret() if callable(secret) else secret)
        except Exception:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _mirror_for_load(self, function: LocalFunction, event: Any) -> None:
        """Before LoadResults: the run's objects into the stage's folder (see stage.py)."""
        if self.stage is None or moto_setup.step_of(function) != "load_results":
            return
        import boto3

        run_id = event.get("run_id") if isinstance(event, dict) else None
        if isinstance(run_id, str) and run_id:
            self.stage.mirror(boto3.client("s3"), self.bucket, run_id)

    def set_snowflake_secret(self, value: dict[str, Any]) -> None:
        """Store the Snowflake secret under the name QueryIds and LoadResults read
        (SNOWFLAKE_SECRET_NAME). The in-process functions see it at their next invocation:
        Powertools' secret cache (5 minutes in a warm Lambda) is cleared."""
        from aws_lambda_powertools.utilities import parameters

        self.snowflake_secret = value
        moto_setup.put_snowflake_secret(self.functions, value)
        parameters.clear_caches()

    # -- running ---------------------------------------------------------------------------
    def start(self, execution_input: dict[str, Any] | None = None, name: str | None = None) -> str:
        """Start one execution; return its ARN."""
        import boto3

        name, run_input = execution.execution_start(execution_input, name)
        failures_before = len(self.aws.thread_failures) if self.aws else 0
        sfn = boto3.client("stepfunctions")
        arn = execution.start_execution(sfn, self.state_machine_arn, name, run_input)
        self._failures_before[arn] = failures_before
        return arn

    def run(
        self,
        execution_input: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        timeout_s: float = 300.0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> RunReport:
        """Start one execution, wait for it, return its report."""
        invocations_before = len(self.runtime.invocations)
        waits_before = len(self.aws.retry_waits) if self.aws else 0
        requests_before = self.api_request_count() if self.api_request_count else 0
        started = time.monotonic()
        arn = self.start(execution_input, name)
        described = self.wait(arn, timeout_s=timeout_s, on_progress=on_progress)
        duration = time.monotonic() - started
        return self._report(
            described,
            duration,
            invocations=self.runtime.invocations[invocations_before:],
            waits=(self.aws.retry_waits if self.aws else [])[waits_before:],
            requests=(self.api_request_count() - requests_before)
            if self.api_request_count
            else None,
        )

    def wait(
        self,
        execution_arn: str,
        *,
        timeout_s: float = 300.0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the execution ends; report Map progress as (done, total) batches.

        A thread that dies meanwhile ends the run FAILED with INTERNAL_ERROR (see
        `enrichctl.local_run.execution`) instead of a wait for the timeout.
        """
        import boto3

        self.batch_count = 0
        return execution.wait_for(
            boto3.client("stepfunctions"),
            execution_arn,
            timeout_s=timeout_s,
            thread_failure=lambda: self._thread_failure_since_start(execution_arn),
            on_progress=on_progress,
            known_total=lambda: self.batch_count,
        )

    def _thread_failure_since_start(self, execution_arn: str) -> ThreadFailure | None:
        failures = self.aws.thread_failures if self.aws else []
        before = self._failures_before.get(execution_arn, 0)
        return failures[before] if len(failures) > before else None

    # -- reading back ----------------------------------------------------------------------
    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's full event history."""
        import boto3

        return execution_history(boto3.client("stepfunctions"), execution_arn)

    def failed_records(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's failure record: batch ID -> the failed Map item (with its error)."""
        import boto3

        return s3_reads.failed_records(boto3.client("s3"), self.bucket, run_id)

    def read_json(self, key: str) -> Any:
        """Read one JSON object from the pipeline bucket."""
        import boto3

        return s3_reads.read_json(boto3.client("s3"), self.bucket, key)

    def export_run(self, run_id: str, target: Path) -> int:
        """Copy `runs/<run_id>/` from moto's S3 to `target` (moto forgets it on exit)."""
        import boto3

        return s3_reads.export_run(boto3.client("s3"), self.bucket, run_id, target)

    # -- reporting ---------------------------------------------------------------------------
    def _report(
        self,
        described: dict[str, Any],
        duration_s: float,
        invocations: list[Invocation],
        waits: list[RetryWait],
        requests: int | None,
    ) -> RunReport:
        arn = described["executionArn"]
        run_input = json.loads(described.get("input") or "{}")
        run_id = run_id_in(run_input, str(described.get("name", "")))
        events = self.history(arn)

        def last_result(step: str) -> dict[str, Any]:
            function = self.functions.get(step)
            for call in reversed(invocations):
                if function and call.function == function.name and call.error_type is None:
                    return call.result if isinstance(call.result, dict) else {}
            return {}

        query, build = last_result("query_ids"), last_result("build_url")
        # The LoadResults step's result (`$.loaded` in the state machine; the last successful
        # call, i.e. after the retry map's load when there is one).
        load = last_result("load_results")
        failed = self.failed_records(run_id) if run_id else {}
        enrich = self.functions.get("invoke_enrich")
        enrich_calls = [c for c in invocations if enrich and c.function == enrich.name]
        states, parent_transitions = state_rows(events, self.local, self.functions, invocations)
        child_transitions = len(enrich_calls) + len(failed)
        output = described.get("output")
        return RunReport(
            status=described["status"],
            run_id=run_id,
            execution_arn=arn,
            error=described.get("error"),
            cause=described.get("cause"),
            ids=int(query.get("ids_count", build.get("ids_count", 0)) or 0),
            invalid_ids=int(query.get("invalid_count", 0) or 0),
            duplicate_ids=int(query.get("duplicate_count", 0) or 0),
            batches=int(build.get("batch_count", 0) or 0),
            failed_batches=len(failed),
            failed_batch_ids=sorted(failed),
            http_requests=requests if requests is not None else len(enrich_calls),
            state_transitions=parent_transitions + child_transitions,
            duration_s=duration_s,
            output_dir=str(self.output_dir) if self.output_dir else None,
            states=states,
            retry_waits=waits,
            invocations=list(invocations),
            rewrites=list(self.local.rewrites),
            history=events,
            output=json.loads(output) if output else None,
            internal_error=described.get("internal_error"),
            loaded_ids=int(load.get("ids_ok", 0) or 0),
            skipped_fresh_ids=int(query.get("skipped_fresh_ids", 0) or 0),
        )
