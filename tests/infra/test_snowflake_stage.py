"""The role Snowflake's storage integration assumes: trust, external ID, read-only access."""

from __future__ import annotations

import json
from typing import Any

from stacks.config.limits import LOCAL_PLACEHOLDER_EXTERNAL_ID, LOCAL_PLACEHOLDER_IAM_USER_ARN
from stacks.synth import synth_template
from tests.infra.conftest import one, resources
from tests.infra.test_template import _bucket_key, grants, statements

SOURCE = "s3://partner-enrichment-results/imdb/"
SNOWFLAKE_USER = "arn:aws:iam::123456789012:user/abc1-s-v2st1234"
EXTERNAL_ID = "MYACCOUNT_SFCRole=2_abcdefgHIJKLmnop="


def stage_role(template: dict[str, Any]) -> dict[str, Any]:
    return one(template, "AWS::IAM::Role", "SnowflakeStageRole")


def test_the_role_trusts_only_snowflakes_user_with_the_external_id(template) -> None:
    role = stage_role(template)
    assert role["RoleName"] == "imdb-enrichment-snowflake-stage"
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement == {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": {"AWS": LOCAL_PLACEHOLDER_IAM_USER_ARN},
        "Condition": {"StringEquals": {"sts:ExternalId": LOCAL_PLACEHOLDER_EXTERNAL_ID}},
    }


def test_configured_values_are_what_the_role_trusts() -> None:
    template = synth_template(
        {
            "pipeline.load.snowflakeIamUserArn": SNOWFLAKE_USER,
            "pipeline.load.externalId": EXTERNAL_ID,
            "pipeline.load.roleName": "sf-stage-reader",
        }
    )
    role = stage_role(template)
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": SNOWFLAKE_USER}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    assert role["RoleName"] == "sf-stage-reader"


def test_the_role_may_only_read_results_and_failure_records(template) -> None:
    g = grants(template, "SnowflakeStageRoleDefaultPolicy")
    assert set(g) == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket",
                      "s3:GetBucketLocation"}  # fmt: skip
    for action in ("s3:GetObject", "s3:GetObjectVersion"):
        assert sorted(map(_bucket_key, g[action])) == ["/runs/*/failed/*", "/runs/*/results/*"]
    bucket_arn = {"Fn::GetAtt": [_bucket_logical_id(template), "Arn"]}
    assert [json.loads(r) for r in g["s3:ListBucket"]] == [bucket_arn]
    assert [json.loads(r) for r in g["s3:GetBucketLocation"]] == [bucket_arn]
    (listing,) = [
        s for s in statements(template, "SnowflakeStageRoleDefaultPolicy")
        if "s3:ListBucket" in s["Action"]
    ]  # fmt: skip
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["runs/*/results/*", "runs/*/failed/*"]}
    }
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in g), "never write"


def test_outputs_name_the_role_and_the_stage_url(template) -> None:
    outputs = template["Outputs"]
    assert outputs["SnowflakeStageRoleArn"]["Value"] == {
        "Fn::GetAtt": [_logical_id(template, "SnowflakeStageRole"), "Arn"]
    }
    assert outputs["SnowflakeStageUrl"]["Value"] == {
        "Fn::Join": ["", ["s3://", {"Ref": _bucket_logical_id(template)}, "/runs/"]]
    }


def test_load_source_adds_read_access_to_that_prefix_only() -> None:
    template = synth_template({"pipeline.load.source": SOURCE})
    g = grants(template, "SnowflakeStageRoleDefaultPolicy")
    source = {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::partner-enrichment-results"]]
    }
    source_objects = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":s3:::partner-enrichment-results/imdb/*"],
        ]
    }
    assert source_objects in [json.loads(r) for r in g["s3:GetObject"]]
    assert source in [json.loads(r) for r in g["s3:ListBucket"]]
    assert source in [json.loads(r) for r in g["s3:GetBucketLocation"]]
    listings = [
        s for s in statements(template, "SnowflakeStageRoleDefaultPolicy")
        if "s3:ListBucket" in s["Action"]
    ]  # fmt: skip
    assert {"StringLike": {"s3:prefix": ["imdb/*"]}} in [s["Condition"] for s in listings]
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in g)


def test_no_role_and_no_outputs_when_loading_is_off() -> None:
    template = synth_template({"pipeline.load.enabled": False})
    assert not [k for k in resources(template, "AWS::IAM::Role") if "SnowflakeStage" in k]
    assert "SnowflakeStageRoleArn" not in template["Outputs"]


def _logical_id(template: dict[str, Any], prefix: str) -> str:
    (found,) = [
        k for k, r in template["Resources"].items()
        if k.startswith(prefix) and r["Type"] == "AWS::IAM::Role"
    ]  # fmt: skip
    return found


def _bucket_logical_id(template: dict[str, Any]) -> str:
    (found,) = [k for k in resources(template, "AWS::S3::Bucket") if k.startswith("StorageRunData")]
    return found
