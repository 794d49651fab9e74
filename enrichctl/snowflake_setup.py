"""`enrichctl snowflake-setup`: the one-time Snowflake SQL, and `--check` of what exists.

Snowflake reads the run bucket through a storage integration that assumes the stack's IAM
role. That role's name is fixed (`load.roleName`), so its ARN is known before the role
exists: the administrator creates the integration first, `DESC INTEGRATION` then yields
Snowflake's IAM user ARN and external ID, and those two values go into cdk.json
(`load.snowflakeIamUserArn`, `load.externalId`) before `cdk deploy` creates the role.

`--check` connects as the pipeline does (its Snowflake secret) and reports, object by
object, what is missing.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enrichctl.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from enrichctl.paths import REPO_ROOT, use_repo_code

use_repo_code()  # the CDK app's config and the Lambdas' shared code live beside the package

from enrich_shared.load_sql import create_tables, table_columns  # noqa: E402
from enrich_shared.storage import RUNS_PREFIX  # noqa: E402
from stacks.config.context import load_config, with_local_placeholders  # noqa: E402
from stacks.config.models import (  # noqa: E402
    LoadConfig,
    PipelineConfig,
    stage_role_arn,
)
from stacks.config.problems import ConfigError  # noqa: E402

DEFAULT_INTEGRATION = "IMDB_ENRICHMENT_S3"
#: Stack outputs read when the stack is deployed (stacks/pipeline_stack.py).
OUTPUT_ROLE_ARN = "SnowflakeStageRoleArn"
OUTPUT_BUCKET = "RunDataBucketName"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_ACCOUNT = re.compile(r"^\d{12}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

OK, MISSING, UNVERIFIABLE = "OK", "MISSING", "UNVERIFIABLE"


class SetupError(Exception):
    """Something the operator must supply or fix; the message says what and how."""


@dataclass(frozen=True)
class SetupPlan:
    """Everything the SQL names; built from cdk.json, flags, stack outputs and the secret."""

    load: LoadConfig
    integration: str
    role_arn: str
    bucket: str
    pipeline_role: str
    database: str
    schema: str

    @property
    def runs_url(self) -> str:
        """`s3://<bucket>/runs/`: the stage over the stored answers and failure records."""
        return f"s3://{self.bucket}/{RUNS_PREFIX}"

    def stages(self) -> dict[str, str]:
        """Stage name -> URL."""
        stages = {self.load.stage: self.runs_url}
        if self.load.source_stage:
            stages[self.load.source_stage] = self.load.source
        return stages

    def tables(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Table name -> columns (lambdas/enrich_shared/load_sql.py)."""
        load = self.load
        return table_columns(load.landing_table, load.results_table, load.state_table)

    def sql(self) -> str:
        """The script an administrator runs once, with comments that say who and why."""
        load = self.load
        locations = ", ".join(f"'{url}'" for url in self.stages().values())
        role = self.pipeline_role
        lines = [
            "-- IMDB enrichment: Snowflake side of loading the results (run once).",
            "-- 1. As ACCOUNTADMIN (or a role with CREATE INTEGRATION): the storage integration.",
            "--    It assumes the stack's IAM role; the role reads only runs/*/results/ and",
            "--    runs/*/failed/ (and load.source when set).",
            "USE ROLE ACCOUNTADMIN;",
            f"CREATE STORAGE INTEGRATION IF NOT EXISTS {self.integration}",
            "  TYPE = EXTERNAL_STAGE",
            "  STORAGE_PROVIDER = 'S3'",
            "  ENABLED = TRUE",
            f"  STORAGE_AWS_ROLE_ARN = '{self.role_arn}'",
            f"  STORAGE_ALLOWED_LOCATIONS = ({locations});",
            f"GRANT USAGE ON INTEGRATION {self.integration} TO ROLE {role};",
            "",
            "-- 2. The stage(s) and tables, in the pipeline's database and schema.",
            f"USE SCHEMA {self.database}.{self.schema};",
        ]
        for name, url in self.stages().items():
            lines += [
                f"CREATE STAGE IF NOT EXISTS {name}",
                f"  URL = '{url}'",
                f"  STORAGE_INTEGRATION = {self.integration}",
                "  FILE_FORMAT = (TYPE = JSON);",
            ]
        lines += [f"{statement};" for statement in create_tables(
            load.landing_table, load.results_table, load.state_table
        )]  # fmt: skip
        lines += [
            "",
            f"-- 3. Grants for the pipeline's role ({role}): it COPYs from the stage into the",
            "--    landing table, MERGEs into the results and state tables, and the nightly",
            "--    incremental query reads the state table.",
            f"GRANT USAGE ON DATABASE {self.database} TO ROLE {role};",
            f"GRANT USAGE ON SCHEMA {self.database}.{self.schema} TO ROLE {role};",
        ]
        lines += [f"GRANT USAGE ON STAGE {name} TO ROLE {role};" for name in self.stages()]
        lines += [
            f"GRANT SELECT, INSERT, UPDATE ON TABLE {name} TO ROLE {role};"
            for name in self.tables()
        ]
        lines += [
            "",
            "-- 4. Snowflake's side of the trust. Put these two values into cdk.json, then deploy:",
            "--      STORAGE_AWS_IAM_USER_ARN -> pipeline.load.snowflakeIamUserArn",
            "--      STORAGE_AWS_EXTERNAL_ID  -> pipeline.load.externalId",
            "--    then: npx cdk deploy   (then: enrichctl snowflake-setup --check)",
            f"DESC INTEGRATION {self.integration};",
        ]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- --check


@dataclass(frozen=True)
class CheckLine:
    """One object's verdict."""

    kind: str
    name: str
    status: str
    detail: str = ""


def _parts(name: str, database: str, schema: str) -> tuple[str, str, str]:
    parts = name.upper().split(".")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return database.upper(), parts[0], parts[1]
    return database.upper(), schema.upper(), parts[0]


def _query(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []
    finally:
        cursor.close()


def check_objects(conn: Any, plan: SetupPlan) -> list[CheckLine]:
    """What exists and what is missing, object by object (never raises on a missing one)."""
    from snowflake.connector import errors as sf_errors

    lines: list[CheckLine] = []
    try:
        rows = _query(conn, f"DESC INTEGRATION {plan.integration}")
    except sf_errors.Error as exc:
        lines.append(
            CheckLine(
                "integration",
                plan.integration,
                MISSING,
                f"DESC INTEGRATION failed ({_short(exc)}): run step 1 of the setup SQL, or "
                f"GRANT USAGE ON INTEGRATION {plan.integration} TO ROLE {plan.pipeline_role}",
            )
        )
    else:
        props = {str(r[0]).upper(): str(r[2]) for r in rows if len(r) > 2}
        role_arn = props.get("STORAGE_AWS_ROLE_ARN", "")
        if role_arn and role_arn != plan.role_arn:
            lines.append(
                CheckLine(
                    "integration",
                    plan.integration,
                    MISSING,
                    f"STORAGE_AWS_ROLE_ARN is {role_arn}, the stack's role is {plan.role_arn}",
                )
            )
        else:
            lines.append(CheckLine("integration", plan.integration, OK))

    for name, url in plan.stages().items():
        lines.append(_check_stage(conn, plan, name, url))

    for name, columns in plan.tables().items():
        database, schema, table = _parts(name, plan.database, plan.schema)
        try:
            rows = _query(
                conn,
                f"SELECT COLUMN_NAME FROM {database}.INFORMATION_SCHEMA.COLUMNS "  # noqa: S608
                "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (schema, table),
            )
        except sf_errors.Error as exc:
            lines.append(CheckLine("table", name, MISSING, f"cannot read it: {_short(exc)}"))
            continue
        present = {str(r[0]).upper() for r in rows}
        if not present:
            lines.append(CheckLine("table", name, MISSING, "run step 2 of the setup SQL"))
            continue
        absent = [column for column, _kind in columns if column not in present]
        if absent:
            lines.append(
                CheckLine("table", name, MISSING, f"missing column(s): {', '.join(absent)}")
            )
        else:
            lines.append(CheckLine("table", name, OK, ", ".join(column for column, _ in columns)))
    return lines


def _check_stage(conn: Any, plan: SetupPlan, name: str, url: str) -> CheckLine:
    from snowflake.connector import errors as sf_errors

    database, schema, stage = _parts(name, plan.database, plan.schema)
    cursor = conn.cursor()
    try:
        cursor.execute(f"SHOW STAGES LIKE '{stage}' IN SCHEMA {database}.{schema}")
        columns = [str(d[0]).lower() for d in cursor.description or []]
        rows = cursor.fetchall()
    except sf_errors.Error as exc:
        return CheckLine("stage", name, UNVERIFIABLE, f"SHOW STAGES failed: {_short(exc)}")
    finally:
        cursor.close()
    if "name" not in columns:
        return CheckLine("stage", name, UNVERIFIABLE, "SHOW STAGES has no name column")
    # Filter here: LIKE is a pattern (and the embedded Snowflake ignores it).
    found = [dict(zip(columns, row, strict=False)) for row in rows]
    found = [r for r in found if str(r["name"]).upper() == stage]
    if not found:
        return CheckLine("stage", name, MISSING, "run step 2 of the setup SQL")
    actual = str(found[0].get("url", "")).strip('"[]')
    if actual and actual.rstrip("/") != url.rstrip("/"):
        return CheckLine("stage", name, MISSING, f"it points at {actual}, expected {url}")
    integration = str(found[0].get("storage_integration") or "")
    if integration and integration.upper() != plan.integration.upper():
        return CheckLine(
            "stage", name, MISSING, f"it uses integration {integration}, not {plan.integration}"
        )
    return CheckLine("stage", name, OK, url)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# --------------------------------------------------------------------------- inputs


def pipeline_config(context: dict[str, Any] | None = None) -> PipelineConfig:
    """cdk.json's configuration; the two DESC INTEGRATION values may still be unset."""
    if context is None:
        context = json.loads((REPO_ROOT / "cdk.json").read_text()).get("context", {})
    try:
        config = load_config(with_local_placeholders(context))
    except ConfigError as exc:
        raise SetupError(str(exc)) from None
    if not config.load.enabled:
        raise SetupError(
            "loading is off (pipeline.load.enabled=false in cdk.json): there is nothing to "
            "set up; set it to true first"
        )
    return config


def _checked(value: str, pattern: re.Pattern[str], what: str, fix: str) -> str:
    if not pattern.match(value):
        raise SetupError(f"{what}={value!r} is malformed; fix: {fix}")
    return value


@dataclass
class Inputs:
    """Where the plan's values come from; each getter is only called when needed."""

    account: str | None = None
    bucket: str | None = None
    pipeline_role: str | None = None
    schema: str | None = None
    integration: str = DEFAULT_INTEGRATION
    #: () -> stack outputs, or None when the stack is not deployed.
    outputs: Callable[[], dict[str, str] | None] = lambda: None
    #: () -> the AWS account of the caller.
    caller_account: Callable[[], str] = lambda: ""
    #: () -> the pipeline's Snowflake secret (JSON object).
    secret: Callable[[], dict[str, Any]] = lambda: {}


def build_plan(config: PipelineConfig, inputs: Inputs) -> SetupPlan:
    """Resolve every name the SQL needs, or raise `SetupError` saying what to pass."""
    load = config.load
    integration = _checked(
        inputs.integration, _NAME, "--integration", "use letters, digits, _ and $"
    )
    outputs = None if (inputs.bucket and inputs.account) else inputs.outputs()
    bucket = inputs.bucket or (outputs or {}).get(OUTPUT_BUCKET)
    if not bucket:
        raise SetupError(
            "the run-data bucket is not known yet: its name is generated by the first deploy. "
            "Deploy once without loading (`npx cdk deploy -c pipeline.load.enabled=false`), "
            "then run this again; or pass --bucket NAME"
        )
    bucket = _checked(bucket, _BUCKET, "--bucket", "use the stack output RunDataBucketName")
    role_arn = (outputs or {}).get(OUTPUT_ROLE_ARN)
    if not role_arn:
        account = inputs.account or inputs.caller_account()
        account = _checked(account, _ACCOUNT, "--account", "use the 12-digit AWS account ID")
        role_arn = stage_role_arn(account, load.role_name)
    secret: dict[str, Any] = {}
    if not (inputs.pipeline_role and inputs.schema):
        secret = inputs.secret()
    pipeline_role = inputs.pipeline_role or str(secret.get("role", ""))
    pipeline_role = _checked(
        pipeline_role, _NAME, "--pipeline-role", "use the Snowflake role of the pipeline's secret"
    )
    if inputs.schema:
        database, _, schema = inputs.schema.partition(".")
    else:
        database, schema = str(secret.get("database", "")), str(secret.get("schema", ""))
    _checked(database, _NAME, "database", "pass --schema DATABASE.SCHEMA")
    _checked(schema, _NAME, "schema", "pass --schema DATABASE.SCHEMA")
    return SetupPlan(load, integration, role_arn, bucket, pipeline_role, database, schema)


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags (AWS flags come from enrichctl.ops)."""
    from enrichctl.ops.commands import add_aws_arguments

    add_aws_arguments(parser)
    parser.add_argument("--account", metavar="ID", help="AWS account of the stack (default: STS)")
    parser.add_argument("--bucket", metavar="NAME", help="run-data bucket (default: stack output)")
    parser.add_argument(
        "--integration",
        default=DEFAULT_INTEGRATION,
        metavar="NAME",
        help=f"storage integration name (default {DEFAULT_INTEGRATION})",
    )
    parser.add_argument(
        "--pipeline-role", metavar="ROLE", help="Snowflake role of the pipeline (default: secret)"
    )
    parser.add_argument(
        "--schema", metavar="DB.SCHEMA", help="where the stage and tables go (default: secret)"
    )
    parser.add_argument(
        "--snowflake-secret-file",
        type=Path,
        metavar="PATH",
        help="the pipeline's Snowflake secret as a JSON file (default: Secrets Manager)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="connect with the pipeline's secret and report what is missing (exit 1 if any)",
    )


def _inputs(args: argparse.Namespace, config: PipelineConfig) -> Inputs:
    from enrichctl.ops.aws import Deployment, OpsError, Target, aws_errors

    deployment = Deployment(Target.from_args(args))

    def outputs() -> dict[str, str] | None:
        try:
            return deployment.outputs
        except OpsError as exc:
            if "not deployed" in str(exc):
                return None
            raise

    def caller_account() -> str:
        with aws_errors(deployment.target):
            return str(deployment.client("sts").get_caller_identity()["Account"])

    @functools.cache
    def secret() -> dict[str, Any]:
        """Read once: the plan and --check may both need it."""
        path: Path | None = args.snowflake_secret_file
        if path is not None:
            try:
                value = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise SetupError(f"cannot read --snowflake-secret-file {path}: {exc}") from None
        else:
            name = config.snowflake.secret_name
            with aws_errors(deployment.target):
                raw = deployment.client("secretsmanager").get_secret_value(SecretId=name)
            try:
                value = json.loads(raw.get("SecretString") or "")
            except ValueError:
                value = None
        if not isinstance(value, dict):
            raise SetupError("the Snowflake secret is not a JSON object")
        return value

    return Inputs(
        account=args.account,
        bucket=args.bucket,
        pipeline_role=args.pipeline_role,
        schema=args.schema,
        integration=args.integration,
        outputs=outputs,
        caller_account=caller_account,
        secret=secret,
    )


def connect(secret: dict[str, Any], secret_name: str) -> Any:
    """A connection made exactly as the pipeline's Lambdas make it (same secret fields)."""
    from enrich_shared.snowflake_conn import ConnectionSettings, SnowflakeCredentials
    from enrich_shared.snowflake_conn import connect as pipeline_connect

    creds = SnowflakeCredentials.from_secret(secret, secret_name)
    settings = ConnectionSettings(
        secret_name=secret_name, login_timeout_s=30, network_timeout_s=60, statement_timeout_s=60
    )
    return pipeline_connect(creds, settings)


def cmd_snowflake_setup(args: argparse.Namespace) -> int:
    """Print the setup SQL, or (`--check`) report what is missing; exit 1 if anything is."""
    from enrich_shared.errors import PipelineError
    from enrichctl.ops.aws import OpsError

    try:
        config = pipeline_config()
        inputs = _inputs(args, config)
        plan = build_plan(config, inputs)
        if not args.check:
            sys.stdout.write(plan.sql())
            return EXIT_OK
        with connect(inputs.secret(), config.snowflake.secret_name) as conn:
            lines = check_objects(conn, plan)
    except (SetupError, OpsError, PipelineError) as exc:
        print(f"enrichctl snowflake-setup: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    width = max(len(f"{line.kind} {line.name}") for line in lines)
    for line in lines:
        label = f"{line.kind} {line.name}"
        print(f"{label:<{width}}  {line.status:<12}  {line.detail}".rstrip())
    missing = [line for line in lines if line.status == MISSING]
    unverifiable = [line for line in lines if line.status == UNVERIFIABLE]
    if missing:
        print(f"{len(missing)} missing: print the SQL with `enrichctl snowflake-setup`")
        return EXIT_FAILED
    if unverifiable:
        print(f"{len(unverifiable)} could not be verified with this connection")
    return EXIT_OK
