"""Fault injection for local runs: the failures no local service produces by itself.

The local API (`enrichctl.local_api`) already scripts HTTP failures (503, 429 + Retry-After,
slow answers, connection resets) and a closed port stands in for a Snowflake that is down.
This module adds the rest, each as a context manager used around `LocalPipeline.run`:

- `s3_put_failures`: S3 refuses writes to matching keys (moto's S3 backend raises the
  error S3 would send), whether a handler or the state machine's own S3 task writes.
- `snowflake_fetch_failures`: the real connector, connected to the embedded server, loses
  the connection after some rows. fakesnow sends a whole result in one answer, so a
  network loss between result chunks cannot happen for real here: the cursor's
  `fetchmany` raises the connector's own `OperationalError` instead (a mock, on purpose).
- `lambda_timeouts`: invocations that outlive their function's timeout are answered the
  way Lambda answers them (`Sandbox.Timedout`), instead of simply running on.
- `execution_timeout`: the state machine's `TimeoutSeconds` made short (a local rewrite of
  the synthesized definition, reported like the runner's other rewrites) so a run can
  exceed it in seconds instead of hours.

Nothing here is used by `enrichctl local` itself; tests/reliability/ drives it.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from enrichctl.local_run.moto_hooks import Invocation, LocalFunction, LocalLambdaRuntime

#: What Lambda reports when a function runs past its timeout (python3.12 runtime).
LAMBDA_TIMEOUT_ERROR = "Sandbox.Timedout"


@dataclass
class FaultLog:
    """What an injected fault did: one entry per time it fired (and per time it let go)."""

    fired: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, fired: bool, what: str) -> None:
        """Record one decision of the fault."""
        with self._lock:
            (self.fired if fired else self.passed).append(what)


# --------------------------------------------------------------------------- S3
@contextlib.contextmanager
def s3_put_failures(
    key_pattern: str,
    *,
    code: str = "AccessDenied",
    message: str = "Access Denied",
    times: int | None = None,
) -> Iterator[FaultLog]:
    """S3 refuses PutObject for keys matching `key_pattern` (a regex, searched).

    `times` = how many writes fail before S3 recovers (None: every one). The default
    error, AccessDenied (403), is what a bucket policy or KMS key change produces; botocore
    does not retry it, so no SDK backoff sleeps slow the test down.
    """
    from unittest import mock

    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    original = S3Backend.put_object
    pattern = re.compile(key_pattern)
    log = FaultLog()

    def put_object(backend: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any):
        if pattern.search(key_name):
            fire = times is None or len(log.fired) < times
            log.add(fire, key_name)
            if fire:
                raise S3ClientError(code, message)
        return original(backend, bucket_name, key_name, *args, **kwargs)

    with mock.patch.object(S3Backend, "put_object", put_object):
        yield log


# --------------------------------------------------------------------------- Snowflake
@contextlib.contextmanager
def snowflake_fetch_failures(after_rows: int, *, times: int | None = 1) -> Iterator[FaultLog]:
    """Each query's cursor dies after delivering `after_rows` rows (`times` queries; None: all).

    The exception is the connector's own `OperationalError` with the message a dropped
    socket gives, i.e. what `fetchmany` raises when a result chunk cannot be downloaded.
    """
    from unittest import mock

    from snowflake.connector import errors as sf_errors
    from snowflake.connector.cursor import SnowflakeCursor

    original = SnowflakeCursor.fetchmany
    log = FaultLog()
    delivered: dict[int, int] = {}
    doomed: set[int] = set()
    lock = threading.Lock()

    def fetchmany(cursor: Any, size: int | None = None) -> list[Any]:
        key = id(cursor)
        with lock:
            if key not in delivered:
                delivered[key] = 0
                if times is None or len(doomed) < times:
                    doomed.add(key)
            sent, dies = delivered[key], key in doomed
        if dies and sent >= after_rows:
            log.add(True, f"cursor died after {sent} rows")
            raise sf_errors.OperationalError(
                msg="Connection reset by peer while fetching a result chunk (injected)",
                errno=253003,
            )
        wanted = size if size is not None else cursor.arraysize
        if dies:
            wanted = max(1, min(wanted, after_rows - sent))
        rows = original(cursor, wanted)
        with lock:
            delivered[key] += len(rows)
        return rows

    with mock.patch.object(SnowflakeCursor, "fetchmany", fetchmany):
        yield log


# --------------------------------------------------------------------------- Lambda timeouts
@dataclass
class TimeoutEnforcer:
    """What `lambda_timeouts` yields: the timed-out invocations and their still-running work."""

    timed_out: list[Invocation] = field(default_factory=list)
    stragglers: list[threading.Thread] = field(default_factory=list)

    def join(self, timeout_s: float = 30.0) -> None:
        """Wait for handlers that ran past their timeout to finish (their results are lost)."""
        deadline = time.monotonic() + timeout_s
        for thread in self.stragglers:
            thread.join(max(0.0, deadline - time.monotonic()))


@contextlib.contextmanager
def lambda_timeouts(runtime: LocalLambdaRuntime) -> Iterator[TimeoutEnforcer]:
    """Make `runtime` answer like Lambda when a handler outlives its function's timeout.

    Lambda freezes such a function and the caller gets a `Sandbox.Timedout` error; here the
    handler thread cannot be frozen, so it runs on (its result is dropped) and
    `TimeoutEnforcer.join()` waits for it before the services it uses go away.
    """
    from unittest import mock

    enforcer = TimeoutEnforcer()
    original = runtime.invoke

    def invoke(function: LocalFunction, body: Any, response_headers: dict[str, Any]) -> bytes:
        box: dict[str, Any] = {}
        headers: dict[str, Any] = {}

        def work() -> None:
            box["payload"] = original(function, body, headers)

        thread = threading.Thread(target=work, name=f"lambda-{function.name}", daemon=True)
        started = time.monotonic()
        thread.start()
        thread.join(function.timeout_s)
        if not thread.is_alive():
            response_headers.update(headers)
            return box["payload"]
        enforcer.stragglers.append(thread)
        raw = body.decode() if isinstance(body, bytes) else body
        record = Invocation(
            function=function.name,
            event=json.loads(raw) if raw else {},
            started=started,
            ended=time.monotonic(),
            error_type=LAMBDA_TIMEOUT_ERROR,
            error_message=f"Task timed out after {function.timeout_s:.2f} seconds",
        )
        enforcer.timed_out.append(record)
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {
                "errorType": LAMBDA_TIMEOUT_ERROR,
                "errorMessage": f"RequestId: {uuid.uuid4()} Error: {record.error_message}",
            }
        ).encode()

    with mock.patch.object(runtime, "invoke", invoke):
        yield enforcer


# --------------------------------------------------------------------------- execution timeout
def execution_timeout(pipeline: Any, seconds: int) -> str:
    """Set the local definition's top-level `TimeoutSeconds` (call before entering the pipeline).

    The deployed value (`workflow.timeoutMinutes`, at least 15 minutes) cannot be exceeded
    in a test; the state machine logic that enforces it is the same. Returns the rewrite
    note, also appended to the pipeline's reported rewrites.
    """
    if getattr(pipeline, "state_machine_arn", ""):
        raise RuntimeError("execution_timeout() must be applied before the pipeline is entered")
    definition = json.loads(pipeline.local.definition)
    before = definition.get("TimeoutSeconds")
    definition["TimeoutSeconds"] = int(seconds)
    pipeline.local.definition = json.dumps(definition, separators=(",", ":"))
    note = f"TimeoutSeconds {before} -> {seconds} (fault injection: execution timeout)"
    pipeline.local.rewrites.append(note)
    return note


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll `condition` until true or `timeout_s` passes (background work settling)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
