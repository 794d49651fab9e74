"""The places where moto 5.2.5 is hooked so the deployed state machine runs locally.

1. `moto.awslambda_simple.models.LambdaSimpleBackend.invoke` (used by moto's Step Functions
   interpreter for `arn:aws:states:::lambda:invoke` when `"lambda": {"use_docker": False}`)
   is redirected to our real handlers, called in-process with that function's environment.
   Exceptions become Lambda's error envelope (`x-amz-function-error` + `errorType`), so the
   definition's `Retry`/`Catch` rules match our error class names.
2. `moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time` (its only use is
   `time.sleep(interval)` before a retry) is replaced so each backoff wait is recorded, with
   the retrier that produced it, and either skipped or really slept.
   `RetrierDecl._eval_body` is wrapped only to know which retrier/state is waiting.
3. The Map workers' `_eval_pool` (`IterationWorker`, `DistributedItemProcessorWorker`,
   `DistributedIteratorWorker`) calls itself once per item the worker takes, so past ~1,000
   items per worker (e.g. 80,000 rows at MaxConcurrency 1) the thread dies with
   `RecursionError`, its job is never closed and the execution never ends. It is replaced by
   the same steps in a loop (`_looping_eval_pool`).
4. `threading.excepthook` records any exception that kills a thread (moto runs each
   execution, state machine program and Map worker in its own thread), so the runner can
   fail the run with that error instead of waiting for an execution that will never end.

`check_hooks()` verifies all of this still holds; the guard test calls it so a moto upgrade
that moves these hooks fails loudly instead of silently running the wrong thing.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

PINNED_MOTO_VERSION = "5.2.5"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
RETRY_WAIT_MODES = ("skip", "real")

LAMBDA_HOOK = "moto.awslambda_simple.models.LambdaSimpleBackend.invoke"
RETRY_SLEEP_HOOK = "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time"
RETRIER_EVAL_HOOK = (
    "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.RetrierDecl._eval_body"
)
_MAP_ITERATION = "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration."
#: Map workers whose `_eval_pool` recurses once per item: (module, class, how it opens a job's
#: frame, how it releases a frame, whether the last job's event is the worker's source event).
MAP_WORKER_POOLS = (
    (
        _MAP_ITERATION + "iteration_worker",
        "IterationWorker",
        "open_inner_frame",
        "close_frame",
        True,
    ),
    (
        _MAP_ITERATION + "itemprocessor.distributed_item_processor_worker",
        "DistributedItemProcessorWorker",
        "open_inner_frame",
        "delete_frame",
        False,
    ),
    (
        _MAP_ITERATION + "iterator.distributed_iterator_worker",
        "DistributedIteratorWorker",
        "open_frame",
        "delete_frame",
        False,
    ),
)
#: The recursive call in moto's `_eval_pool` that `_looping_eval_pool` replaces.
MAP_POOL_RECURSION = "self._eval_pool(job=next_job, worker_frame=worker_frame)"
ERROR_TYPE_READER = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_lambda.StateTaskServiceLambda._from_error"
)


class HookDriftError(RuntimeError):
    """moto changed in a way that breaks the local runner's hooks."""


def check_hooks() -> None:
    """Raise `HookDriftError` naming what moved if any hook this module relies on changed."""
    import moto
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda,
    )

    problems: list[str] = []
    if moto.__version__ != PINNED_MOTO_VERSION:
        problems.append(
            f"moto is {moto.__version__}, the local runner was proven on {PINNED_MOTO_VERSION} "
            "(pinned in requirements/dev.txt)"
        )
    params = list(inspect.signature(LambdaSimpleBackend.invoke).parameters)
    expected = ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
    if params != expected:
        problems.append(f"{LAMBDA_HOOK} signature is {params}, expected {expected}")
    if getattr(retrier_decl, "time", None) is not time:
        problems.append(f"{RETRY_SLEEP_HOOK} is no longer the time module")
    source = inspect.getsource(retrier_decl.RetrierDecl._eval_body)
    if "time.sleep(" not in source:
        problems.append(f"{RETRIER_EVAL_HOOK} no longer waits with time.sleep()")
    for attr in ("interval_seconds", "backoff_rate", "max_delay_seconds", "jitter_strategy"):
        if not hasattr(retrier_decl.RetrierDecl(error_equals=None), attr):  # type: ignore[arg-type]
            problems.append(f"RetrierDecl has no attribute {attr!r}")
    reader = inspect.getsource(state_task_service_lambda.StateTaskServiceLambda._from_error)
    if '"errorType"' not in reader:
        problems.append(f"{ERROR_TYPE_READER} no longer reads errorType from the Lambda payload")
    problems += _map_pool_drift()
    if problems:
        raise HookDriftError(
            "moto hooks used by `enrichctl local` moved: "
            + "; ".join(problems)
            + ". Re-prove them (tests/workflow/test_moto_hooks.py) and update "
            "enrichctl/local_run/moto_hooks.py, or pin moto back."
        )


def _map_pool_drift() -> list[str]:
    """What no longer matches the Map worker code `_looping_eval_pool` reproduces."""
    problems = []
    for module_name, class_name, open_frame, release_frame, marks_last in MAP_WORKER_POOLS:
        where = f"{module_name}.{class_name}._eval_pool"
        try:
            worker = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            problems.append(f"{where} is gone")
            continue
        own = vars(worker).get("_eval_pool")  # defined by this class, not inherited
        source = inspect.getsource(own) if own is not None else ""
        expected = [
            MAP_POOL_RECURSION,
            f"job_frame = worker_frame.{open_frame}()",
            f"worker_frame.{release_frame}(job_frame)",
            f"self._env.{release_frame}(worker_frame)",
            "self._eval_job(env=job_frame, job=job)",
            "self._job_pool.close_job(job)",
            "self._job_pool.next_job()",
        ]
        if marks_last:
            expected.append("last_published_event_id")
        missing = [line for line in expected if line not in source]
        if missing:
            problems.append(f"{where} no longer reads as the loop replacing it assumes: {missing}")
    return problems


def _looping_eval_pool(
    open_frame: str, release_frame: str, marks_last: bool
) -> Callable[[Any, Any, Any], None]:
    """moto's `_eval_pool` with its tail call (one per item) turned into a loop.

    Same steps in the same order: evaluate the job in its own frame, stop on an error or a
    stop signal, otherwise close the job and take the next one; release the worker's frame
    when there is nothing left.
    """

    def _eval_pool(worker: Any, job: Any, worker_frame: Any) -> None:
        release_worker_frame = getattr(worker._env, release_frame)
        while job is not None:
            job_frame = getattr(worker_frame, open_frame)()
            worker._eval_job(env=job_frame, job=job)
            getattr(worker_frame, release_frame)(job_frame)
            if isinstance(job.job_output, Exception) or worker.stopped():
                release_worker_frame(worker_frame)
                worker._job_pool.close_job(job)
                return
            next_job = worker._job_pool.next_job()
            if next_job is None:
                if marks_last:  # the next state's events follow the last iteration's
                    worker_frame.event_history_context.source_event_id = (
                        job_frame.event_history_context.last_published_event_id
                    )
                release_worker_frame(worker_frame)
                worker._job_pool.close_job(job)
                return
            worker._job_pool.close_job(job)
            job = next_job
        release_worker_frame(worker_frame)

    return _eval_pool


@dataclass
class ThreadFailure:
    """An exception that ended a thread (moto's interpreter threads or ours)."""

    thread: str
    error_type: str
    message: str
    where: str
    traceback: str

    def describe(self) -> str:
        """`RecursionError: maximum recursion depth exceeded` (message cut at 80 characters)."""
        message = self.message if len(self.message) <= 80 else self.message[:77] + "..."
        return f"{self.error_type}: {message}"


class _ThreadFailureRecorder:
    """Replaces `threading.excepthook` while moto runs: records instead of printing.

    moto's worker threads are daemons whose death nobody joins: a Map worker that dies keeps
    its job open, and the execution then waits for it forever. The runner polls `failures`.
    """

    def __init__(self) -> None:
        self.failures: list[ThreadFailure] = []
        self._lock = threading.Lock()

    def __call__(self, args: Any) -> None:
        frames = traceback.extract_tb(args.exc_traceback) if args.exc_traceback else []
        last = frames[-1] if frames else None
        where = f"{last.name} at {_short_path(last.filename)}:{last.lineno}" if last else "?"
        failure = ThreadFailure(
            thread=getattr(args.thread, "name", "?"),
            error_type=getattr(args.exc_type, "__name__", str(args.exc_type)),
            message=str(args.exc_value)[:500],
            where=where,
            traceback="".join(
                traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
            ),
        )
        with self._lock:
            self.failures.append(failure)


def _short_path(filename: str) -> str:
    """`moto/stepfunctions/...py` instead of the whole site-packages path."""
    marker = "/site-packages/"
    return filename.split(marker, 1)[1] if marker in filename else filename


@dataclass
class LocalFunction:
    """A Lambda function the state machine invokes, run in-process."""

    name: str
    arn: str
    #: `package.module.function` (Lambda's handler string) or the callable itself.
    handler: str | Callable[[Any, Any], Any]
    environment: dict[str, str] = field(default_factory=dict)
    timeout_s: int = 30
    memory_mb: int = 128

    def resolve_handler(self) -> Callable[[Any, Any], Any]:
        """Import the handler named by the Lambda handler string."""
        if callable(self.handler):
            return self.handler
        module_name, _, attr = self.handler.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise HookDriftError(
                f"cannot import handler {self.handler!r} of function {self.name}: {exc}"
            ) from exc


@dataclass
class Invocation:
    """One in-process Lambda invocation (one attempt of a Task state)."""

    function: str
    event: Any
    started: float
    ended: float = 0.0
    error_type: str | None = None
    error_message: str | None = None
    result: Any = None

    @property
    def duration_s(self) -> float:
        """Wall time of this invocation."""
        return max(0.0, self.ended - self.started)


@dataclass
class RetryWait:
    """One backoff wait moto's interpreter asked for before a retry."""

    state: str | None
    error: str | None
    error_equals: list[str]
    retry_number: int
    interval_seconds: float
    backoff_rate: float
    max_delay_seconds: float
    jitter: str
    max_attempts: int
    seconds: float
    slept: bool

    @property
    def ceiling(self) -> float:
        """The wait before jitter: interval * rate^n, capped at the max delay."""
        raw = self.interval_seconds * self.backoff_rate**self.retry_number
        return min(raw, self.max_delay_seconds)


class LambdaContext:
    """The parts of the Lambda context object our handlers and Powertools use."""

    def __init__(self, function: LocalFunction) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + function.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _EnvironmentGate:
    """Applies one function's environment to os.environ while its invocations run.

    os.environ is process-wide, so invocations of the SAME function share it (the Map's
    concurrent InvokeEnrich calls stay concurrent) and a different function waits until
    they are done. Top-level steps are sequential anyway.

    Keys are only ever overwritten here, never removed: other threads (moto's task workers,
    botocore) iterate os.environ while handlers run, and a key vanishing mid-iteration
    surfaced as a States.Runtime `KeyError: 'BUCKET_NAME'` on a random batch. `local_aws()`
    sets every function's keys up front and restores the whole environment when it exits.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active: str | None = None
        self._count = 0

    @contextlib.contextmanager
    def use(self, name: str, env: dict[str, str]) -> Iterator[None]:
        with self._cond:
            while self._active not in (None, name):
                self._cond.wait()
            if self._count == 0:
                self._active = name
                for key, value in env.items():
                    if os.environ.get(key) != value:
                        os.environ[key] = value
            self._count += 1
        try:
            yield
        finally:
            with self._cond:
                self._count -= 1
                if self._count == 0:
                    self._active = None
                    self._cond.notify_all()


def error_envelope(exc: BaseException, response_headers: dict[str, Any]) -> bytes:
    """What Lambda answers for an unhandled exception (and its function-error header)."""
    response_headers["x-amz-function-error"] = "Unhandled"
    return json.dumps(
        {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
        }
    ).encode()


class LocalLambdaRuntime:
    """Runs registered functions in-process and records every invocation."""

    def __init__(self, functions: list[LocalFunction] | None = None) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()
        self._gate = _EnvironmentGate()
        #: Called after each invocation (e.g. to advance a progress bar).
        self.listeners: list[Callable[[Invocation], None]] = []
        #: Called with (function, event) when the state machine invokes a function, before
        #: `invoke` (so outside the invocation: e.g. what a local service needs, such as the
        #: stage files Snowflake reads on AWS); an exception fails that attempt like the
        #: handler's would. Direct `invoke()` calls do not run them.
        self.before_invoke: list[Callable[[LocalFunction, Any], None]] = []
        for function in functions or []:
            self.register(function)

    def register(self, function: LocalFunction) -> None:
        """Make `function` invocable by name and by ARN."""
        self.functions[function.name] = function

    def environment_keys(self) -> dict[str, str]:
        """Every registered function's environment in one dict (first value of a key wins)."""
        merged: dict[str, str] = {}
        for function in self.functions.values():
            for key, value in function.environment.items():
                merged.setdefault(key, value)
        return merged

    def lookup(self, function_name: str) -> LocalFunction | None:
        """Find a function by name, ARN or partial ARN."""
        name = function_name.split(":function:")[-1].split(":")[0]
        return self.functions.get(name)

    def invoke(self, function: LocalFunction, body: Any, response_headers: dict[str, Any]) -> bytes:
        """Call the handler; return its JSON result or Lambda's error envelope."""
        raw = body.decode() if isinstance(body, bytes) else body
        event = json.loads(raw) if raw else {}
        record = Invocation(function=function.name, event=event, started=time.monotonic())
        try:
            with self._gate.use(function.name, function.environment):
                handler = function.resolve_handler()
                result = handler(event, LambdaContext(function))
            record.result = result
            payload = json.dumps(result).encode()
        except Exception as exc:  # every handler failure becomes Lambda's envelope
            record.error_type = type(exc).__name__
            record.error_message = str(exc)
            payload = error_envelope(exc, response_headers)
        record.ended = time.monotonic()
        with self._lock:
            self.invocations.append(record)
        for listener in list(self.listeners):
            listener(record)
        return payload

    def run_before_hooks(
        self, function: LocalFunction, body: Any, response_headers: dict[str, Any]
    ) -> bytes | None:
        """Run `before_invoke`; None when they passed, else Lambda's error envelope."""
        if not self.before_invoke:
            return None
        raw = body.decode() if isinstance(body, bytes) else body
        try:
            event = json.loads(raw) if raw else {}
            for hook in list(self.before_invoke):
                hook(function, event)
        except Exception as exc:
            return error_envelope(exc, response_headers)
        return None

    def invocations_of(self, name: str) -> list[Invocation]:
        """Invocations of function `name`, in completion order."""
        with self._lock:
            return [i for i in self.invocations if i.function == name]


class _RetryRecorder:
    """Stands in for the `time` module inside retrier_decl: records (and maybe sleeps)."""

    def __init__(self, mode: str) -> None:
        if mode not in RETRY_WAIT_MODES:
            raise ValueError(f"retry waits must be one of {RETRY_WAIT_MODES}, got {mode!r}")
        self.mode = mode
        self.waits: list[RetryWait] = []
        self._lock = threading.Lock()
        self._context = threading.local()

    def __getattr__(self, name: str) -> Any:
        # Anything other than sleep() behaves like the real time module.
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        retrier, env, error = getattr(self._context, "current", (None, None, None))
        wait = _describe_wait(retrier, env, error, seconds, slept=self.mode == "real")
        with self._lock:
            self.waits.append(wait)
        if self.mode == "real":
            time.sleep(seconds)

    def wrap_eval(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def _eval_body(retrier: Any, env: Any) -> Any:
            top = env.stack[-1] if env.stack else None
            recorder._context.current = (retrier, env, getattr(top, "error_name", None))
            try:
                return original(retrier, env)
            finally:
                recorder._context.current = (None, None, None)

        return _eval_body


def _describe_wait(
    retrier: Any, env: Any, error: str | None, seconds: float, slept: bool
) -> RetryWait:
    state = None
    retry_number = 0
    if env is not None:
        with contextlib.suppress(Exception):
            state = env.states.context_object.context_object_data["State"]["Name"]
        with contextlib.suppress(Exception):
            retry_number = int(retrier.max_attempts._access_attempt_number(env))
    jitter = getattr(getattr(retrier, "jitter_strategy", None), "jitter_strategy", None)
    return RetryWait(
        state=state,
        error=error,
        error_equals=[
            getattr(e, "error_name", str(e))
            for e in getattr(getattr(retrier, "error_equals", None), "error_names", [])
        ],
        retry_number=retry_number,
        interval_seconds=float(getattr(retrier.interval_seconds, "seconds", 0)) if retrier else 0,
        backoff_rate=float(getattr(retrier.backoff_rate, "rate", 0)) if retrier else 0,
        max_delay_seconds=float(getattr(retrier.max_delay_seconds, "max_delays_seconds", 0))
        if retrier
        else 0,
        jitter=str(jitter) if jitter is not None else "NONE",
        max_attempts=int(getattr(retrier.max_attempts, "attempts", 0)) if retrier else 0,
        seconds=float(seconds),
        slept=slept,
    )


@dataclass
class LocalAws:
    """What `local_aws()` yields: the Lambda runtime, retry waits and dead threads."""

    runtime: LocalLambdaRuntime
    retry_recorder: _RetryRecorder
    thread_recorder: _ThreadFailureRecorder = field(default_factory=_ThreadFailureRecorder)

    @property
    def thread_failures(self) -> list[ThreadFailure]:
        """Exceptions that ended a thread since `local_aws()` began, in order."""
        return list(self.thread_recorder.failures)

    @property
    def retry_waits(self) -> list[RetryWait]:
        """Backoff waits recorded so far."""
        return list(self.retry_recorder.waits)


@contextlib.contextmanager
def local_aws(
    runtime: LocalLambdaRuntime,
    retry_waits: str = "skip",
    region: str = "us-east-1",
) -> Iterator[LocalAws]:
    """moto with state machine execution on, Lambda tasks running `runtime`'s handlers."""
    from unittest import mock

    import boto3
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    check_hooks()
    original_invoke = LambdaSimpleBackend.invoke

    def invoke(
        backend: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> Any:
        function = runtime.lookup(function_name)
        if function is None:  # not ours: moto's default echo behaviour
            return original_invoke(
                backend, function_name, qualifier, body, headers, response_headers
            )
        failed = runtime.run_before_hooks(function, body, response_headers)
        return failed if failed is not None else runtime.invoke(function, body, response_headers)

    recorder = _RetryRecorder(retry_waits)
    threads = _ThreadFailureRecorder()
    map_pools = [
        mock.patch.object(
            getattr(importlib.import_module(module_name), class_name),
            "_eval_pool",
            _looping_eval_pool(open_frame, release_frame, marks_last),
        )
        for module_name, class_name, open_frame, release_frame, marks_last in MAP_WORKER_POOLS
    ]
    # Every function's keys exist from the start, so the gate only overwrites values.
    env = {**runtime.environment_keys(), "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    # Map children run in threads, and moto's task code (and our handlers) call
    # `boto3.client()`, which creates clients from boto3's default Session; boto3 documents
    # Sessions as not thread-safe, and under load a racing creation surfaced as a
    # States.Runtime error on one batch. Creating clients one at a time costs microseconds.
    client_lock = threading.Lock()
    real_client = boto3.client

    def serialized_client(*args: Any, **kwargs: Any) -> Any:
        with client_lock:
            return real_client(*args, **kwargs)

    # Secrets cached by Powertools in an earlier run would point at an old local server.
    parameters.clear_caches()
    with (
        mock.patch.dict(os.environ, env),
        mock_aws(config=MOTO_CONFIG),
        mock.patch.object(LambdaSimpleBackend, "invoke", invoke),
        mock.patch.object(boto3, "client", serialized_client),
        mock.patch.object(retrier_decl, "time", recorder),
        mock.patch.object(
            retrier_decl.RetrierDecl,
            "_eval_body",
            recorder.wrap_eval(retrier_decl.RetrierDecl._eval_body),
        ),
        mock.patch.object(threading, "excepthook", threads),
        contextlib.ExitStack() as pools,
    ):
        for pool in map_pools:
            pools.enter_context(pool)
        try:
            yield LocalAws(runtime=runtime, retry_recorder=recorder, thread_recorder=threads)
        finally:
            parameters.clear_caches()
