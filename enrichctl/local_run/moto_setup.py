"""Inside moto: the functions, bucket(s), secrets, role and state machine of a synthesized
template, with each function's environment as the deployed stack gives it (plus the local
API's URL and test overrides)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from enrichctl.local_run.definition import LocalDefinition, local_definition
from enrichctl.local_run.moto_hooks import LocalFunction
from enrichctl.local_run.options import LocalRunError

#: Applied to every local function: no X-Ray daemon here.
LOCAL_FUNCTION_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}
#: A fake key for the local API (never a real secret).
LOCAL_API_KEY = "local-api-key"
ROLE_NAME = "local-pipeline-role"


def step_of(function: LocalFunction) -> str:
    """`query_ids` for handler `query_ids.handler.lambda_handler`."""
    return function.handler.split(".")[0] if isinstance(function.handler, str) else ""


def local_functions(
    local: LocalDefinition, api_base_url: str, env_overrides: dict[str, str]
) -> dict[str, LocalFunction]:
    """The template's functions by step name (`query_ids`, ...), with their local environment:
    ENRICH_BASE_URL becomes `api_base_url`, then `env_overrides` apply."""
    functions: dict[str, LocalFunction] = {}
    for spec in local.functions.values():
        env = {**spec.environment, **LOCAL_FUNCTION_ENV}
        if "ENRICH_BASE_URL" in env:
            env["ENRICH_BASE_URL"] = api_base_url
        env.update(env_overrides)
        function = LocalFunction(
            name=spec.name,
            arn=spec.arn,
            handler=spec.handler,
            environment=env,
            timeout_s=spec.timeout_s,
            memory_mb=spec.memory_mb,
        )
        functions[step_of(function) or spec.name] = function
    return functions


def create_resources(
    local: LocalDefinition, functions: dict[str, LocalFunction]
) -> tuple[str, str]:
    """Create everything in moto; return (the pipeline bucket, the state machine ARN).

    Secrets: the API key's (a fake one); the Snowflake secret is `put_snowflake_secret`'s.
    """
    import boto3

    buckets = {f.environment.get("BUCKET_NAME") for f in functions.values()}
    buckets.discard(None)
    if len(buckets) != 1:
        raise LocalRunError(f"expected the functions to share one BUCKET_NAME, got {buckets}")
    bucket = str(buckets.pop())
    s3 = boto3.client("s3")
    for name in {bucket, *local.buckets.values()}:
        s3.create_bucket(Bucket=name)

    secrets = boto3.client("secretsmanager")
    for function in functions.values():
        if function.environment.get("API_KEY_SECRET_NAME"):
            put_secret(secrets, function.environment["API_KEY_SECRET_NAME"], LOCAL_API_KEY)

    role_arn = boto3.client("iam").create_role(
        RoleName=ROLE_NAME,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = boto3.client("lambda")
    for function in functions.values():
        lam.create_function(
            FunctionName=function.name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=str(function.handler),
            Code={"ZipFile": _empty_zip()},
            Timeout=function.timeout_s,
            MemorySize=function.memory_mb,
            Environment={"Variables": function.environment},
        )
    try:
        state_machine_arn = boto3.client("stepfunctions").create_state_machine(
            name=local.state_machine_logical_id[:80],
            definition=local.definition,
            roleArn=role_arn,
        )["stateMachineArn"]
    except Exception as exc:
        raise LocalRunError(
            f"moto rejected the synthesized definition: {exc}. moto 5.2.5 does not accept "
            "ItemBatcher or an integer ToleratedFailurePercentage (see the EnrichBatches map "
            "in stacks/workflow.py)"
        ) from exc
    return bucket, state_machine_arn


def put_snowflake_secret(functions: dict[str, LocalFunction], value: dict[str, Any]) -> None:
    """Store the Snowflake secret under the name(s) the functions read (SNOWFLAKE_SECRET_NAME)."""
    import boto3

    secrets = boto3.client("secretsmanager")
    for function in functions.values():
        name = function.environment.get("SNOWFLAKE_SECRET_NAME")
        if name:
            put_secret(secrets, name, value)


def put_secret(client: Any, name: str, value: Any) -> None:
    """Create the secret, or give it a new value if it exists."""
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        client.create_secret(Name=name, SecretString=text)
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=name, SecretString=text)


def local_api_key(template: dict[str, Any]) -> tuple[str, str] | None:
    """(header, key) the local API demands when the stack configures an API key secret."""
    for spec in local_definition(template).functions.values():
        if spec.environment.get("API_KEY_SECRET_NAME"):
            return spec.environment.get("API_KEY_HEADER", "x-api-key"), LOCAL_API_KEY
    return None


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "runs in-process under enrichctl local\n")
    return buffer.getvalue()
