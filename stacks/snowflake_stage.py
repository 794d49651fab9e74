"""The IAM role Snowflake's storage integration assumes to read the run data (read-only).

Snowflake reads the bucket through an external stage on `s3://<bucket>/runs/` and a storage
integration. The integration assumes this role as Snowflake's own IAM user, proving itself
with the external ID; both values come from `DESC INTEGRATION` (config `load.*`). The role
name is fixed by config, so its ARN is known before the first deploy and the integration can
be created first (`enrichctl snowflake-setup`).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config.models import LoadConfig
from stacks.storage import RUNS_PREFIX

#: What the stage may read in the pipeline bucket: stored answers and failure records.
READABLE_KEYS = ("runs/*/results/*", "runs/*/failed/*")


class SnowflakeStageAccess(Construct):
    """The storage integration's role: trusts Snowflake's IAM user + external ID, reads only."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: LoadConfig, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        if not (config.snowflake_iam_user_arn and config.external_id):
            # stacks/config refuses this combination; guard against a caller that skipped it.
            raise ValueError("load.snowflakeIamUserArn and load.externalId must be set")
        self.role = iam.Role(
            self,
            "Role",
            role_name=config.role_name,
            assumed_by=iam.ArnPrincipal(config.snowflake_iam_user_arn),
            # sts:ExternalId: only Snowflake acting for OUR integration, not another customer's.
            external_ids=[config.external_id],
            description="Snowflake storage integration: read-only on the pipeline's run results",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadResultsAndFailures",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[bucket.arn_for_objects(key) for key in READABLE_KEYS],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListResultsAndFailures",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": list(READABLE_KEYS)}},
            )
        )
        locations = [bucket.bucket_arn]
        if config.source_bucket:
            # The API writes its results there itself; the stage reads them from that prefix.
            source_arn = Stack.of(self).format_arn(
                service="s3", region="", account="", resource=config.source_bucket
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadSourceObjects",
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[f"{source_arn}/{config.source_prefix}*"],
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ListSource",
                    actions=["s3:ListBucket"],
                    resources=[source_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{config.source_prefix}*"]}},
                )
            )
            locations.append(source_arn)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="LocateBuckets", actions=["s3:GetBucketLocation"], resources=locations
            )
        )
        key = getattr(bucket, "encryption_key", None)
        if key is not None:
            # A KMS-encrypted bucket: reading an object needs the key too.
            key.grant_decrypt(self.role)
        #: `s3://<bucket>/runs/`: the URL of the stage over the stored answers.
        self.stage_url = f"s3://{bucket.bucket_name}/{RUNS_PREFIX}"
