"""Every alarm action can reach its topic: walked through the synthesized template's policies.

moto never evaluates SNS or KMS resource policies, so a topic policy with only a Deny (what
`enforce_ssl` alone writes) passes every local run while no alarm ever notifies anyone on
AWS. This test evaluates the real policies (tests/policy_eval.py) for the request CloudWatch
makes when an alarm fires.

Subscribers (e-mail, AWS Chatbot's Slack channel) need no grant: SNS decrypts a message
before it delivers it, so only publishers need the topic's key
(https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import resources
from tests.policy_eval import (
    ACCOUNT,
    ALLOW,
    OTHER_ACCOUNT,
    PARTITION,
    REGION,
    Renderer,
    Request,
    evaluate,
)

CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}


def alarm_arn(alarm: dict[str, Any], logical_id: str, account: str = ACCOUNT) -> str:
    """The ARN CloudWatch sends as aws:SourceArn: needs the alarm's fixed name."""
    # Without AlarmName CloudFormation generates one, which no policy written beforehand
    # can name: such an alarm cannot be scoped, so render it as a name nobody allowed.
    name = alarm["Properties"].get("AlarmName", f"{logical_id}-generated-name")
    return f"arn:{PARTITION}:cloudwatch:{REGION}:{account}:alarm:{name}"


def topic_policy(template: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    render = Renderer(template)
    statements = []
    for res in resources(template, "AWS::SNS::TopicPolicy").values():
        if topic in render(res["Properties"]["Topics"]):
            statements += render(res["Properties"]["PolicyDocument"])["Statement"]
    return statements


def key_of(template: dict[str, Any], topic_arn: str) -> str | None:
    render = Renderer(template)
    for res in resources(template, "AWS::SNS::Topic").values():
        if render({"Ref": _topic_id(template, res)}) == topic_arn:
            key = res["Properties"].get("KmsMasterKeyId")
            return None if key is None else render(key)
    raise AssertionError(f"alarm action {topic_arn} is not a topic of this stack")


def _topic_id(template: dict[str, Any], topic: dict[str, Any]) -> str:
    return next(k for k, r in template["Resources"].items() if r is topic)


def key_policy(template: dict[str, Any], key: str) -> list[dict[str, Any]]:
    logical_id = key.strip("{}").removesuffix(".Arn")
    res = template["Resources"][logical_id]
    assert res["Type"] == "AWS::KMS::Key", f"topic key {key} is not a key of this stack"
    return Renderer(template)(res["Properties"]["KeyPolicy"])["Statement"]


def alarm_deliveries(template: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(alarm logical ID, alarm, topic ARN) for every action of every alarm."""
    render = Renderer(template)
    found = []
    for lid, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        for action in props.get("AlarmActions", []) + props.get("OKActions", []):
            found.append((lid, alarm, render(action)))
    return found


def publish(arn: str, topic: str, account: str = ACCOUNT, tls: bool = True) -> Request:
    return Request(
        action="sns:Publish",
        resource=topic,
        principal=CLOUDWATCH,
        context={
            "aws:SourceArn": arn,
            "aws:SourceAccount": account,
            "aws:SecureTransport": "true" if tls else "false",
        },
    )


def use_key(arn: str, action: str, account: str = ACCOUNT) -> Request:
    return Request(
        action=action,
        resource=f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/the-topic-key",
        principal=CLOUDWATCH,
        context={"aws:SourceArn": arn, "aws:SourceAccount": account},
    )


@pytest.fixture(scope="module", params=["default", "all alarm features"])
def alarm_template(request, template) -> dict[str, Any]:
    if request.param == "default":
        return template
    from stacks.synth import synth_template

    return synth_template(
        {
            "pipeline.alarms.emails": ["oncall@example.com"],
            "pipeline.alarms.slackWorkspaceId": "T0123ABCD",
            "pipeline.alarms.slackChannelId": "C0123ABCD",
        }
    )


def test_every_alarm_action_can_publish_to_its_topic(alarm_template):
    deliveries = alarm_deliveries(alarm_template)
    alarms = {lid for lid, _, _ in deliveries}
    assert len(alarms) >= 1, "no alarm with actions found: the walk would pass vacuously"
    assert alarms == set(resources(alarm_template, "AWS::CloudWatch::Alarm")), (
        "an alarm without actions pages nobody"
    )
    for lid, alarm, topic in deliveries:
        arn = alarm_arn(alarm, lid)
        policy = topic_policy(alarm_template, topic)
        decision = evaluate(policy, publish(arn, topic), resource_policy=True)
        assert decision == ALLOW, f"{lid}: CloudWatch may not publish to its topic ({decision})"
        key = key_of(alarm_template, topic)
        if key is not None:
            statements = key_policy(alarm_template, key)
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                decision = evaluate(statements, use_key(arn, action), resource_policy=True)
                assert decision == ALLOW, f"{lid}: CloudWatch may not {action} ({decision})"


def test_the_topic_stays_tls_only(alarm_template):
    lid, alarm, topic = alarm_deliveries(alarm_template)[0]
    request = publish(alarm_arn(alarm, lid), topic, tls=False)
    assert evaluate(topic_policy(alarm_template, topic), request, resource_policy=True) != ALLOW


def test_alarms_of_another_account_or_stack_may_not_publish(alarm_template):
    lid, alarm, topic = alarm_deliveries(alarm_template)[0]
    policy = topic_policy(alarm_template, topic)
    key = key_of(alarm_template, topic)
    foreign_account = alarm_arn(alarm, lid, account=OTHER_ACCOUNT)
    other_alarm = f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:someone-elses-alarm"
    requests = [
        publish(foreign_account, topic, account=OTHER_ACCOUNT),
        publish(foreign_account, topic),  # right account claimed, wrong ARN
        publish(other_alarm, topic),
    ]
    # Not CloudWatch: another account's principal sending the same context.
    impostor = publish(alarm_arn(alarm, lid), topic)
    requests.append(
        Request(
            impostor.action,
            impostor.resource,
            principal={"AWS": f"arn:{PARTITION}:iam::{OTHER_ACCOUNT}:root"},
            context=impostor.context,
        )
    )
    for request in requests:
        assert evaluate(policy, request, resource_policy=True) != ALLOW, request
    if key is not None:
        for arn, account in ((foreign_account, OTHER_ACCOUNT), (other_alarm, ACCOUNT)):
            request = use_key(arn, "kms:GenerateDataKey", account)
            assert evaluate(key_policy(alarm_template, key), request, resource_policy=True) != ALLOW


def test_enrichctl_smoke_accepts_the_synthesized_topic_policy(alarm_template):
    """`enrichctl smoke` judges the deployed topic policy with its own evaluator
    (enrichctl.ops.topic_policy): it must pass the policy this stack synthesizes, and fail
    the same policy without its CloudWatch Allow (then no alarm reaches anyone)."""
    from enrichctl.ops.topic_policy import cloudwatch_can_publish

    by_topic: dict[str, list[str]] = {}
    for lid, alarm, topic in alarm_deliveries(alarm_template):
        by_topic.setdefault(topic, []).append(alarm_arn(alarm, lid))
    assert by_topic, "no alarm action found: nothing was checked"
    for topic, arns in by_topic.items():
        statements = topic_policy(alarm_template, topic)
        verdict = cloudwatch_can_publish({"Statement": statements}, topic, arns)
        assert verdict.allowed, verdict.reason
        deny_only = [s for s in statements if s["Effect"] == "Deny"]
        assert not cloudwatch_can_publish({"Statement": deny_only}, topic, arns).allowed
