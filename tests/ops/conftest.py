"""Fixtures for the operator commands: the synthesized pipeline under moto (the workflow
tests' fixtures, reused), plus a CloudFormation stack whose outputs point at it, so
`enrichctl run|status|show|retry` find it exactly as they find the deployed one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from enrichctl.cli import main
from enrichctl.local_api import LocalEnrichApi
from enrichctl.local_run.pipeline import LocalPipeline
from enrichctl.ops import commands
from enrichctl.ops.aws import DEFAULT_STACK

# Reused, not copied: the workflow tests' LocalPipeline factory (the template, embedded
# Snowflake and seed fixtures come from tests/conftest.py).
from tests.workflow.conftest import make_pipeline

__all__ = ["make_pipeline"]
REGION = "us-east-1"  # where LocalPipeline runs moto


@dataclass
class Deployed:
    """The stack under moto: its pipeline, the local API it calls, and a CLI runner."""

    pipeline: LocalPipeline
    api: LocalEnrichApi
    capsys: Any

    def enrichctl(self, *argv: str) -> tuple[int, str, str]:
        """Run `enrichctl ARGV --region us-east-1`; return (exit code, stdout, stderr)."""
        self.capsys.readouterr()
        code = main([*argv, "--region", REGION])
        out, err = self.capsys.readouterr()
        return code, out, err

    def execution(self, name: str) -> dict[str, Any]:
        """DescribeExecution of one of the state machine's executions, by name."""
        import boto3

        sfn = boto3.client("stepfunctions")
        for item in sfn.list_executions(stateMachineArn=self.pipeline.state_machine_arn)[
            "executions"
        ]:
            if item["name"] == name:
                return sfn.describe_execution(executionArn=item["executionArn"])
        raise AssertionError(f"no execution {name}")


def create_stack(
    pipeline: LocalPipeline, name: str = DEFAULT_STACK, outputs: dict[str, str] | None = None
) -> None:
    """A CloudFormation stack whose outputs name the local state machine and bucket
    (and `outputs`, e.g. the resources `enrichctl smoke` checks)."""
    import boto3

    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "StateMachineArn": {"Value": pipeline.state_machine_arn},
            "RunDataBucketName": {"Value": pipeline.bucket},
            **{key: {"Value": value} for key, value in (outputs or {}).items()},
        },
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture(scope="session", autouse=True)
def handler_loggers_outlive_capsys() -> None:
    """Import the handlers (their Powertools loggers bind sys.stdout when created) before any
    test's capsys replaces sys.stdout: bound to a capsys stream, they would log into a
    closed file in later tests ("--- Logging error ---" on the stderr the tests assert)."""
    import query_ids.handler  # noqa: F401


@pytest.fixture
def deployed(make_pipeline, capsys, monkeypatch):
    """Factory: `deployed(outputs=None, **make_pipeline kwargs)` -> Deployed, with the stack
    created; `outputs(pipeline)` returns more stack outputs."""
    monkeypatch.setattr(commands, "POLL_SECONDS", 0.2)
    # moto logs every missing JSON path of a Choice on stderr; the commands' stderr is asserted.
    monkeypatch.setattr(logging.getLogger("moto"), "level", logging.CRITICAL)
    monkeypatch.delenv("ENRICHCTL_STACK", raising=False)

    def make(outputs: Any = None, **kwargs: Any) -> Deployed:
        pipeline, api = make_pipeline(**kwargs)
        create_stack(pipeline, outputs=outputs(pipeline) if outputs else None)
        return Deployed(pipeline, api, capsys)

    return make
