"""The topic policy evaluation of `enrichctl smoke`: may CloudWatch alarms publish?

The policies are the documents sns:GetTopicAttributes returns: today's (enforce_ssl alone,
whose only statement is a Deny) and the one the stack synthesizes (stacks/monitoring.py: an Allow
for cloudwatch.amazonaws.com scoped by aws:SourceAccount and aws:SourceArn, plus the Deny).
"""

from __future__ import annotations

import pytest

from enrichctl.ops.topic_policy import cloudwatch_can_publish
from tests.ops.policies import cloudwatch_allow, policy, tls_deny

ACCOUNT = "111122223333"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:ImdbEnrichment-AlarmTopic-ABC123"
ALARMS = [
    f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:ImdbEnrichment-MissedRun",
    f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:ImdbEnrichment-ExecutionsFailed",
]
PATTERN = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:ImdbEnrichment-*"
OTHER_STACK = "arn:aws:cloudwatch:*:*:alarm:Other-*"
TLS_DENY = tls_deny(TOPIC)
CLOUDWATCH_ALLOW = cloudwatch_allow(TOPIC, PATTERN)


def test_todays_deny_only_policy_fails():
    verdict = cloudwatch_can_publish(policy(TLS_DENY), TOPIC, ALARMS)

    assert not verdict.allowed
    assert "no statement allows cloudwatch.amazonaws.com to sns:Publish" in verdict.reason


def test_the_scoped_allow_with_the_tls_deny_passes():
    assert cloudwatch_can_publish(policy(TLS_DENY, CLOUDWATCH_ALLOW), TOPIC, ALARMS).allowed


def test_the_allow_listing_each_alarm_arn_passes_and_an_unlisted_alarm_fails():
    exact = {
        **CLOUDWATCH_ALLOW,
        "Condition": {
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnEquals": {"aws:SourceArn": ALARMS},
        },
    }
    assert cloudwatch_can_publish(policy(TLS_DENY, exact), TOPIC, ALARMS).allowed

    other = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:ImdbEnrichment-FailedBatches"
    verdict = cloudwatch_can_publish(policy(TLS_DENY, exact), TOPIC, [*ALARMS, other])
    assert not verdict.allowed and verdict.reason.startswith("alarm ImdbEnrichment-FailedBatches:")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}}}, "other account"),
        ({"Condition": {"ArnLike": {"aws:SourceArn": OTHER_STACK}}}, "other stack's alarms"),
        ({"Principal": {"Service": "events.amazonaws.com"}}, "other service"),
        ({"Action": "sns:Subscribe"}, "other action"),
        ({"Resource": TOPIC + "-other"}, "other topic"),
        ({"Condition": {"NumericLessThan": {"aws:SourceAccount": "1"}}}, "unknown operator"),
    ],
)
def test_an_allow_that_does_not_cover_the_alarms_request_fails(change, why):
    allow = {**CLOUDWATCH_ALLOW, **change}

    assert not cloudwatch_can_publish(policy(TLS_DENY, allow), TOPIC, ALARMS).allowed, why


def test_wildcards_in_action_principal_and_resource_are_understood():
    allow = {**CLOUDWATCH_ALLOW, "Action": ["SNS:Pub*"], "Resource": "*", "Principal": {"AWS": "*"}}

    assert cloudwatch_can_publish(policy(TLS_DENY, allow), TOPIC, ALARMS).allowed


def test_a_deny_that_applies_over_tls_overrides_the_allow():
    deny_all = {**TLS_DENY, "Sid": "DenyEveryone", "Condition": {}}

    verdict = cloudwatch_can_publish(policy(CLOUDWATCH_ALLOW, deny_all), TOPIC, ALARMS)

    assert not verdict.allowed and "Deny DenyEveryone applies" in verdict.reason


def test_a_deny_for_other_accounts_does_not_apply_to_our_alarms():
    others = {
        **TLS_DENY,
        "Sid": "DenyOtherAccounts",
        "Condition": {"StringNotEquals": {"aws:SourceAccount": ACCOUNT}},
    }

    assert cloudwatch_can_publish(policy(CLOUDWATCH_ALLOW, others), TOPIC, ALARMS).allowed


def test_no_policy_and_no_alarm_fail():
    assert not cloudwatch_can_publish(None, TOPIC, ALARMS).allowed
    assert not cloudwatch_can_publish(policy(CLOUDWATCH_ALLOW), TOPIC, []).allowed


def test_sns_default_policy_lets_same_account_alarms_publish():
    # What a topic without an AWS::SNS::TopicPolicy has: the owner account's sources may publish.
    default = {
        "Sid": "__default_statement_ID",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["SNS:GetTopicAttributes", "SNS:Subscribe", "SNS:Publish"],
        "Resource": TOPIC,
        "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT}},
    }

    assert cloudwatch_can_publish(policy(default), TOPIC, ALARMS).allowed
    foreign = [a.replace(ACCOUNT, "999999999999") for a in ALARMS]
    assert not cloudwatch_can_publish(policy(default), TOPIC, foreign).allowed
