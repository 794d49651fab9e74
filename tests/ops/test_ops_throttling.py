"""Throttling: the commands' clients retry it with backoff (botocore "standard" retries), and
when AWS keeps refusing, the operator reads one line. AWS answers are real moto answers
except the injected throttling responses (moto never throttles); backoff sleeps are
recorded instead of slept.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

from enrichctl.ops import executions as ex
from enrichctl.ops.aws import MAX_ATTEMPTS, Deployment, OpsError, Target


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object):
        yield self.body


def throttle(times: int, seen: list[str]):
    """A before-send handler answering ThrottlingException `times` times, then passing."""

    def handler(request, **_: object):
        seen.append(request.url)
        if len(seen) > times:
            return None  # send it to moto
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        return AWSResponse(
            request.url,
            400,
            {"Content-Type": "application/x-amz-json-1.0"},
            _Raw(body.encode()),
        )

    return handler


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Backoff waits botocore asks for, recorded and skipped."""
    waits: list[float] = []
    monkeypatch.setattr(
        botocore.endpoint, "time", SimpleNamespace(sleep=waits.append, time=time.time)
    )
    return waits


def test_throttled_calls_are_retried_with_backoff_then_succeed(deployed, seed, sleeps):
    seed([f"tt{4_000_000 + i:07d}" for i in range(5)])
    env = deployed()
    env.pipeline.run({"run_id": "throttled-ok"}, name="throttled-ok")
    dep = Deployment(Target(region="us-east-1"))
    seen: list[str] = []
    dep.sfn.meta.events.register("before-send.states.ListExecutions", throttle(2, seen))

    runs = ex.recent_runs(dep, 5)

    assert [r.name for r in runs] == ["throttled-ok"]
    assert len(seen) == 3  # two throttled attempts, then the one that got through
    assert len(sleeps) == 2 and all(s >= 0 for s in sleeps)


def test_throttling_that_never_stops_is_one_clear_line(deployed, sleeps, capsys, monkeypatch):
    from enrichctl.cli import main

    deployed()
    seen: list[str] = []
    original = Deployment.client

    def client(self, service):
        made = original(self, service)
        made.meta.events.register("before-send.states.ListExecutions", throttle(10**6, seen))
        return made

    monkeypatch.setattr(Deployment, "client", client)

    assert main(["status", "--region", "us-east-1"]) == 2

    assert len(seen) == MAX_ATTEMPTS
    assert capsys.readouterr().err == (
        f"enrichctl status: error: AWS is throttling ListExecutions (still refused after "
        f"{MAX_ATTEMPTS} attempts with backoff): wait a minute and try again\n"
    )


def test_deployment_clients_use_standard_retries():
    dep = Deployment(Target(region="eu-west-1"))
    config = dep.client("s3").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    with pytest.raises(OpsError):
        raise ex.OpsError("x")
