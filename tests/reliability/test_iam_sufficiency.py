"""IAM sufficiency: every role grants what its state or function needs (moto enforces none).

test_iam_walk.py checks that nothing beyond iam_allowed.py is granted; this checks the other
direction, with the evaluator of tests/policy_eval.py:
- the state machine role, against what each state of the SYNTHESIZED definition needs
  (Lambda invoke, each aws-sdk task's action on its resource, the Distributed Map's
  ItemReader, ResultWriter and child executions, per "IAM policies for using Distributed Map
  states": https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html);
- each function's role, against the AWS calls its code makes in local runs (aws_calls.py).
Both fail when a state or function yields nothing to check, so neither can pass vacuously.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from enrich_shared import storage
from tests.infra.conftest import all_states
from tests.policy_eval import (
    ACCOUNT,
    ALLOW,
    PARTITION,
    REGION,
    Renderer,
    Request,
    evaluate,
    role_statements,
)
from tests.reliability.aws_calls import MANAGED_UPLOAD, iam_requests, record_aws_calls

SAMPLE = "r1"  # stands in for every run-time path segment (run ID, batch ID, map run ID)
STATE_MACHINE = "AWS::StepFunctions::StateMachine"


# --------------------------------------------------------------------------- definition


def _state_machine(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((lid, res),) = [(k, r) for k, r in template["Resources"].items() if r["Type"] == STATE_MACHINE]
    return lid, res["Properties"]


def definition(template: dict[str, Any]) -> dict[str, Any]:
    """The synthesized definition with tokens rendered as the policies render them."""
    import json

    _, props = _state_machine(template)
    return json.loads(Renderer(template)(props["DefinitionString"]))


def path_of(parameters: dict[str, Any], name: str) -> str:
    """A parameter's value; a run-time expression becomes SAMPLE segments."""
    if name in parameters:
        return str(parameters[name])
    expression = parameters.get(f"{name}.$")
    if expression is None:
        raise AssertionError(f"no {name} parameter in {parameters}")
    fmt = re.fullmatch(r"States\.Format\('([^']*)'.*\)", expression)
    if fmt:
        return fmt.group(1).replace("{}", SAMPLE)
    # `$.batches_key`: a key a step returned; the steps build it with enrich_shared.storage.
    field = expression.removeprefix("$.")
    if field.endswith("_key") and hasattr(storage, field):
        return getattr(storage, field)(SAMPLE)
    raise AssertionError(f"cannot tell which resource {name} {expression!r} names: add a rule")


def bucket_arn(bucket: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}"


def sdk_requests(service: str, action: str, params: dict[str, Any]) -> list[Request]:
    """What an `arn:aws:states:::aws-sdk:<service>:<action>` task needs."""
    if service == "s3":
        bucket = bucket_arn(path_of(params, "Bucket"))
        if action in ("listObjectsV2", "listObjects"):
            prefix = path_of(params, "Prefix")
            return [Request("s3:ListBucket", bucket, context={"s3:prefix": prefix})]
        iam = {"putObject": "s3:PutObject", "getObject": "s3:GetObject"}[action]
        return [Request(iam, f"{bucket}/{path_of(params, 'Key')}")]
    if service == "cloudwatch" and action == "putMetricData":
        namespace = path_of(params, "Namespace")
        return [
            Request("cloudwatch:PutMetricData", "*", context={"cloudwatch:namespace": namespace})
        ]
    raise AssertionError(f"no rule for aws-sdk:{service}:{action}: add one here")


def state_requests(
    name: str, state: dict[str, Any], machine_arn: str, machine_name: str
) -> list[Request]:
    """The IAM requests the state machine role must pass for one state."""
    needs: list[Request] = []
    resource = state.get("Resource", "")
    params = state.get("Parameters", state.get("Arguments", {}))
    if state["Type"] == "Task":
        if resource == f"arn:{PARTITION}:states:::lambda:invoke":
            needs.append(Request("lambda:InvokeFunction", path_of(params, "FunctionName")))
        elif resource.startswith(f"arn:{PARTITION}:states:::aws-sdk:"):
            service, action = resource.removeprefix(f"arn:{PARTITION}:states:::aws-sdk:").split(":")
            needs += sdk_requests(service, action, params)
        else:
            raise AssertionError(f"state {name}: no rule for task resource {resource!r}")
    if (
        state["Type"] == "Map"
        and state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
    ):
        reader = state["ItemReader"]
        assert reader["Resource"] == f"arn:{PARTITION}:states:::s3:getObject", reader
        rp = reader["Parameters"]
        needs.append(
            Request("s3:GetObject", f"{bucket_arn(path_of(rp, 'Bucket'))}/{path_of(rp, 'Key')}")
        )
        writer = state.get("ResultWriter")
        if writer:
            wp = writer["Parameters"]
            prefix = path_of(wp, "Prefix").rstrip("/")
            objects = f"{bucket_arn(path_of(wp, 'Bucket'))}/{prefix}/{SAMPLE}/manifest.json"
            needs += [
                Request(a, objects)
                for a in (
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                )
            ]
        child = (
            f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:execution:{machine_name}/{name}:{SAMPLE}"
        )
        needs += [
            Request("states:StartExecution", machine_arn),
            Request("states:DescribeExecution", child),
            Request("states:StopExecution", child),
        ]
    return needs


def _workflow_role(template: dict[str, Any]) -> str:
    _, props = _state_machine(template)
    return props["RoleArn"]["Fn::GetAtt"][0]


def state_needs(template: dict[str, Any]) -> dict[str, list[Request]]:
    """Every Task/Map state of the synthesized definition -> the requests it makes."""
    _, props = _state_machine(template)
    machine_name = props["StateMachineName"]
    machine_arn = f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{machine_name}"
    needs = {}
    for name, state in all_states(definition(template)).items():
        if state["Type"] in ("Task", "Map"):
            needs[name] = state_requests(name, state, machine_arn, machine_name)
            assert needs[name], f"state {name}: derived no need (the walk would be vacuous)"
    return needs


def unmet(statements: list[dict[str, Any]], needs: dict[str, list[Request]]) -> list[str]:
    """`state: request` for every need the statements do not allow."""
    return [
        f"{name}: {request}"
        for name, requests in needs.items()
        for request in requests
        if evaluate(statements, request) != ALLOW
    ]


def test_the_state_machine_role_grants_what_every_state_needs(pipeline_template):
    needs = state_needs(pipeline_template)
    assert sum(len(r) for r in needs.values()) >= 5
    statements = role_statements(pipeline_template, _workflow_role(pipeline_template))
    assert unmet(statements, needs) == []


def test_each_state_machine_grant_is_needed_by_some_state(pipeline_template):
    """Drop one statement at a time: the walk must then find an unmet need (so it can fail,
    and no grant beyond logging and tracing is there for nothing)."""
    needs = state_needs(pipeline_template)
    statements = role_statements(pipeline_template, _workflow_role(pipeline_template))
    service_plumbing = ("logs:", "xray:")  # delivery of logs/traces, not a state's need
    for i, statement in enumerate(statements):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if all(a.startswith(service_plumbing) for a in actions):
            continue
        rest = statements[:i] + statements[i + 1 :]
        assert unmet(rest, needs), f"no state needs {actions} on {statement['Resource']}"


# --------------------------------------------------------------------------- functions


def _function_roles(template: dict[str, Any], pipeline: Any) -> dict[str, str]:
    """local function name -> its role's logical ID."""
    roles = {}
    for lid, spec in pipeline.local.functions.items():
        role = template["Resources"][lid]["Properties"]["Role"]
        roles[spec.name] = role["Fn::GetAtt"][0]
    return roles


def _bucket_arns(pipeline: Any) -> dict[str, str]:
    return {name: bucket_arn("{" + lid + "}") for lid, name in pipeline.local.buckets.items()}


@pytest.fixture
def recorded_runs(make_pipeline, seed):
    """A run with one permanently failing batch, then a retry run of it: every function
    runs, BuildUrls in both modes, QueryIds claims and writes, InvokeEnrich fails and
    succeeds."""
    values = [f"tt{2_300_000 + i:07d}" for i in range(150)]
    seed(values)
    failing = {"on": True}
    bad = values[100]
    pipeline, _api = make_pipeline(
        rule=lambda request: 400 if failing["on"] and bad in request.ids else None
    )
    with record_aws_calls(pipeline) as recorder:
        first = pipeline.run({"run_id": "iam-first"})
        failing["on"] = False
        retry = pipeline.run(
            {"run_id": "iam-retry", "trigger": "retry", "retry_of_run_id": "iam-first"}
        )
    assert (first.status, retry.status) == ("FAILED", "SUCCEEDED"), (first, retry)
    return pipeline, recorder


def test_every_function_role_grants_every_call_its_code_makes(pipeline_template, recorded_runs):
    pipeline, recorder = recorded_runs
    roles = _function_roles(pipeline_template, pipeline)
    buckets = _bucket_arns(pipeline)
    invoked = {i.function for i in pipeline.runtime.invocations}
    assert invoked == set(roles), f"functions never exercised: {set(roles) - invoked}"
    assert recorder.calls, "no AWS call recorded: the check would pass vacuously"
    # What the check relies on: multipart-capable uploads, listings and secret reads are seen.
    seen = {(c.service, c.operation, (c.key or "").rsplit("/", 1)[-1]) for c in recorder.calls}
    assert {
        ("s3", MANAGED_UPLOAD, "batches.json"),
        ("s3", MANAGED_UPLOAD, "ids.jsonl"),
        ("s3", "ListObjectsV2", ""),  # BuildUrls' retry mode lists failed/
        ("secretsmanager", "GetSecretValue", ""),
    } <= seen, seen
    for function, role in roles.items():
        statements = role_statements(pipeline_template, role)
        for call in set(recorder.of(function)):
            for request in iam_requests(call, buckets):
                decision = evaluate(statements, request)
                assert decision == ALLOW, f"{function} ({role}) needs {request} for {call}"
