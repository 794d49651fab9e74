"""Guard and proof of the moto hooks `enrichctl local` relies on (moto pinned at 5.2.5).

The first test fails with a clear message if moto moves the attributes we patch. The
second proves, with a small CDK-synthesized state machine of the same shape as ours (Lambda
task with Retry/Catch, Distributed Map over an S3 JSON file with EXPRESS children, Catch to
an aws-sdk s3:putObject, listObjectsV2 + Choice + Fail), that the hooks really do what the
runner needs: our handlers run in-process with the template's environment, `errorType`
drives Retry/Catch, and every backoff wait is recorded, not slept.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
import time
from importlib import metadata

import boto3
import pytest

from enrichctl.local_run.definition import LocalNames, local_definition
from enrichctl.local_run.moto_hooks import (
    HookDriftError,
    LocalFunction,
    LocalLambdaRuntime,
    check_hooks,
    local_aws,
)
from enrichctl.local_run.template import CACHE_DIR, REPO_ROOT

JSII_ENV = {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20,22",
}


def test_moto_hooks_are_where_the_local_runner_patches_them():
    # If this fails, read the message: it names the hook that moved and what to do.
    check_hooks()


def test_the_guard_fails_loudly_when_a_hook_moves(monkeypatch):
    import moto
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    monkeypatch.setattr(moto, "__version__", "9.9.9")
    monkeypatch.setattr(retrier_decl, "time", object())
    with pytest.raises(HookDriftError) as raised:
        check_hooks()
    message = str(raised.value)
    assert "moto is 9.9.9" in message and "5.2.5" in message
    assert "retrier_decl.time is no longer the time module" in message
    assert "tests/workflow/test_moto_hooks.py" in message  # says what to do next


def test_the_guard_fails_when_a_map_worker_loop_changes(monkeypatch):
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E501
        distributed_item_processor_worker as worker,
    )

    def _eval_pool(self, job, worker_frame):  # what a moto upgrade might turn it into
        while job is not None:
            job = self._job_pool.next_job()

    monkeypatch.setattr(worker.DistributedItemProcessorWorker, "_eval_pool", _eval_pool)
    with pytest.raises(HookDriftError, match=r"DistributedItemProcessorWorker\._eval_pool no"):
        check_hooks()


class FlakyError(Exception):
    pass


class FatalError(Exception):
    pass


class RetryableEnrichError(Exception):
    pass


def _tiny_template() -> dict:
    os.environ.update(JSII_ENV)
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk import aws_stepfunctions_tasks as tasks

    app = cdk.App()
    stack = cdk.Stack(app, "Tiny")
    bucket = s3.Bucket(stack, "Data")

    def function(name: str) -> lambda_.Function:
        return lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
            environment={"BUCKET_NAME": bucket.bucket_name, "GREETING": "hello"},
        )

    prepare = tasks.LambdaInvoke(
        stack,
        "Prepare",
        lambda_function=function("PrepareFn"),
        output_path="$.Payload",
        payload=sfn.TaskInput.from_object({"input.$": "$"}),
    )
    prepare.add_retry(
        errors=["FlakyError"],
        interval=cdk.Duration.seconds(2),
        backoff_rate=3,
        max_attempts=3,
        max_delay=cdk.Duration.seconds(5),
        jitter_strategy=sfn.JitterType.FULL,
    )
    prepare.add_catch(
        sfn.Fail(stack, "PrepareFailed", error="PrepareFailed", cause="prepare failed"),
        errors=["FatalError"],
    )
    invoke = tasks.LambdaInvoke(
        stack, "Invoke", lambda_function=function("ItemFn"), output_path="$.Payload"
    )
    invoke.add_retry(
        errors=["RetryableEnrichError"],
        interval=cdk.Duration.seconds(1),
        backoff_rate=2,
        max_attempts=2,
    )
    record = tasks.CallAwsService(
        stack,
        "RecordFailure",
        service="s3",
        action="putObject",
        parameters={
            "Bucket": bucket.bucket_name,
            "Key.$": "States.Format('runs/{}/failed/{}.json', $.run_id, $.batch_id)",
            "Body.$": "States.JsonToString($)",
        },
        iam_resources=[bucket.arn_for_objects("*")],
        result_path=sfn.JsonPath.DISCARD,
    )
    invoke.add_catch(record, errors=["States.ALL"], result_path="$.error")
    each = sfn.DistributedMap(
        stack,
        "EachItem",
        max_concurrency=3,
        item_reader=sfn.S3JsonItemReader(bucket=bucket, key=sfn.JsonPath.string_at("$.items_key")),
        item_selector={
            "batch_id.$": "$$.Map.Item.Value.batch_id",
            "run_id.$": "$.run_id",
        },
        result_path=sfn.JsonPath.DISCARD,
        map_execution_type=sfn.StateMachineType.EXPRESS,
    )
    each.item_processor(invoke)
    listed = tasks.CallAwsService(
        stack,
        "ListFailures",
        service="s3",
        action="listObjectsV2",
        parameters={
            "Bucket": bucket.bucket_name,
            "Prefix.$": "States.Format('runs/{}/failed/', $.run_id)",
        },
        iam_resources=[bucket.bucket_arn],
        result_selector={"count.$": "$.KeyCount"},
        result_path="$.failed",
    )
    outcome = (
        sfn.Choice(stack, "AnyFailed")
        .when(
            sfn.Condition.number_greater_than("$.failed.count", 0),
            sfn.Fail(stack, "ItemsFailed", error="ItemsFailed", cause="see failed/"),
        )
        .otherwise(sfn.Succeed(stack, "Done"))
    )
    sfn.StateMachine(
        stack,
        "Machine",
        definition_body=sfn.DefinitionBody.from_chainable(
            prepare.next(each).next(listed).next(outcome)
        ),
    )
    return app.synth().get_stack_by_name("Tiny").template


@pytest.fixture(scope="module")
def tiny_template() -> dict:
    # Cached like the pipeline's template: keyed on this builder's source and the CDK version.
    key = hashlib.sha256(
        (inspect.getsource(_tiny_template) + metadata.version("aws-cdk-lib")).encode()
    ).hexdigest()[:16]
    cache = CACHE_DIR / f"tiny-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    template = _tiny_template()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(template))
    tmp.replace(cache)
    return template


def _run(definition_text: str, execution_input: dict, timeout_s: float = 60) -> dict:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="tiny", definition=definition_text, roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError("tiny execution did not finish")


def test_synthesized_machine_runs_real_handlers_with_retry_catch_and_failure_record(
    tiny_template,
):
    local = local_definition(tiny_template, LocalNames())
    assert [r.split(":")[0] for r in local.rewrites] == ["EachItem"]
    assert '"ExecutionType":"EXPRESS"' not in local.definition
    bucket = local.buckets[next(iter(local.buckets))]
    prepare_spec = next(f for f in local.functions.values() if f.logical_id.startswith("Prepare"))
    item_spec = next(f for f in local.functions.values() if f.logical_id.startswith("ItemFn"))
    assert prepare_spec.environment == {"BUCKET_NAME": bucket, "GREETING": "hello"}

    prepare_calls: list[dict] = []
    seen_env: list[str | None] = []

    def prepare(event, context):
        prepare_calls.append(event)
        seen_env.append(os.environ.get("BUCKET_NAME"))
        if len(prepare_calls) < 3:
            raise FlakyError("try again")
        return {"run_id": "r1", "items_key": "runs/r1/items.json"}

    def item(event, context):
        if event["batch_id"] == "b2":
            raise RetryableEnrichError("always 500")
        if event["batch_id"] == "b3":
            raise FatalError("rejected")
        return {"batch_id": event["batch_id"]}

    runtime = LocalLambdaRuntime(
        [
            LocalFunction(prepare_spec.name, prepare_spec.arn, prepare, prepare_spec.environment),
            LocalFunction(item_spec.name, item_spec.arn, item, item_spec.environment),
        ]
    )
    with local_aws(runtime) as aws:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        items = [{"batch_id": f"b{i}"} for i in range(5)]
        s3.put_object(Bucket=bucket, Key="runs/r1/items.json", Body=json.dumps(items))
        result = _run(local.definition, {"hello": "world"})

        assert result["status"] == "FAILED"
        assert result["error"] == "ItemsFailed"
        # Handlers ran in-process with the template's environment (tokens resolved).
        assert seen_env == [bucket] * 3
        assert prepare_calls[0] == {"input": {"hello": "world"}}
        # errorType drove Retry: FlakyError twice, then success; b2 retried twice; b3 not.
        item_calls = [i.event["batch_id"] for i in runtime.invocations_of(item_spec.name)]
        assert sorted(item_calls) == ["b0", "b1", "b2", "b2", "b2", "b3", "b4"]
        # The Catch wrote one failure record per failed item, with the error name.
        keys = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix="runs/r1/failed/")["Contents"]
        ]
        assert keys == ["runs/r1/failed/b2.json", "runs/r1/failed/b3.json"]
        b3 = json.loads(s3.get_object(Bucket=bucket, Key=keys[1])["Body"].read())
        assert b3["error"]["Error"] == "FatalError"
        assert json.loads(b3["error"]["Cause"])["errorType"] == "FatalError"

    waits = aws.retry_waits
    prepare_waits = [w for w in waits if w.state == "Prepare"]
    assert [w.error for w in prepare_waits] == ["FlakyError", "FlakyError"]
    assert [w.ceiling for w in prepare_waits] == [2.0, 5.0]  # 2*3^0, min(2*3^1, 5)
    assert all(w.jitter == "FULL" and 0 <= w.seconds <= w.ceiling for w in prepare_waits)
    assert all(not w.slept for w in waits)
    invoke_waits = [w for w in waits if w.state == "Invoke"]
    assert [(w.seconds, w.error) for w in invoke_waits] == [
        (1.0, "RetryableEnrichError"),
        (2.0, "RetryableEnrichError"),
    ]


#: Items one Map worker takes in the long-map test: moto's own worker died past ~1,000.
LONG_MAP_ITEMS = 1_200


def test_a_map_worker_takes_more_than_1000_items(tiny_template, tmp_path):
    # `enrichctl local --rows 80000 --max-concurrency 1` (1,143 batches, one worker) died in
    # moto's Map worker with RecursionError and never ended. A child process runs it, so a
    # hang costs this test its timeout, never the suite.
    template = tmp_path / "tiny.json"
    template.write_text(json.dumps(tiny_template))
    command = [sys.executable, "-m", "tests.workflow.long_map", str(template), str(LONG_MAP_ITEMS)]
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-1500:]
        pytest.fail(f"{LONG_MAP_ITEMS} items through one Map worker did not end in 240 s: {tail!r}")

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "status": "SUCCEEDED",
        "error": None,
        "lambda_calls": 1,
        "succeeded_items": LONG_MAP_ITEMS,
        "thread_failures": [],
    }
