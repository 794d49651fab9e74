"""AWS access for the operator commands: session, clients, stack outputs, error mapping.

Every AWS call of `enrichctl run|status|show|retry` goes through `Deployment`, whose clients
retry throttling with backoff (botocore's "standard" retry mode, `MAX_ATTEMPTS` attempts),
and every AWS failure an operator can hit is turned into an `OpsError`: one line saying what
is wrong and how to fix it (`explain()`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

#: The CDK app's stack name (stacks/synth.py STACK_NAME; a test keeps the two equal).
DEFAULT_STACK = "ImdbEnrichment"
#: Stack outputs the commands read (declared in stacks/pipeline_stack.py).
OUTPUT_STATE_MACHINE = "StateMachineArn"
OUTPUT_BUCKET = "RunDataBucketName"
OUTPUT_TOPIC = "AlarmTopicArn"
OUTPUT_SCHEDULE = "ScheduleName"
OUTPUT_SNOWFLAKE_SECRET = "SnowflakeSecretName"  # noqa: S105 (an output's name)
#: Present only when the API needs a key (enrichment.apiKeySecretName).
OUTPUT_API_KEY_SECRET = "ApiKeySecretName"  # noqa: S105 (an output's name)
#: Attempts per AWS call, first one included; throttling and transient errors are retried
#: with botocore's exponential backoff and jitter.
MAX_ATTEMPTS = 8
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestThrottled",
    }
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId"}
)


class OpsError(Exception):
    """A problem the operator can fix; its message is one line: what is wrong + the fix."""


@dataclass(frozen=True)
class Target:
    """Where the commands point: the flags --profile, --region and --stack."""

    profile: str | None = None
    region: str | None = None
    stack: str = DEFAULT_STACK

    @classmethod
    def from_args(cls, args: Any) -> Target:
        """From parsed arguments; --stack falls back to $ENRICHCTL_STACK, then the default."""
        stack = getattr(args, "stack", None) or os.environ.get("ENRICHCTL_STACK") or DEFAULT_STACK
        return cls(getattr(args, "profile", None), getattr(args, "region", None), stack)

    def profile_hint(self) -> str:
        """` --profile NAME` when a profile was given (for fix-it commands)."""
        return f" --profile {self.profile}" if self.profile else ""


def explain(exc: BaseException, target: Target, *, execution: str | None = None) -> OpsError:
    """Turn an AWS/botocore exception into one clear `OpsError` line (or re-use it)."""
    from botocore import exceptions as bx

    if isinstance(exc, OpsError):
        return exc
    hint = target.profile_hint()
    if isinstance(exc, bx.ProfileNotFound):
        return OpsError(
            f"AWS profile {target.profile!r} is not configured: "
            "check `aws configure list-profiles` or drop --profile"
        )
    if isinstance(exc, bx.NoRegionError):
        return OpsError("no AWS region: pass --region REGION or set AWS_REGION (or the profile's)")
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        where = f"profile {target.profile!r}" if target.profile else "the default credential chain"
        return OpsError(
            f"no AWS credentials found ({where}): run `aws configure{hint}` or "
            f"`aws sso login{hint}`, or set AWS_PROFILE"
        )
    if isinstance(exc, bx.SSOError | bx.TokenRetrievalError):
        return OpsError(f"your AWS SSO session has expired: run `aws sso login{hint}`")
    if isinstance(exc, bx.EndpointConnectionError):
        return OpsError(
            f"cannot reach AWS ({exc.kwargs.get('endpoint_url', 'endpoint')}): check the "
            "network and --region"
        )
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")).strip()
        operation = exc.operation_name
        if operation == "DescribeStacks" and code == "ValidationError" and "not exist" in message:
            return OpsError(
                f"stack {target.stack!r} is not deployed in {region_of(target)}: deploy it with "
                "`npx cdk deploy`, or point at it with --stack/--region/--profile"
            )
        if code in ("ExecutionDoesNotExist", "InvalidArn") and execution is not None:
            return OpsError(
                f"unknown execution {execution!r} in stack {target.stack!r}: list recent runs "
                "with `enrichctl status` and pass a name or ARN from there"
            )
        if code in THROTTLING_CODES:
            return OpsError(
                f"AWS is throttling {operation} (still refused after {MAX_ATTEMPTS} attempts "
                "with backoff): wait a minute and try again"
            )
        if code in EXPIRED_CODES:
            return OpsError(
                f"your AWS credentials have expired: refresh them (`aws sso login{hint}`)"
            )
        if code in DENIED_CODES:
            return OpsError(
                f"AWS refused {operation} ({code}): your credentials lack that permission on "
                f"stack {target.stack!r}; use a profile that has it"
            )
        return OpsError(f"AWS {operation} failed: {code}: {message}")
    if isinstance(exc, bx.BotoCoreError):
        return OpsError(f"AWS call failed: {exc}")
    raise exc


def region_of(target: Target) -> str:
    """The region `target` resolves to (for messages); never raises."""
    if target.region:
        return target.region
    with contextlib.suppress(Exception):
        import boto3

        region = boto3.Session(profile_name=target.profile).region_name
        if region:
            return region
    return "the default region"


@contextlib.contextmanager
def aws_errors(target: Target, *, execution: str | None = None) -> Iterator[None]:
    """Translate botocore failures raised inside the block into `OpsError`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, target, execution=execution) from exc


class Deployment:
    """The deployed stack as the commands see it: clients and the stack's outputs.

    Args:
        target: --profile/--region/--stack.
        session: a ready boto3 Session (tests); None builds one from `target`.
    """

    def __init__(self, target: Target, session: Any = None) -> None:
        self.target = target
        self._session = session
        self._clients: dict[str, Any] = {}

    @cached_property
    def session(self) -> Any:
        """The boto3 session (profile and region from the target)."""
        import boto3

        if self._session is not None:
            return self._session
        with aws_errors(self.target):
            session = boto3.Session(
                profile_name=self.target.profile, region_name=self.target.region
            )
        if not session.region_name:
            raise OpsError(
                "no AWS region: pass --region REGION or set AWS_REGION (or the profile's)"
            )
        return session

    @property
    def region(self) -> str:
        """The region every client talks to."""
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        """A client whose calls retry throttling with backoff (created once per service)."""
        from botocore.config import Config

        if service not in self._clients:
            config = Config(
                retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                user_agent_extra="enrichctl",
            )
            with aws_errors(self.target):
                self._clients[service] = self.session.client(service, config=config)
        return self._clients[service]

    @property
    def sfn(self) -> Any:
        """Step Functions client."""
        return self.client("stepfunctions")

    @property
    def s3(self) -> Any:
        """S3 client."""
        return self.client("s3")

    @cached_property
    def outputs(self) -> dict[str, str]:
        """The stack's outputs (one DescribeStacks call)."""
        with aws_errors(self.target):
            stacks = self.client("cloudformation").describe_stacks(StackName=self.target.stack)
        stack = stacks["Stacks"][0]
        status = str(stack.get("StackStatus", ""))
        if status in (
            "CREATE_IN_PROGRESS",
            "CREATE_FAILED",
            "ROLLBACK_COMPLETE",
            "DELETE_COMPLETE",
        ):
            raise OpsError(
                f"stack {self.target.stack!r} is {status} in {self.region}, not deployed: "
                "run `npx cdk deploy` (see its events in the CloudFormation console)"
            )
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def _output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise OpsError(
                f"stack {self.target.stack!r} has no output {key}: it predates enrichctl, "
                "redeploy it with `npx cdk deploy`"
            )
        return value

    @property
    def state_machine_arn(self) -> str:
        """ARN of the pipeline's state machine (stack output StateMachineArn)."""
        return self._output(OUTPUT_STATE_MACHINE)

    @property
    def bucket(self) -> str:
        """The run data bucket (stack output RunDataBucketName)."""
        return self._output(OUTPUT_BUCKET)

    @property
    def alarm_topic_arn(self) -> str:
        """The alarm topic (stack output AlarmTopicArn)."""
        return self._output(OUTPUT_TOPIC)

    @property
    def schedule_name(self) -> str:
        """The nightly schedule's name (stack output ScheduleName)."""
        return self._output(OUTPUT_SCHEDULE)

    @property
    def snowflake_secret_name(self) -> str:
        """The Snowflake secret's name (stack output SnowflakeSecretName)."""
        return self._output(OUTPUT_SNOWFLAKE_SECRET)

    @property
    def api_key_secret_name(self) -> str | None:
        """The API key secret's name, None when the API needs no key (no output)."""
        return self.outputs.get(OUTPUT_API_KEY_SECRET) or None

    def execution_arn(self, name_or_arn: str) -> str:
        """The ARN of an execution of this state machine given its name or ARN."""
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name_or_arn}"

    def console_url(self, execution_arn: str) -> str:
        """The Step Functions console page of one execution."""
        region = execution_arn.split(":")[3] or self.region
        return (
            f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}"
        )
