"""`enrichctl smoke` against a stack under moto: a healthy stack passes, each broken check fails
with its fix line, and the exit code says so.

The state machine, bucket and Snowflake secret are the local pipeline's (tests/ops/conftest.py);
the schedule, the alarm topic with its policy and subscription, and an alarm publishing to it
are created in moto as `cdk deploy` creates them, and the stack's outputs name them. moto
confirms every subscription at once, so the one "pending confirmation" answer is stubbed
(ListSubscriptionsByTopic only; tests/ops/stubs.py).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from tests.ops.policies import cloudwatch_allow, policy, tls_deny
from tests.ops.stubs import stub_one_call

IDS = [f"tt{3_100_000 + i:07d}" for i in range(30)]
STACK = "ImdbEnrichment"


@dataclass
class Smoked:
    """The deployed stack plus the resources `enrichctl smoke` checks."""

    env: Any
    topic: str
    schedule: str
    secret: str
    alarm: str


def _deploy_checked_resources(pipeline: Any) -> dict[str, str]:
    """Create the schedule, topic (policy, subscription), alarm; return the stack outputs."""
    sns = boto3.client("sns")
    topic = sns.create_topic(Name=f"{STACK}-AlarmTopic")["TopicArn"]
    region, account = topic.split(":")[3:5]
    alarm_prefix = f"arn:aws:cloudwatch:{region}:{account}:alarm:{STACK}-*"
    sns.set_topic_attributes(
        TopicArn=topic,
        AttributeName="Policy",
        AttributeValue=policy(tls_deny(topic), cloudwatch_allow(topic, alarm_prefix)),
    )
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{STACK}-MissedRun",
        Namespace="AWS/States",
        MetricName="ExecutionsSucceeded",
        Statistic="Sum",
        Period=3600,
        EvaluationPeriods=26,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",
        AlarmActions=[topic],
        OKActions=[topic],
    )
    boto3.client("scheduler").create_schedule(
        Name=f"{STACK}-Schedule",
        ScheduleExpression="cron(0 2 * * ? *)",
        ScheduleExpressionTimezone="Europe/Berlin",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": pipeline.state_machine_arn,
            "RoleArn": f"arn:aws:iam::{account}:role/scheduler",
        },
        State="ENABLED",
    )
    secret = pipeline.functions["query_ids"].environment["SNOWFLAKE_SECRET_NAME"]
    return {
        "AlarmTopicArn": topic,
        "ScheduleName": f"{STACK}-Schedule",
        "SnowflakeSecretName": secret,
    }


@pytest.fixture
def smoked(deployed, seed):
    """Factory: a healthy deployed stack (make_pipeline kwargs pass through; `extra_outputs`
    adds stack outputs)."""

    def make(extra_outputs: dict[str, str] | None = None, **kwargs: Any) -> Smoked:
        seed(IDS)
        env = deployed(
            outputs=lambda pipeline: {
                **_deploy_checked_resources(pipeline),
                **(extra_outputs or {}),
            },
            **kwargs,
        )
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0][
                "Outputs"
            ]
        }
        alarm = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"][0]["AlarmName"]
        return Smoked(
            env,
            outputs["AlarmTopicArn"],
            outputs["ScheduleName"],
            outputs["SnowflakeSecretName"],
            alarm,
        )

    return make


def lines(out: str) -> dict[str, str]:
    """Check name -> its line, for the `ok  name: ...` / `FAIL name: ...` lines."""
    found = {}
    for line in out.splitlines():
        match = re.match(r"(ok  |FAIL) ([^:]+): ", line)
        if match:
            found[match.group(2)] = line
    return found


def test_a_healthy_stack_passes_every_check_and_the_dry_run_sends_nothing(smoked):
    stack = smoked()

    code, out, err = stack.env.enrichctl("smoke")

    assert (code, err) == (0, "")
    checks = lines(out)
    assert list(checks) == [
        "schedule",
        "alarm subscriptions",
        "topic policy",
        "Snowflake secret",
        "dry run",
    ]
    assert all(line.startswith("ok  ") for line in checks.values()), out
    assert "ImdbEnrichment-Schedule is ENABLED (cron(0 2 * * ? *) Europe/Berlin)" in out
    assert "1 confirmed (email)" in checks["alarm subscriptions"]
    assert "CloudWatch may publish for all 1 alarms" in checks["topic policy"]
    assert f"{stack.secret} exists (value not read)" in checks["Snowflake secret"]
    name = re.search(r"dry run: (manual-\S+) SUCCEEDED", out).group(1)
    assert f"({len(IDS)} IDs in " in checks["dry run"] and "MissedRun clears" in out
    assert json.loads(stack.env.execution(name)["input"])["dry_run"] is True
    assert stack.env.api.requests == []  # a dry run sends nothing
    assert out.rstrip().endswith("all 5 checks passed")


def test_a_disabled_schedule_fails_with_its_fix(smoked):
    stack = smoked()
    scheduler = boto3.client("scheduler")
    current = scheduler.get_schedule(Name=stack.schedule)
    scheduler.update_schedule(
        Name=stack.schedule,
        ScheduleExpression=current["ScheduleExpression"],
        ScheduleExpressionTimezone=current["ScheduleExpressionTimezone"],
        FlexibleTimeWindow=current["FlexibleTimeWindow"],
        Target=current["Target"],
        State="DISABLED",
    )

    code, out, err = stack.env.enrichctl("smoke", "--no-run")

    assert (code, err) == (1, "")
    assert lines(out)["schedule"] == (
        "FAIL schedule: schedule ImdbEnrichment-Schedule is DISABLED (cron(0 2 * * ? *) "
        "Europe/Berlin): no night will run -> fix: set pipeline.schedule.enabled to true and "
        "run `npx cdk deploy`"
    )
    assert "dry run" not in lines(out)  # --no-run
    assert out.rstrip().endswith("1 of 4 checks failed")


def test_a_subscription_pending_confirmation_is_not_confirmed(smoked, monkeypatch):
    stack = smoked()
    stubs = stub_one_call(  # moto confirms every subscription at once
        monkeypatch,
        "sns",
        "sns.ListSubscriptionsByTopic",
        "list_subscriptions_by_topic",
        {
            "Subscriptions": [
                {
                    "SubscriptionArn": "PendingConfirmation",
                    "Owner": "123456789012",
                    "Protocol": "email",
                    "Endpoint": "ops@example.com",
                    "TopicArn": stack.topic,
                }
            ]
        },
        {"TopicArn": stack.topic},
    )

    code, out, _ = stack.env.enrichctl("smoke", "--no-run")

    assert code == 1
    stubs[0].assert_no_pending_responses()
    line = lines(out)["alarm subscriptions"]
    assert line.startswith(
        "FAIL alarm subscriptions: none confirmed; 1 pending confirmation (ops@example.com): "
        'alarms reach nobody -> fix: click "Confirm subscription" in the e-mail'
    )
    assert all(v.startswith("ok") for k, v in lines(out).items() if k != "alarm subscriptions")


def test_a_topic_without_subscriptions_fails(smoked):
    stack = smoked()
    sns = boto3.client("sns")
    for sub in sns.list_subscriptions_by_topic(TopicArn=stack.topic)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])

    code, out, _ = stack.env.enrichctl("smoke", "--no-run")

    assert code == 1
    assert lines(out)["alarm subscriptions"].startswith(
        "FAIL alarm subscriptions: the alarm topic has no subscription: alarms reach nobody"
    )


def test_todays_deny_only_topic_policy_fails_and_json_says_so(smoked):
    stack = smoked()
    boto3.client("sns").set_topic_attributes(
        TopicArn=stack.topic, AttributeName="Policy", AttributeValue=policy(tls_deny(stack.topic))
    )

    code, out, err = stack.env.enrichctl("smoke", "--no-run", "--json")

    assert (code, err) == (1, "")
    result = json.loads(out)  # the whole stdout is one JSON object
    assert (result["stack"], result["region"], result["ok"]) == (STACK, "us-east-1", False)
    by_name = {c["name"]: c for c in result["checks"]}
    assert [n for n, c in by_name.items() if not c["ok"]] == ["topic policy"]
    check = by_name["topic policy"]
    assert check["detail"] == (
        f"CloudWatch may not publish: alarm {stack.alarm}: no statement allows "
        "cloudwatch.amazonaws.com to sns:Publish (with aws:SourceAccount and aws:SourceArn of "
        "the alarm); no alarm would notify anyone"
    )
    assert check["fix"].startswith("the topic policy needs an Allow for cloudwatch.amazonaws.com")
    assert by_name["schedule"]["fix"] is None


def test_a_missing_secret_fails_without_reading_any_secret_value(smoked, monkeypatch):
    stack = smoked()
    boto3.client("secretsmanager").delete_secret(
        SecretId=stack.secret, ForceDeleteWithoutRecovery=True
    )
    read: list[Any] = []
    monkeypatch.setattr(
        "botocore.client.BaseClient._make_api_call",
        _recording(read, "GetSecretValue"),
    )

    code, out, _ = stack.env.enrichctl("smoke", "--no-run")

    assert code == 1
    assert lines(out)["Snowflake secret"] == (
        f"FAIL Snowflake secret: {stack.secret} does not exist in us-east-1 -> fix: create it: "
        f"`aws secretsmanager create-secret --name {stack.secret} --secret-string "
        "file://secret.json` (README, Deploy step 1)"
    )
    assert read == []


def test_a_configured_api_key_secret_is_checked_and_a_secret_being_deleted_fails(smoked):
    stack = smoked(extra_outputs={"ApiKeySecretName": "imdb-enrichment/api-key"})
    boto3.client("secretsmanager").delete_secret(SecretId=stack.secret, RecoveryWindowInDays=7)

    code, out, _ = stack.env.enrichctl("smoke", "--no-run")

    assert code == 1
    checks = lines(out)
    assert checks["Snowflake secret"] == (
        f"FAIL Snowflake secret: {stack.secret} is scheduled for deletion -> fix: restore it: "
        f"`aws secretsmanager restore-secret --secret-id {stack.secret}`"
    )
    assert checks["API key secret"].startswith(
        "FAIL API key secret: imdb-enrichment/api-key does not exist in us-east-1 -> fix: "
        "create it: `aws secretsmanager create-secret --name imdb-enrichment/api-key"
    )
    assert out.rstrip().endswith("2 of 5 checks failed")


def _recording(calls: list[Any], operation: str) -> Any:
    """A `_make_api_call` that records calls of `operation`, then makes every call."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def call(self: Any, name: str, params: Any) -> Any:
        if name == operation:
            calls.append(params)
        return original(self, name, params)

    return call


def test_on_a_terminal_the_dry_run_shows_a_spinner_with_its_name_and_elapsed_time(
    smoked, monkeypatch
):
    from rich.console import Console

    from enrichctl.ops import commands

    stack = smoked()
    screen = io.StringIO()
    # As commands._console builds it (highlight=False): with rich's highlighter a run name
    # whose random suffix reads as a number (manual-...-51e936) is split by colour codes.
    monkeypatch.setattr(
        commands,
        "_console",
        lambda: Console(file=screen, force_terminal=True, width=160, highlight=False),
    )

    code, _, _ = stack.env.enrichctl("smoke")

    assert code == 0
    shown = screen.getvalue()
    name = re.search(r"dry run (manual-\S+) ", shown).group(1)  # the spinner's line
    assert re.search(rf"dry run {name} .*0:00:0\d", shown)  # with the elapsed time
    assert f"dry run: {name} SUCCEEDED" in shown


def test_a_failed_dry_run_fails_with_where_to_look(smoked, snowflake, closed_port):
    stack = smoked(  # Snowflake down: its port refuses connections
        snowflake_secret=snowflake.secret(port=closed_port),
        env={"SNOWFLAKE_LOGIN_TIMEOUT_S": "1"},
    )

    code, out, err = stack.env.enrichctl("smoke")

    assert (code, err) == (1, "")
    line = lines(out)["dry run"]
    name = re.search(r"dry run: (manual-\S+) FAILED", line).group(1)
    assert "SnowflakeUnavailableError" in line
    assert line.endswith(
        f"-> fix: see `enrichctl show {name}`; README's alarm table (ExecutionsFailed) says "
        "where to look, then run `enrichctl smoke` again"
    )
    assert out.rstrip().endswith("1 of 5 checks failed")


def test_an_older_stack_without_the_outputs_fails_those_checks_and_runs_the_rest(deployed, seed):
    seed(IDS)
    env = deployed()  # only StateMachineArn and RunDataBucketName

    code, out, err = env.enrichctl("smoke", "--no-run")

    assert (code, err) == (1, "")
    checks = lines(out)
    assert checks["schedule"] == (
        "FAIL schedule: could not be checked -> fix: stack 'ImdbEnrichment' has no output "
        "ScheduleName: it predates enrichctl, redeploy it with `npx cdk deploy`"
    )
    assert list(checks) == ["schedule", "alarm subscriptions", "topic policy", "Snowflake secret"]
    assert all(line.startswith("FAIL") for line in checks.values())


def test_a_stack_that_is_not_deployed_is_one_clear_line(deployed):
    env = deployed()

    code, out, err = env.enrichctl("smoke", "--stack", "Elsewhere")

    assert (code, out) == (2, "")
    assert err.startswith("enrichctl smoke: error: stack 'Elsewhere' is not deployed in us-east-1")
