"""The run-data bucket: one run's files live under `runs/<run_id>/` and expire on their own."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config.models import PipelineConfig

RUNS_PREFIX = "runs/"
#: Where the Distributed Map's ResultWriter puts its manifest. Run IDs start with a letter
#: or digit, so this prefix can never collide with a run's own folder.
MAP_RESULTS_PREFIX = "runs/_map-results/"


class RunDataStorage(Construct):
    """Private, encrypted, TLS-only bucket for IDs, batches and failure records."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "RunData",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireRunData",
                    prefix=RUNS_PREFIX,
                    expiration=Duration.days(config.retention.run_data_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            # Run data is reproducible from Snowflake; failure records are kept only as long
            # as retention.runDataDays anyway. RETAIN keeps a deleted stack from losing them.
            removal_policy=RemovalPolicy.RETAIN,
        )
