"""Run the deployed state machine on this machine: moto + real handlers + local services.

Two layers:
- `LocalPipeline`: inside moto, creates the bucket(s), secrets, functions and the state
  machine from a synthesized template, runs executions and reports on them. Tests use it
  directly (several executions against the same services).
- `run_local(options)`: what `enrichctl local` does: template, embedded Snowflake, local
  enrichment API, one execution with a live progress bar, a table of states and a summary.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from enrichctl.local_run.definition import LocalDefinition, LocalNames, local_definition
from enrichctl.local_run.moto_hooks import (
    Invocation,
    LocalAws,
    LocalFunction,
    LocalLambdaRuntime,
    RetryWait,
    ThreadFailure,
    local_aws,
)
from enrichctl.local_run.stage import LocalStage

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
DEFAULT_OUTPUT_DIR = Path("enrich-output")
#: Keys of the `--json` summary of a night, in order (contract with issue 4 and `enrichctl`
#: users; issue 11 added the last two: what the night loaded and what it skipped as fresh).
SUMMARY_KEYS = (
    "status",
    "ids",
    "invalid_ids",
    "batches",
    "failed_batches",
    "http_requests",
    "state_transitions",
    "duration_s",
    "output_dir",
    "loaded_ids",
    "skipped_fresh_ids",
)
#: `enrichctl local --nights N`: at most a month of nights against one embedded Snowflake.
MAX_NIGHTS = 30
#: Rows of the results table `enrichctl local` reads back after the last night.
RESULTS_SAMPLE_ROWS = 5
#: Applied to every local function: no X-Ray daemon here.
LOCAL_FUNCTION_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}
#: A fake key for the local API (never a real secret).
LOCAL_API_KEY = "local-api-key"
ROLE_NAME = "local-pipeline-role"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
#: The error of a run stopped because a thread of moto's interpreter (or of ours) died.
INTERNAL_ERROR = "LocalRunInternalError"
INTERNAL_ERROR_FILE = "internal-error.txt"


class LocalRunError(Exception):
    """`enrichctl local` cannot run as asked (bad option, missing service, bad template)."""


# --------------------------------------------------------------------------- results
@dataclass
class StateRow:
    """One line of the states table."""

    name: str
    status: str
    attempts: int
    duration_s: float


@dataclass
class RunReport:
    """Everything known about one finished execution."""

    status: str
    run_id: str
    execution_arn: str
    error: str | None
    cause: str | None
    ids: int
    invalid_ids: int
    duplicate_ids: int
    batches: int
    failed_batches: int
    failed_batch_ids: list[str]
    http_requests: int
    state_transitions: int
    duration_s: float
    output_dir: str | None
    states: list[StateRow] = field(default_factory=list)
    retry_waits: list[RetryWait] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    #: Traceback of the thread failure that stopped the run (error INTERNAL_ERROR), if any.
    internal_error: str | None = None
    #: IDs LoadResults recorded in the state table as OK for this run (its `ids_ok`).
    loaded_ids: int = 0
    #: IDs the incremental query left out because they were enriched recently (QueryIds).
    skipped_fresh_ids: int = 0

    def summary(self) -> dict[str, Any]:
        """The one-object summary printed by `--json` (exactly SUMMARY_KEYS)."""
        values = {
            "status": self.status,
            "ids": self.ids,
            "invalid_ids": self.invalid_ids,
            "batches": self.batches,
            "failed_batches": self.failed_batches,
            "http_requests": self.http_requests,
            "state_transitions": self.state_transitions,
            "duration_s": round(self.duration_s, 2),
            "output_dir": self.output_dir,
            "loaded_ids": self.loaded_ids,
            "skipped_fresh_ids": self.skipped_fresh_ids,
        }
        return {key: values[key] for key in SUMMARY_KEYS}


def run_id_in(run_input: dict[str, Any], execution_name: str) -> str:
    """The run ID the pipeline gives an execution with this input (QueryIds' rule,
    `enrich_shared.models.run_id_of`: run_id, else from scheduled_time, else the name).

    Falls back to the execution name when the input is unusable (that run failed in
    QueryIds, and its name is what an operator looks for).
    """
    if str(LAMBDAS_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDAS_DIR))
    from enrich_shared.errors import InvalidInputError
    from enrich_shared.models import run_id_of

    try:
        return run_id_of(run_input, execution_name)
    except InvalidInputError:
        return execution_name


def _step_of(function: LocalFunction) -> str:
    """`query_ids` for handler `query_ids.handler.lambda_handler`."""
    return function.handler.split(".")[0] if isinstance(function.handler, str) else ""


# --------------------------------------------------------------------------- the pipeline
class LocalPipeline:
    """The synthesized pipeline inside moto, with its handlers running in-process.

    Args:
        template: the synthesized CloudFormation template.
        snowflake_secret: JSON of the Snowflake secret (embedded server or a real account);
            None to set it later with `set_snowflake_secret()` (before the first run).
        api_base_url: what ENRICH_BASE_URL becomes locally.
        retry_waits: "skip" (record only) or "real" (sleep them).
        env_overrides: extra environment for every function (e.g. shorter timeouts in tests).
        log_stream: where handler logs and metrics go (None: leave them on stdout).
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
    def _environment(self, env: dict[str, str]) -> dict[str, str]:
        env = {**env, **LOCAL_FUNCTION_ENV}
        if "ENRICH_BASE_URL" in env:
            env["ENRICH_BASE_URL"] = self.api_base_url
        env.update(self.env_overrides)
        return env

    def __enter__(self) -> LocalPipeline:
        if str(LAMBDAS_DIR) not in sys.path:
            sys.path.insert(0, str(LAMBDAS_DIR))  # handlers import from the lambdas/ root
        for spec in self.local.functions.values():
            function = LocalFunction(
                name=spec.name,
                arn=spec.arn,
                handler=spec.handler,
                environment=self._environment(spec.environment),
                timeout_s=spec.timeout_s,
                memory_mb=spec.memory_mb,
            )
            self.functions[_step_of(function) or spec.name] = function
            self.runtime.register(function)
        if self.stage is not None:
            self._stack.callback(self.stage.remove)
        self.aws = self._stack.enter_context(local_aws(self.runtime, self.retry_waits_mode))
        try:
            self._create_resources()
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
        if self.stage is None or _step_of(function) != "load_results":
            return
        import boto3

        run_id = event.get("run_id") if isinstance(event, dict) else None
        if isinstance(run_id, str) and run_id:
            self.stage.mirror(boto3.client("s3"), self.bucket, run_id)

    def _create_resources(self) -> None:
        import boto3

        buckets = {f.environment.get("BUCKET_NAME") for f in self.functions.values()}
        buckets.discard(None)
        if len(buckets) != 1:
            raise LocalRunError(f"expected the functions to share one BUCKET_NAME, got {buckets}")
        self.bucket = str(buckets.pop())
        s3 = boto3.client("s3")
        for name in {self.bucket, *self.local.buckets.values()}:
            s3.create_bucket(Bucket=name)

        secrets = boto3.client("secretsmanager")
        if self.snowflake_secret is not None:
            self.set_snowflake_secret(self.snowflake_secret)
        for function in self.functions.values():
            env = function.environment
            if env.get("API_KEY_SECRET_NAME"):
                self._put_secret(secrets, env["API_KEY_SECRET_NAME"], LOCAL_API_KEY)

        iam = boto3.client("iam")
        role_arn = iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lam = boto3.client("lambda")
        for function in self.functions.values():
            lam.create_function(
                FunctionName=function.name,
                Runtime="python3.12",
                Role=role_arn,
                Handler=str(function.handler),
                Code={"ZipFile": _empty_zip()},
                Timeout=function.timeout_s,
                MemorySize=function.memory_mb,
                Environment={"Variables": function.environment},
            )
        sfn = boto3.client("stepfunctions")
        try:
            self.state_machine_arn = sfn.create_state_machine(
                name=self.local.state_machine_logical_id[:80],
                definition=self.local.definition,
                roleArn=role_arn,
            )["stateMachineArn"]
        except Exception as exc:
            raise LocalRunError(
                f"moto rejected the synthesized definition: {exc}. moto 5.2.5 does not accept "
                "ItemBatcher or an integer ToleratedFailurePercentage (see DESIGN.md)"
            ) from exc

    def set_snowflake_secret(self, value: dict[str, Any]) -> None:
        """Store the Snowflake secret under the name QueryIds and LoadResults read
        (SNOWFLAKE_SECRET_NAME). The in-process functions see it at their next invocation:
        Powertools' secret cache (5 minutes in a warm Lambda) is cleared."""
        import boto3
        from aws_lambda_powertools.utilities import parameters

        self.snowflake_secret = value
        secrets = boto3.client("secretsmanager")
        for function in self.functions.values():
            name = function.environment.get("SNOWFLAKE_SECRET_NAME")
            if name:
                self._put_secret(secrets, name, value)
        parameters.clear_caches()

    @staticmethod
    def _put_secret(client: Any, name: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            client.create_secret(Name=name, SecretString=text)
        except client.exceptions.ResourceExistsException:
            client.put_secret_value(SecretId=name, SecretString=text)

    # -- running ---------------------------------------------------------------------------
    def start(self, execution_input: dict[str, Any] | None = None, name: str | None = None) -> str:
        """Start one execution; return its ARN."""
        import boto3

        execution_input = dict(execution_input or {})
        if "scheduled_time" in execution_input and not execution_input.get("run_id"):
            # A schedule-shaped input: the pipeline derives the run ID (as on AWS).
            run_id = run_id_in(execution_input, name or default_run_id())
        else:
            run_id = execution_input.get("run_id") or name or default_run_id()
            execution_input.setdefault("run_id", run_id)
        name = name or re.sub(r"[^A-Za-z0-9_-]", "-", run_id)[:80]
        failures_before = len(self.aws.thread_failures) if self.aws else 0
        response = boto3.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
        )
        self._failures_before[response["executionArn"]] = failures_before
        return response["executionArn"]

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

        If a thread dies meanwhile (moto's interpreter runs the execution, its program and
        each Map worker in threads; a dead worker leaves its job open and the execution
        RUNNING forever), the execution is stopped and reported FAILED with INTERNAL_ERROR
        and the thread's exception, instead of waiting for the timeout.
        """
        import boto3

        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        self.batch_count = 0
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if on_progress is not None:
                done, total = self._map_progress(sfn, execution_arn)
                # moto's item count grows while it reads the file; BuildUrls knows the total.
                on_progress(done, max(total, self.batch_count))
            if described["status"] in TERMINAL:
                return described
            failure = self._thread_failure_since_start(execution_arn)
            if failure is not None:
                return self._stop_for_internal_error(sfn, described, failure)
            if time.monotonic() > deadline:
                sfn.stop_execution(executionArn=execution_arn, cause="enrichctl local timeout")
                raise LocalRunError(f"the execution did not finish within {timeout_s:.0f} s")
            time.sleep(0.05)

    def _thread_failure_since_start(self, execution_arn: str) -> ThreadFailure | None:
        failures = self.aws.thread_failures if self.aws else []
        before = self._failures_before.get(execution_arn, 0)
        return failures[before] if len(failures) > before else None

    @staticmethod
    def _stop_for_internal_error(
        sfn: Any, described: dict[str, Any], failure: ThreadFailure
    ) -> dict[str, Any]:
        # Short enough for the one-line result (200 characters); the rest goes to the file.
        cause = (
            f"{failure.describe()} in a thread of moto's interpreter (a fault of the local "
            f"runner, not of the pipeline); run stopped, traceback in {INTERNAL_ERROR_FILE}"
        )
        with contextlib.suppress(Exception):  # moto may be past helping; the report is ours
            sfn.stop_execution(
                executionArn=described["executionArn"], error=INTERNAL_ERROR, cause=cause[:256]
            )
        return {
            **described,
            "status": "FAILED",
            "error": INTERNAL_ERROR,
            "cause": cause,
            "internal_error": f"thread {failure.thread!r} died in {failure.where}\n\n"
            + failure.traceback,
        }

    @staticmethod
    def _map_progress(sfn: Any, execution_arn: str) -> tuple[int, int]:
        done = total = 0
        with contextlib.suppress(Exception):
            for run in sfn.list_map_runs(executionArn=execution_arn)["mapRuns"]:
                counts = sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]
                total += counts["total"]
                done += counts["succeeded"] + counts["failed"] + counts["aborted"]
                done += counts["timedOut"]
        return done, total

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's full event history."""
        import boto3

        sfn = boto3.client("stepfunctions")
        events: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
            if token:
                kwargs["nextToken"] = token
            page = sfn.get_execution_history(**kwargs)
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def failed_records(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's failure record: batch ID -> the failed Map item (with its error)."""
        import boto3

        from enrich_shared.storage import failed_record_keys  # the same listing as the Lambdas

        s3 = boto3.client("s3")
        records: dict[str, dict[str, Any]] = {}
        for key in failed_record_keys(self.bucket, run_id, s3):
            body = json.loads(s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            records[str(body.get("batch_id", key))] = body
        return records

    def read_json(self, key: str) -> Any:
        """Read one JSON object from the pipeline bucket."""
        import boto3

        body = boto3.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return json.loads(body)

    def export_run(self, run_id: str, target: Path) -> int:
        """Copy `runs/<run_id>/` from moto's S3 to `target` (moto forgets it on exit)."""
        import boto3

        s3 = boto3.client("s3")
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"runs/{run_id}/"
        ):
            for obj in page.get("Contents", []):
                path = target / obj["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read())
                count += 1
        return count

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
        states, parent_transitions = _state_rows(events, self.local, self.functions, invocations)
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


def default_run_id() -> str:
    """`local-<UTC timestamp>`: unique enough for runs on one machine."""
    return "local-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "runs in-process under enrichctl local\n")
    return buffer.getvalue()


def _seconds(start: Any, end: Any) -> float:
    try:
        return max(0.0, (end - start).total_seconds())
    except TypeError:
        return 0.0


def _state_rows(
    events: list[dict[str, Any]],
    local: LocalDefinition,
    functions: dict[str, LocalFunction],
    invocations: list[Invocation],
) -> tuple[list[StateRow], int]:
    """Rows for the parent's states (from the history) and the Map children (from the hooks).

    Returns the rows and the parent's state transitions (entries + retries).
    """
    rows: dict[str, StateRow] = {}
    entered_at: dict[str, Any] = {}
    last_task_failed: dict[str, bool] = {}
    transitions = 0
    current: str | None = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            current = name
            transitions += 1
            entered_at[name] = event["timestamp"]
            row = rows.setdefault(name, StateRow(name, "RUNNING", 0, 0.0))
            if not kind.startswith("Task"):
                row.attempts += 1
            if kind.startswith(("Fail", "Succeed")):
                row.status = "FAILED" if kind.startswith("Fail") else "SUCCEEDED"
        elif kind == "TaskScheduled" and current in rows:
            rows[current].attempts += 1
            if rows[current].attempts > 1:
                transitions += 1  # a retry is a state transition too (and is billed)
        elif kind in ("TaskFailed", "TaskSucceeded") and current in rows:
            last_task_failed[current] = kind == "TaskFailed"
            if kind == "TaskFailed":
                rows[current].status = "FAILED"
                rows[current].duration_s = _seconds(entered_at.get(current), event["timestamp"])
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            row = rows.setdefault(name, StateRow(name, "RUNNING", 0, 0.0))
            # A failure handled by Catch exits the state: it was caught, not successful.
            row.status = "CAUGHT" if last_task_failed.get(name) else "SUCCEEDED"
            row.duration_s = _seconds(entered_at.get(name), event["timestamp"])
        elif kind == "MapStateFailed" and current in rows:
            rows[current].status = "FAILED"

    ordered = list(rows.values())
    by_arn = {f.arn: f for f in functions.values()}
    for map_name, child_states in _map_children(local.states.get("States", {})):
        position = next((i for i, r in enumerate(ordered) if r.name == map_name), len(ordered))
        extra: list[StateRow] = []
        for child_name, child in child_states.items():
            arn = (child.get("Parameters") or {}).get("FunctionName")
            function = by_arn.get(arn)
            if function is None:
                continue
            calls = [c for c in invocations if c.function == function.name]
            if not calls:
                continue
            failures = sum(1 for c in calls if c.error_type)
            span = max(c.ended for c in calls) - min(c.started for c in calls)
            status = "SUCCEEDED" if failures == 0 else f"{failures} attempts failed"
            extra.append(StateRow(f"{map_name} > {child_name}", status, len(calls), span))
        ordered[position + 1 : position + 1] = extra
    return ordered, transitions


def _map_children(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if state.get("Type") == "Map" and processor:
            yield name, processor.get("States", {})


# --------------------------------------------------------------------------- enrichctl local
@dataclass
class LocalRunOptions:
    """The flags of `enrichctl local` (see its --help)."""

    rows: int | None = None
    max_concurrency: int | None = None
    api_latency_ms: int = 0
    api_fail_rate: float = 0.0
    api_fail_status: int = 503
    retry_waits: str = "skip"
    output_dir: Path = DEFAULT_OUTPUT_DIR
    snowflake_secret_file: Path | None = None
    api_url: str | None = None
    run_id: str | None = None
    timeout_s: float = 600.0
    #: Start with the schedule's input for this time instead of a manual run's.
    scheduled_time: str | None = None
    #: Consecutive nights (executions) against the same Snowflake, bucket and API.
    nights: int = 1
    #: The first night ignores the state table (the manual input `{"full": true}`).
    full: bool = False
    #: `snowflake.incremental.refreshAfterDays` for this run (None: as in cdk.json).
    refresh_after_days: int | None = None

    def validate(self) -> None:
        """Raise `LocalRunError` with the fix for the first bad value."""
        if self.rows is not None and self.rows < 0:
            raise LocalRunError(f"--rows {self.rows}: use 0 or more rows")
        if self.max_concurrency is not None and not 1 <= self.max_concurrency <= 10_000:
            raise LocalRunError(f"--max-concurrency {self.max_concurrency}: use 1 to 10000")
        if self.api_latency_ms < 0:
            raise LocalRunError(f"--api-latency-ms {self.api_latency_ms}: use 0 or more")
        if not 0.0 <= self.api_fail_rate <= 1.0:
            raise LocalRunError(f"--api-fail-rate {self.api_fail_rate}: use a share from 0 to 1")
        if not 400 <= self.api_fail_status <= 599:
            raise LocalRunError(
                f"--api-fail-status {self.api_fail_status}: use an HTTP error status (400-599)"
            )
        if not 1 <= self.nights <= MAX_NIGHTS:
            raise LocalRunError(f"--nights {self.nights}: use 1 to {MAX_NIGHTS} consecutive nights")
        if self.refresh_after_days is not None and not 1 <= self.refresh_after_days <= 3650:
            raise LocalRunError(
                f"--refresh-after-days {self.refresh_after_days}: use 1 to 3650 days"
            )
        if self.retry_waits not in ("skip", "real"):
            raise LocalRunError(f"--retry-waits {self.retry_waits}: use 'real' or 'skip'")
        if self.api_url is not None and not re.match(r"^https?://[^/\s]+", self.api_url):
            raise LocalRunError(f"--api-url {self.api_url!r}: use an http(s):// URL")
        if self.snowflake_secret_file is not None:
            read_secret_file(self.snowflake_secret_file)
        if self.scheduled_time is not None:
            run_id = run_id_in({"scheduled_time": self.scheduled_time}, "")
            if not run_id:
                raise LocalRunError(
                    f"--scheduled-time {self.scheduled_time!r}: use an ISO 8601 time with a "
                    "zone, e.g. 2026-11-25T02:00:00Z"
                )

    def run_input(self, night: int = 1) -> dict[str, Any]:
        """The execution input of night `night` (1-based): the schedule's shape with
        --scheduled-time (one day later each night), else a manual run with its own ID.
        --full adds `"full": true` to the first night only."""
        run_input: dict[str, Any]
        if self.scheduled_time is not None:
            # What EventBridge Scheduler sends (stacks/schedule.py): the pipeline derives the ID.
            when = self.scheduled_time
            if night > 1:
                start = datetime.fromisoformat(self.scheduled_time.replace("Z", "+00:00"))
                when = (start + timedelta(days=night - 1)).isoformat()
            run_input = {"trigger": "schedule", "scheduled_time": when}
        else:
            run_id = self.run_id or default_run_id()
            if self.run_id and night > 1:
                run_id = f"{self.run_id}-night{night}"
            run_input = {"run_id": run_id, "trigger": "manual"}
        if self.full and night == 1:
            run_input["full"] = True
        return run_input

    def context_overrides(self) -> dict[str, Any]:
        """CDK context that shapes the synthesized template (only what the flags change)."""
        overrides: dict[str, Any] = {}
        if self.max_concurrency is not None:
            overrides["pipeline.enrichment.maxConcurrency"] = self.max_concurrency
        if self.refresh_after_days is not None:
            overrides["pipeline.snowflake.incremental.refreshAfterDays"] = self.refresh_after_days
        return overrides


def read_secret_file(path: Path) -> dict[str, Any]:
    """Read a Snowflake secret JSON file (same fields as the deployed secret)."""
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LocalRunError(f"--snowflake-secret-file {path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise LocalRunError(f"--snowflake-secret-file {path}: not JSON ({exc.msg})") from None
    missing = (
        [k for k in ("account", "user") if not value.get(k)] if isinstance(value, dict) else []
    )
    if not isinstance(value, dict) or missing:
        raise LocalRunError(
            f"--snowflake-secret-file {path}: needs a JSON object with account, user and "
            "private_key or password"
        )
    return value


def _stream_handlers() -> Iterator[logging.StreamHandler[Any]]:
    for name in list(logging.root.manager.loggerDict):
        for handler in getattr(logging.getLogger(name), "handlers", []):
            if isinstance(handler, logging.StreamHandler):
                yield handler


def _set_stream(handler: logging.StreamHandler[Any], stream: Any) -> None:
    """`handler.setStream(stream)`, except that a closed old stream is not flushed first."""
    if getattr(handler.stream, "closed", False):
        with handler.lock:  # type: ignore[union-attr]
            handler.stream = stream
    else:
        handler.setStream(stream)


@contextlib.contextmanager
def _handler_output_to(stream: Any) -> Iterator[None]:
    """Send handler logs (Powertools Logger) and anything they print to `stream`."""
    stdout = sys.stdout
    # The steps' Powertools logger always goes to `stream`, whatever stdout it was created
    # with (under pytest, the capture of collection time): its lines are the handler log.
    steps = set(logging.getLogger("imdb-enrichment").handlers)
    for handler in _stream_handlers():
        # A closed stream is an earlier stdout that went away (pytest's capture of an
        # earlier test, whose handlers were put back there): writing to it fails noisily.
        if (
            handler in steps
            or handler.stream in (stdout, sys.__stdout__)
            or getattr(handler.stream, "closed", False)
        ):
            _set_stream(handler, stream)
    quiet = [(logging.getLogger(n), logging.getLogger(n).level) for n in ("moto", "botocore")]
    for logger, _ in quiet:
        logger.setLevel(logging.CRITICAL)  # moto logs every failed state at ERROR
    try:
        with contextlib.redirect_stdout(stream), warnings.catch_warnings():
            # Powertools warns on stderr when a failing handler published no metric.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            yield
    finally:
        # Includes loggers created during the run (handlers imported for the first time):
        # they captured `stream` as their stdout, which is about to be closed.
        for handler in _stream_handlers():
            if handler.stream is stream:
                _set_stream(handler, stdout)
        for logger, level in quiet:
            logger.setLevel(level)


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


def run_local(
    options: LocalRunOptions,
    *,
    template: dict[str, Any] | None = None,
    on_event: Callable[[str, Any], None] | None = None,
) -> RunReport:
    """`run_nights`, returning the last night's report (one night unless options.nights)."""
    return run_nights(options, template=template, on_event=on_event).last


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
                    api_key=_local_api_key(template),
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
        stack.enter_context(_handler_output_to(log_file))
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


def _local_api_key(template: dict[str, Any]) -> tuple[str, str] | None:
    """(header, key) the local API demands when the stack configures an API key secret."""
    for spec in local_definition(template).functions.values():
        if spec.environment.get("API_KEY_SECRET_NAME"):
            return spec.environment.get("API_KEY_HEADER", "x-api-key"), LOCAL_API_KEY
    return None


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
