"""Alarms and dashboard, checked in the synthesized template against what they watch.

An alarm on a metric nobody publishes (a wrong namespace, a dimension naming another
resource, a metric name AWS does not use) never fires and looks healthy: so each alarm's
namespace, metric and dimensions are traced here to the resource that publishes them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from enrich_shared.observability import COUNT_FIELDS
from stacks.monitoring import NIGHT_COUNTS, night_counts_query
from tests.infra.conftest import all_states, resources

#: Metrics AWS/States publishes per state machine (dimension StateMachineArn):
#: https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html
STATES_EXECUTION_METRICS = {
    "ExecutionTime",
    "ExecutionThrottled",
    "ExecutionsAborted",
    "ExecutionsFailed",
    "ExecutionsStarted",
    "ExecutionsSucceeded",
    "ExecutionsTimedOut",
}


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Alarm properties by alarm ID (the part after `<stack>-` in AlarmName)."""
    found = {}
    for res in resources(template, "AWS::CloudWatch::Alarm").values():
        props = res["Properties"]
        found[props["AlarmName"].split("-", 1)[1]] = props
    return found


def dims(props: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}


def logical_id(template: dict[str, Any], resource_type: str) -> str:
    ids = list(resources(template, resource_type))
    assert len(ids) == 1, ids
    return ids[0]


def test_state_machine_alarms_watch_this_state_machine(template: dict[str, Any]) -> None:
    sm = logical_id(template, "AWS::StepFunctions::StateMachine")
    watched = {k: v for k, v in alarms(template).items() if v["Namespace"] == "AWS/States"}
    assert set(watched) == {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
        "ExecutionThrottled",
        "MissedRun",
    }
    for alarm_id, props in watched.items():
        assert props["MetricName"] in STATES_EXECUTION_METRICS, alarm_id
        # The parent's ARN exactly: a Map Run's children publish under "<arn>/<label>".
        assert dims(props) == {"StateMachineArn": {"Ref": sm}}, alarm_id


def test_dead_letter_alarm_watches_the_schedulers_queue(template: dict[str, Any]) -> None:
    queue = logical_id(template, "AWS::SQS::Queue")
    schedule = next(iter(resources(template, "AWS::Scheduler::Schedule").values()))
    dlq = schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"]
    assert dlq == {"Fn::GetAtt": [queue, "Arn"]}
    props = alarms(template)["SchedulerDeadLetters"]
    assert (props["Namespace"], props["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert dims(props) == {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}}
    # SQS publishes nothing for an idle queue: silence must not page.
    assert props["TreatMissingData"] == "notBreaching"


def test_failed_batches_alarm_reads_what_the_state_machine_puts(
    template: dict[str, Any], definition: dict[str, Any]
) -> None:
    publish = all_states(definition)["PublishFailedBatches"]
    assert publish["Resource"].endswith(":cloudwatch:putMetricData")
    put = publish["Parameters"]
    (datum,) = put["MetricData"]
    props = alarms(template)["FailedBatches"]
    assert props["Namespace"] == put["Namespace"]
    assert props["MetricName"] == datum["MetricName"]
    assert dims(props) == {d["Name"]: d["Value"] for d in datum["Dimensions"]}
    # Put once per run (0 on a clean night): Sum >= 1 is "a batch failed for good".
    assert props["Statistic"] == "Sum" and props["Threshold"] == 1
    assert props["TreatMissingData"] == "notBreaching"


def test_the_only_custom_metric_is_failed_batches(
    template: dict[str, Any], definition: dict[str, Any]
) -> None:
    """No function may publish metrics (Powertools Metrics/EMF): counts are log fields."""
    custom = {
        p["Namespace"] for p in alarms(template).values() if not p["Namespace"].startswith("AWS/")
    }
    assert custom == {"ImdbEnrichment"}
    puts = [s for s in all_states(definition).values() if "putMetricData" in s.get("Resource", "")]
    assert len(puts) == 1
    for res in resources(template, "AWS::IAM::Policy").values():
        for stmt in res["Properties"]["PolicyDocument"]["Statement"]:
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            if "cloudwatch:PutMetricData" in actions:
                roles = res["Properties"]["Roles"]
                assert all("Workflow" in r["Ref"] for r in roles), roles


def test_every_alarm_chooses_missing_data_on_purpose(template: dict[str, Any]) -> None:
    for alarm_id, props in alarms(template).items():
        expected = "breaching" if alarm_id == "MissedRun" else "notBreaching"
        assert props["TreatMissingData"] == expected, alarm_id


def test_count_fields_are_the_ones_the_handlers_log() -> None:
    assert set(NIGHT_COUNTS) == set(COUNT_FIELDS)


def test_dashboard_counts_ids_and_batches_from_every_function_log_group(
    template: dict[str, Any],
) -> None:
    body = next(iter(resources(template, "AWS::CloudWatch::Dashboard").values()))
    parts = body["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else f"<{json.dumps(p)}>" for p in parts)
    query_widgets = [m for m in re.finditer(r'"type":"log"', text)]
    assert len(query_widgets) == 1
    for field in NIGHT_COUNTS:
        assert f"sum({field}) as {field}" in text
    function_log_groups = [
        k for k in resources(template, "AWS::Logs::LogGroup") if k.startswith("Functions")
    ]
    assert function_log_groups
    for log_group in function_log_groups:
        assert json.dumps({"Ref": log_group}) in text, log_group
    # The custom-metric graphs are gone with the metrics.
    for gone in ("IdsQueried", "BatchesBuilt", "BatchesEnriched", "EnrichFailures", "IdsLoaded"):
        assert gone not in text


@pytest.mark.parametrize("field", list(NIGHT_COUNTS))
def test_query_sums_each_field_once(field: str) -> None:
    """The only test that fails when a field is summed twice or left out of the filter (a
    line holding only that field would then be dropped): the dashboard test above checks
    only that each sum is there."""
    query = night_counts_query()
    assert query.count(f"sum({field})") == 1
    assert f"ispresent({field})" in query


def test_no_function_emits_embedded_metrics() -> None:
    """Powertools Metrics prints EMF lines that CloudWatch turns into custom metrics ($0.30 a
    metric-month each, and bytes in every log line); the counts are log fields instead."""
    lambdas = Path(__file__).resolve().parents[2] / "lambdas"
    offenders = [
        str(path.relative_to(lambdas))
        for path in lambdas.rglob("*.py")
        if re.search(r"powertools\.metrics|\bMetrics\(|log_metrics|add_metric", path.read_text())
    ]
    assert offenders == []
