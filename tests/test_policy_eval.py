"""The small IAM evaluator the infrastructure tests rely on (tests/policy_eval.py)."""

from __future__ import annotations

import pytest

from tests.policy_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate

CW = {"Service": "cloudwatch.amazonaws.com"}
PUBLISH = {"Effect": "Allow", "Principal": CW, "Action": "sns:Publish", "Resource": "arn:t"}
TLS_DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sns:*",
    "Resource": "arn:t",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def req(action="sns:Publish", resource="arn:t", principal=CW, **context):
    return Request(action, resource, principal=principal, context=context)


def test_explicit_deny_beats_allow_and_nothing_matching_is_an_implicit_deny():
    assert (
        evaluate([PUBLISH, TLS_DENY], req(**{"aws:SecureTransport": "false"}), resource_policy=True)
        == EXPLICIT_DENY
    )
    assert (
        evaluate([PUBLISH, TLS_DENY], req(**{"aws:SecureTransport": "true"}), resource_policy=True)
        == ALLOW
    )
    assert (
        evaluate([TLS_DENY], req(**{"aws:SecureTransport": "true"}), resource_policy=True)
        == IMPLICIT_DENY
    )


def test_principals_matter_only_in_resource_policies():
    other = {"AWS": "arn:aws:iam::444455556666:root"}
    assert evaluate([PUBLISH], req(principal=other), resource_policy=True) == IMPLICIT_DENY
    identity = {k: v for k, v in PUBLISH.items() if k != "Principal"}
    assert evaluate([identity], req(principal=other)) == ALLOW


def test_actions_match_case_insensitively_with_wildcards_resources_case_sensitively():
    stmt = {"Effect": "Allow", "Action": "S3:Get*", "Resource": "arn:b/runs/*/ids.json"}
    assert evaluate([stmt], req("s3:GetObject", "arn:b/runs/r1/ids.json")) == ALLOW
    assert evaluate([stmt], req("s3:PutObject", "arn:b/runs/r1/ids.json")) == IMPLICIT_DENY
    assert evaluate([stmt], req("s3:GetObject", "arn:b/RUNS/r1/ids.json")) == IMPLICIT_DENY


def test_conditions_missing_keys_ifexists_and_negation():
    def allow(condition):
        return {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}

    arn_like = allow({"ArnLike": {"aws:SourceArn": ["arn:a:alarm:x-*"]}})
    assert evaluate([arn_like], req(**{"aws:SourceArn": "arn:a:alarm:x-1"})) == ALLOW
    assert evaluate([arn_like], req(**{"aws:SourceArn": "arn:a:alarm:y-1"})) == IMPLICIT_DENY
    assert evaluate([arn_like], req()) == IMPLICIT_DENY  # key missing
    if_exists = allow({"StringEqualsIfExists": {"aws:SourceAccount": "1"}})
    assert evaluate([if_exists], req()) == ALLOW
    negated = allow({"StringNotEquals": {"aws:SourceAccount": "1"}})
    assert evaluate([negated], req()) == ALLOW
    assert evaluate([negated], req(**{"aws:SourceAccount": "1"})) == IMPLICIT_DENY
    with pytest.raises(NotImplementedError, match="NumericLessThan"):
        evaluate([allow({"NumericLessThan": {"k": "1"}})], req(k="0"))
