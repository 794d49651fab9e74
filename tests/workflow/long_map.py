"""Child process of `test_moto_hooks.py::test_a_map_worker_takes_more_than_1000_items`.

    python -m tests.workflow.long_map TEMPLATE.json ITEMS

Runs the small synthesized machine of test_moto_hooks.py (Distributed Map over an S3 JSON
file) under `local_aws()` with MaxConcurrency 1, so ONE Map worker takes all ITEMS, and
prints a JSON line with the outcome (each item is a Pass state, to keep it quick). It runs
in its own process because moto's unpatched worker dies with RecursionError past ~1,000
items and the execution then never ends: the test's subprocess timeout is what stops it,
never the test suite.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import boto3

from enrichctl.local_run.definition import LocalNames, local_definition
from enrichctl.local_run.moto_hooks import LocalFunction, LocalLambdaRuntime, local_aws


def main(template_path: str, items: int) -> dict:
    """Run the map over `items` items with one worker; return what the run did."""
    local = local_definition(json.loads(Path(template_path).read_text()), LocalNames())
    definition = json.loads(local.definition)
    (map_state,) = [s for s in definition["States"].values() if s["Type"] == "Map"]
    map_state["MaxConcurrency"] = 1
    # Each item only passes through: the test is about the worker's loop, not the item's
    # work (a Lambda task per item costs ~25 ms of moto's CPU; a Pass state a fraction).
    processor = map_state["ItemProcessor"]
    processor["StartAt"] = "Item"
    processor["States"] = {"Item": {"Type": "Pass", "End": True}}
    bucket = local.buckets[next(iter(local.buckets))]

    def prepare(event, context):
        return {"run_id": "r1", "items_key": "runs/r1/items.json"}

    def item(event, context):
        return event

    runtime = LocalLambdaRuntime(
        [
            LocalFunction(f.name, f.arn, prepare if "Prepare" in f.logical_id else item)
            for f in local.functions.values()
        ]
    )
    with local_aws(runtime) as aws:
        boto3.client("s3").create_bucket(Bucket=bucket)
        boto3.client("s3").put_object(
            Bucket=bucket,
            Key="runs/r1/items.json",
            Body=json.dumps([{"batch_id": f"b{i}"} for i in range(items)]),
        )
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="long-map",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/x",
        )["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            time.sleep(0.1)
        (map_run,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]
        counts = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])["itemCounts"]
        return {
            "status": described["status"],
            "error": described.get("error"),
            "lambda_calls": len(runtime.invocations),  # the one Prepare call
            "succeeded_items": counts["succeeded"],
            "thread_failures": [f.describe() for f in aws.thread_failures],
        }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
