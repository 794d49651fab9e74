"""Record the AWS API calls each Lambda handler makes during a local run.

moto answers every call whatever the function's role says, so a missing grant only shows
on AWS. `record_aws_calls(pipeline)` notes, per function, each botocore API call its handler
makes (service, operation, bucket/key or secret) and each managed S3 upload (boto3's
`upload_fileobj`, which may turn into a multipart upload and then aborts it on failure).
`iam_requests()` turns a call into the IAM requests AWS would authorize, per the Service
Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/
list_amazons3.html): e.g. ListObjectsV2 is s3:ListBucket on the bucket with s3:prefix.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

from tests.policy_eval import ACCOUNT, PARTITION, REGION, Request

#: A managed transfer (boto3's upload_fileobj/upload_file): PutObject for small bodies,
#: Create/UploadPart/CompleteMultipartUpload for large ones, AbortMultipartUpload on failure.
MANAGED_UPLOAD = "ManagedUpload"

#: botocore operation -> IAM actions (Service Authorization Reference).
S3_OBJECT_ACTIONS = {
    "GetObject": ("s3:GetObject",),
    "HeadObject": ("s3:GetObject",),
    "PutObject": ("s3:PutObject",),
    "CreateMultipartUpload": ("s3:PutObject",),
    "UploadPart": ("s3:PutObject",),
    "CompleteMultipartUpload": ("s3:PutObject",),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload",),
    MANAGED_UPLOAD: ("s3:PutObject", "s3:AbortMultipartUpload"),
}
#: Fixed suffix standing in for the 6 random characters Secrets Manager appends to ARNs.
SECRET_SUFFIX = "-Ab12Cd"


@dataclass(frozen=True)
class AwsCall:
    """One AWS API call made by a Lambda handler."""

    function: str  # local function name
    service: str  # botocore service name, e.g. "s3"
    operation: str  # botocore operation name, e.g. "PutObject"
    bucket: str | None = None
    key: str | None = None
    prefix: str | None = None
    secret_id: str | None = None


class AwsCallRecorder:
    """Holds the calls recorded while `record_aws_calls` is active."""

    def __init__(self) -> None:
        self.calls: list[AwsCall] = []
        self._lock = threading.Lock()
        self._current = threading.local()

    def function(self) -> str | None:
        """The function whose handler runs on this thread, if any."""
        return getattr(self._current, "function", None)

    @contextlib.contextmanager
    def running(self, function: str) -> Iterator[None]:
        """Attribute this thread's calls to `function` while its handler runs."""
        previous = self.function()
        self._current.function = function
        try:
            yield
        finally:
            self._current.function = previous

    def add(self, call: AwsCall) -> None:
        with self._lock:
            self.calls.append(call)

    def of(self, function: str) -> list[AwsCall]:
        """The calls function `function` made."""
        with self._lock:
            return [c for c in self.calls if c.function == function]


def _call(function: str, service: str, operation: str, params: dict[str, Any]) -> AwsCall:
    return AwsCall(
        function=function,
        service=service,
        operation=operation,
        bucket=params.get("Bucket"),
        key=params.get("Key"),
        prefix=params.get("Prefix"),
        secret_id=params.get("SecretId"),
    )


@contextlib.contextmanager
def record_aws_calls(pipeline: Any) -> Iterator[AwsCallRecorder]:
    """Record the handlers' AWS calls of an entered LocalPipeline.

    The function is known from the thread its handler runs on (the runtime's invoke is
    wrapped); calls of moto's own task workers, the runner and the test are not recorded.
    Worker threads of a managed S3 upload are covered by the MANAGED_UPLOAD record the
    handler's thread makes.
    """
    from botocore.client import BaseClient
    from s3transfer.manager import TransferManager

    recorder = AwsCallRecorder()
    runtime = pipeline.runtime
    original_invoke = runtime.invoke
    original_api_call = BaseClient._make_api_call
    original_upload = TransferManager.upload

    def invoke(function: Any, body: Any, response_headers: Any) -> bytes:
        with recorder.running(function.name):
            return original_invoke(function, body, response_headers)

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        function = recorder.function()
        if function is not None:
            service = client.meta.service_model.service_name
            recorder.add(_call(function, service, operation, params))
        return original_api_call(client, operation, params)

    def upload(manager: Any, fileobj: Any, bucket: str, key: str, *args: Any, **kw: Any) -> Any:
        function = recorder.function()
        if function is not None:
            recorder.add(_call(function, "s3", MANAGED_UPLOAD, {"Bucket": bucket, "Key": key}))
        return original_upload(manager, fileobj, bucket, key, *args, **kw)

    with (
        mock.patch.object(runtime, "invoke", invoke),
        mock.patch.object(BaseClient, "_make_api_call", make_api_call),
        mock.patch.object(TransferManager, "upload", upload),
    ):
        yield recorder


def iam_requests(call: AwsCall, bucket_arns: dict[str, str]) -> list[Request]:
    """The IAM requests AWS authorizes for `call`; `bucket_arns` maps local bucket names
    to the (rendered) ARNs the policies use. Raises for a call it does not know."""
    if call.service == "s3":
        arn = bucket_arns.get(call.bucket or "")
        if arn is None:
            raise AssertionError(f"{call.function} used bucket {call.bucket!r}, not the stack's")
        if call.operation in ("ListObjectsV2", "ListObjects"):
            return [Request("s3:ListBucket", arn, context={"s3:prefix": call.prefix or ""})]
        if call.operation in S3_OBJECT_ACTIONS:
            return [Request(a, f"{arn}/{call.key}") for a in S3_OBJECT_ACTIONS[call.operation]]
    if call.service == "secretsmanager" and call.operation in (
        "GetSecretValue",
        "DescribeSecret",
    ):
        name = str(call.secret_id)
        arn = (
            name
            if name.startswith("arn:")
            else f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}{SECRET_SUFFIX}"
        )
        return [Request(f"secretsmanager:{call.operation}", arn)]
    raise AssertionError(
        f"{call.function} calls {call.service}.{call.operation}: teach "
        "tests/reliability/aws_calls.iam_requests which IAM action it needs"
    )


__all__ = [
    "MANAGED_UPLOAD",
    "AwsCall",
    "AwsCallRecorder",
    "iam_requests",
    "record_aws_calls",
]
