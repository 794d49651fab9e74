"""`enrichctl snowflake-setup`: the printed SQL, and `--check` against the embedded Snowflake."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from moto import mock_aws

from enrich_shared.load_sql import create_tables
from enrichctl.cli import main
from enrichctl.local_run.template import REPO_ROOT
from enrichctl.snowflake_setup import (
    MISSING,
    OK,
    UNVERIFIABLE,
    Inputs,
    build_plan,
    check_objects,
    pipeline_config,
)

ACCOUNT = "123456789012"
BUCKET = "imdbenrichment-storagerundata-abc123"


def cdk_json_context() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/imdb-enrichment-snowflake-stage"
OFFLINE = ["--account", ACCOUNT, "--bucket", BUCKET, "--pipeline-role", "ENRICH_ROLE"]


def test_the_sql_creates_integration_stage_tables_grants_then_desc(capsys) -> None:
    code = main(["snowflake-setup", *OFFLINE, "--schema", "EIDR.PUBLIC"])
    sql = capsys.readouterr().out
    assert code == 0
    assert "CREATE STORAGE INTEGRATION IF NOT EXISTS IMDB_ENRICHMENT_S3" in sql
    assert f"STORAGE_AWS_ROLE_ARN = '{ROLE_ARN}'" in sql
    assert f"STORAGE_ALLOWED_LOCATIONS = ('s3://{BUCKET}/runs/');" in sql
    assert "USE SCHEMA EIDR.PUBLIC;" in sql
    assert (
        f"CREATE STAGE IF NOT EXISTS ENRICH_RUNS_STAGE\n  URL = 's3://{BUCKET}/runs/'\n"
        "  STORAGE_INTEGRATION = IMDB_ENRICHMENT_S3\n  FILE_FORMAT = (TYPE = JSON);"
    ) in sql
    for statement in create_tables("ENRICH_LANDING", "ENRICH_RESULTS", "ENRICH_STATE"):
        assert f"{statement};" in sql
    for grant in (
        "GRANT USAGE ON INTEGRATION IMDB_ENRICHMENT_S3 TO ROLE ENRICH_ROLE;",
        "GRANT USAGE ON STAGE ENRICH_RUNS_STAGE TO ROLE ENRICH_ROLE;",
        "GRANT SELECT, INSERT, UPDATE ON TABLE ENRICH_STATE TO ROLE ENRICH_ROLE;",
    ):
        assert grant in sql
    assert sql.rstrip().endswith("DESC INTEGRATION IMDB_ENRICHMENT_S3;")
    assert "STORAGE_AWS_IAM_USER_ARN -> pipeline.load.snowflakeIamUserArn" in sql
    assert "STORAGE_AWS_EXTERNAL_ID  -> pipeline.load.externalId" in sql


def test_load_source_gets_its_own_stage_and_allowed_location() -> None:
    context = cdk_json_context()
    context["pipeline.load.source"] = "s3://partner-results/imdb/"
    plan = build_plan(
        pipeline_config(context),
        Inputs(account=ACCOUNT, bucket=BUCKET, pipeline_role="R", schema="D.S"),
    )
    sql = plan.sql()
    assert f"('s3://{BUCKET}/runs/', 's3://partner-results/imdb/')" in sql
    assert (
        "CREATE STAGE IF NOT EXISTS ENRICH_RUNS_STAGE_SOURCE\n  URL = 's3://partner-results/" in sql
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--account", "12345"], "--account='12345' is malformed"),
        (["--pipeline-role", "bad role"], "--pipeline-role='bad role' is malformed"),
        (["--integration", "x;DROP"], "--integration='x;DROP' is malformed"),
    ],
)
def test_bad_flags_are_refused_in_one_line(capsys, flags, message) -> None:
    code = main(["snowflake-setup", *OFFLINE, "--schema", "EIDR.PUBLIC", *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_loading_off_has_nothing_to_set_up() -> None:
    context = cdk_json_context()
    context["pipeline.load.enabled"] = False
    with pytest.raises(Exception, match=r"load\.enabled=false.*nothing to set up"):
        pipeline_config(context)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def test_before_the_first_deploy_it_says_how_to_get_the_bucket(aws, capsys) -> None:
    code = main(["snowflake-setup", "--pipeline-role", "R", "--schema", "D.S"])
    err = capsys.readouterr().err
    assert code == 2
    assert "bucket is not known yet" in err
    assert "npx cdk deploy -c pipeline.load.enabled=false" in err and "--bucket" in err


def test_account_and_secret_come_from_aws_when_not_given(aws, capsys) -> None:
    secret = {"role": "PIPE_ROLE", "database": "ANALYTICS", "schema": "ENRICH"}
    boto3.client("secretsmanager").create_secret(
        Name="imdb-enrichment/snowflake", SecretString=json.dumps(secret)
    )
    assert main(["snowflake-setup", "--bucket", BUCKET]) == 0
    sql = capsys.readouterr().out
    account = boto3.client("sts").get_caller_identity()["Account"]
    assert f"arn:aws:iam::{account}:role/imdb-enrichment-snowflake-stage" in sql
    assert "USE SCHEMA ANALYTICS.ENRICH;" in sql
    assert "TO ROLE PIPE_ROLE;" in sql


# -- --check against the embedded Snowflake ------------------------------------------------


@pytest.fixture
def schema(snowflake) -> str:
    """A fresh schema of the embedded Snowflake (its database is the secret's)."""
    database = snowflake.secret()["database"]
    name = f"SETUP_{uuid.uuid4().hex[:8].upper()}"
    snowflake.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    snowflake.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{name}")
    return f"{database}.{name}"


def plan_for(schema: str):
    return build_plan(
        pipeline_config(),
        Inputs(account=ACCOUNT, bucket=BUCKET, pipeline_role="LOCAL_ROLE", schema=schema),
    )


def run_in(snowflake, schema: str, *statements: str) -> None:
    with snowflake.connect() as conn:
        cursor = conn.cursor()
        cursor.execute(f"USE SCHEMA {schema}")
        for statement in statements:
            cursor.execute(statement)


def verdicts(snowflake, schema: str) -> dict[str, tuple[str, str]]:
    with snowflake.connect() as conn:
        lines = check_objects(conn, plan_for(schema))
    return {f"{line.kind} {line.name}": (line.status, line.detail) for line in lines}


def test_check_on_an_empty_schema_reports_every_object_missing(snowflake, schema) -> None:
    found = verdicts(snowflake, schema)
    assert set(found) == {
        "integration IMDB_ENRICHMENT_S3",
        "stage ENRICH_RUNS_STAGE",
        "table ENRICH_LANDING",
        "table ENRICH_RESULTS",
        "table ENRICH_STATE",
    }
    # The embedded Snowflake has no storage integrations: DESC INTEGRATION fails there.
    assert found["integration IMDB_ENRICHMENT_S3"][0] == MISSING
    assert found["stage ENRICH_RUNS_STAGE"] == (MISSING, "run step 2 of the setup SQL")
    for table in ("ENRICH_LANDING", "ENRICH_RESULTS", "ENRICH_STATE"):
        assert found[f"table {table}"][0] == MISSING


def test_check_after_the_setup_sql_finds_stage_and_tables(snowflake, schema) -> None:
    plan = plan_for(schema)
    stage = f"CREATE STAGE IF NOT EXISTS ENRICH_RUNS_STAGE URL = '{plan.runs_url}'"
    tables = create_tables("ENRICH_LANDING", "ENRICH_RESULTS", "ENRICH_STATE")
    run_in(snowflake, schema, stage, *tables)
    found = verdicts(snowflake, schema)
    assert found["stage ENRICH_RUNS_STAGE"] == (OK, plan.runs_url)
    assert found["table ENRICH_STATE"][0] == OK
    assert found["table ENRICH_LANDING"] == (OK, "V")
    assert found["table ENRICH_RESULTS"][0] == OK


def test_check_names_missing_columns_and_a_stage_pointing_elsewhere(snowflake, schema) -> None:
    run_in(
        snowflake,
        schema,
        "CREATE STAGE ENRICH_RUNS_STAGE URL = 'file:///tmp/somewhere-else/'",
        "CREATE TABLE ENRICH_STATE (IMDB_ID VARCHAR, LAST_STATUS VARCHAR)",
    )
    found = verdicts(snowflake, schema)
    status, detail = found["stage ENRICH_RUNS_STAGE"]
    assert status == MISSING and f"expected s3://{BUCKET}/runs/" in detail
    assert found["table ENRICH_STATE"] == (
        MISSING,
        "missing column(s): LAST_RUN_ID, LAST_ATTEMPT_AT, LAST_ENRICHED_AT, LAST_ERROR, ATTEMPTS",
    )


def test_check_command_connects_with_the_secret_file_and_exits_1(
    snowflake, schema, tmp_path, capsys
) -> None:
    secret = tmp_path / "snowflake.json"
    password = "canary-" + uuid.uuid4().hex  # the embedded Snowflake takes any password
    secret.write_text(json.dumps(snowflake.secret(password=password)))
    code = main(
        [
            "snowflake-setup",
            *OFFLINE,
            "--schema",
            schema,
            "--snowflake-secret-file",
            str(secret),
            "--check",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "table ENRICH_STATE" in out and MISSING in out
    assert "5 missing" in out
    assert password not in out
    assert UNVERIFIABLE not in out


def test_a_deployed_stack_supplies_bucket_and_role_arn(aws, capsys) -> None:
    deployed_role = "arn:aws:iam::210987654321:role/imdb-enrichment-snowflake-stage"
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "RunDataBucketName": {"Value": "deployed-run-bucket"},
            "SnowflakeStageRoleArn": {"Value": deployed_role},
        },
    }
    boto3.client("cloudformation").create_stack(
        StackName="ImdbEnrichment", TemplateBody=json.dumps(template)
    )
    assert main(["snowflake-setup", "--pipeline-role", "R", "--schema", "D.S"]) == 0
    sql = capsys.readouterr().out
    assert f"STORAGE_AWS_ROLE_ARN = '{deployed_role}'" in sql
    assert "STORAGE_ALLOWED_LOCATIONS = ('s3://deployed-run-bucket/runs/');" in sql
