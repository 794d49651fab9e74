"""`enrichctl run|status|show|retry` against the synthesized state machine under moto.

Executions run through the local-run machinery (LocalPipeline: real handlers, embedded
Snowflake, local enrichment API); the commands find them through a CloudFormation stack's
outputs like they find the deployed stack. moto 5.2.5 has no RedriveExecution: that one
call is stubbed (botocore Stubber, bound to that operation only); everything else is moto.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import boto3
import pytest

from tests.ops.stubs import stub_one_call

IDS = [f"tt{3_000_000 + i:07d}" for i in range(80)]


def test_run_wait_starts_a_named_manual_run_and_ends_with_the_local_summary(deployed, seed):
    seed(IDS)
    env = deployed()

    code, out, err = env.enrichctl("run", "--wait")

    assert (code, err) == (0, "")
    name = re.search(r"started (manual-\d{8}T\d{6}Z-[0-9a-f]{6}) \(manual\)", out).group(1)
    described = env.execution(name)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["input"]) == {"run_id": name, "trigger": "manual"}
    # The same tables as `enrichctl local`, filled from the deployed run.
    assert "States" in out and "Summary" in out
    assert re.search(r"IDs queried \(valid, unique\)\s+│\s+80", out)
    assert re.search(r"batches failed\s+│\s+0", out)
    # What LoadResults recorded ($.loaded.ids_ok) and what the incremental query skipped.
    assert re.search(r"IDs loaded into Snowflake \(OK\)\s+│\s+80", out)
    assert re.search(r"IDs skipped as fresh\s+│\s+0", out)
    assert f"SUCCEEDED run {name}" in out
    assert sorted(i for r in env.api.requests for i in r.ids) == IDS


def test_run_full_ignores_the_state_table_that_makes_the_next_run_skip_fresh_ids(deployed, seed):
    seed(IDS)
    env = deployed()
    assert env.enrichctl("run", "--wait")[0] == 0  # enriches and loads all 80
    sent_before = sum(len(r.ids) for r in env.api.requests)
    assert sent_before == len(IDS)

    code, out, _ = env.enrichctl("run", "--wait")  # every ID is fresh now
    assert code == 0
    assert re.search(r"IDs skipped as fresh\s+│\s+80", out)
    assert sum(len(r.ids) for r in env.api.requests) == sent_before  # nothing sent

    code, out, _ = env.enrichctl("run", "--full", "--wait")
    assert code == 0
    name = re.search(r"started (manual-\S+) \(manual, full: state table ignored\)", out).group(1)
    assert json.loads(env.execution(name)["input"])["full"] is True
    assert re.search(r"IDs skipped as fresh\s+│\s+0", out)
    assert sum(len(r.ids) for r in env.api.requests) - sent_before == len(IDS)


def test_run_limit_and_dry_run_report_the_batches_and_send_nothing(deployed, seed):
    seed(IDS)
    env = deployed()

    code, out, err = env.enrichctl("run", "--dry-run", "--limit", "50")

    assert (code, err) == (0, "")
    assert env.api.requests == []  # nothing was sent
    name = re.search(r"started (manual-\S+) \(dry run, limit 50\)", out).group(1)
    batches = env.pipeline.read_json(f"runs/{name}/batches.json")
    assert sum(len(b["ids"]) for b in batches) == 50
    assert f"dry run: {len(batches)} requests carrying 50 IDs would have been sent" in out
    assert batches[0]["batch_id"] in out
    assert json.loads(env.execution(name)["input"])["dry_run"] is True


def failed_night(env, name: str = "scheduled-2026-11-25T02-00-00Z"):
    """A scheduled run where the batch holding IDS[0] is rejected (400, not retried)."""
    report = env.pipeline.run(
        {"run_id": name, "trigger": "schedule", "scheduled_time": "2026-11-25T02:00:00Z"},
        name=name,
    )
    assert report.status == "FAILED" and report.error == "BatchesFailed"
    return report


def test_status_lists_recent_runs_with_trigger_status_and_counts(deployed, seed):
    seed(IDS)
    env = deployed(rules={IDS[0]: [400]})
    failed = failed_night(env)
    env.pipeline.run({"run_id": "manual-ok", "trigger": "manual"}, name="manual-ok")

    code, out, err = env.enrichctl("status", "--last", "5")

    assert (code, err) == (0, "")
    rows = {line.split("│")[2].strip(): line for line in out.splitlines() if "│" in line}
    night = [c.strip() for c in rows["scheduled-2026-11-25T02-00-00Z"].split("│")]
    assert night[3:5] == ["schedule", "FAILED"]
    assert night[6:9] == ["80", str(failed.batches), "1"]  # IDs, batches, failed
    ok = [c.strip() for c in rows["manual-ok"].split("│")]
    assert ok[3:5] == ["manual", "SUCCEEDED"] and ok[8] == "0"
    # Newest first, and --last is honoured.
    assert out.index("manual-ok") < out.index("scheduled-2026")
    code, out, _ = env.enrichctl("status", "--last", "1")
    assert "manual-ok" in out and "scheduled-2026" not in out


def test_show_prints_the_timeline_the_failed_batches_with_their_ids_and_the_console_url(
    deployed, seed
):
    seed(IDS)
    env = deployed(rules={IDS[0]: [400]})
    report = failed_night(env)
    record = env.pipeline.failed_records(report.run_id)[report.failed_batch_ids[0]]

    code, out, err = env.enrichctl("show", "scheduled-2026-11-25T02-00-00Z", "--ids")

    assert (code, err) == (0, "")
    timeline = {
        line.split("│")[1].strip(): line
        for line in out.split("Failed batches")[0].splitlines()
        if "│" in line
    }
    assert "SUCCEEDED" in timeline["QueryIds"] and "SUCCEEDED" in timeline["BuildUrls"]
    assert "BatchesFailed" in timeline["BatchesFailed"] and "FAILED" in timeline["BatchesFailed"]
    assert "> batches" in timeline  # the map's item counts
    assert f"{report.batches} items" in timeline["> batches"]
    failed_part = out.split("Failed batches (1)")[1]
    assert record["batch_id"] in failed_part and "RejectedEnrichError" in failed_part
    assert all(i in failed_part for i in record["ids"])  # --ids: every ID
    assert "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1" in out
    assert "enrichctl retry scheduled-2026-11-25T02-00-00Z" in out


def test_show_accepts_an_arn_too(deployed, seed):
    seed(IDS[:10])
    env = deployed()
    report = env.pipeline.run({"run_id": "by-arn"}, name="by-arn")

    code, out, _ = env.enrichctl("show", report.execution_arn)

    assert code == 0 and "by-arn" in out and "SUCCEEDED" in out


def test_retry_of_failed_batches_is_a_linked_run_over_exactly_the_failure_record(deployed, seed):
    seed(IDS)
    env = deployed(rules={IDS[0]: [400]})  # 400 once: the retry run gets 200
    report = failed_night(env)
    failed_ids = env.pipeline.failed_records(report.run_id)[report.failed_batch_ids[0]]["ids"]
    sent_before = len(env.api.requests)

    code, out, err = env.enrichctl("retry", "scheduled-2026-11-25T02-00-00Z", "--wait")

    assert (code, err) == (0, "")
    assert f"retrying 1 failed batch(es) ({len(failed_ids)} IDs)" in out
    name = re.search(r"new run (retry-of-scheduled-2026-11-25T02-00-00Z-\d{8}T\d{6}Z)", out)
    described = env.execution(name.group(1))
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["input"]) == {
        "run_id": name.group(1),
        "trigger": "retry",
        "retry_of_run_id": report.run_id,
    }
    resent = [i for r in env.api.requests[sent_before:] for i in r.ids]
    assert sorted(resent) == sorted(failed_ids)  # only what failed, once
    code, out, _ = env.enrichctl("status")
    assert re.search(r"retry-of-scheduled\S*\s+│ retry\s+│ SUCCEEDED", out)


def test_retry_refuses_a_run_that_succeeded(deployed, seed):
    seed(IDS[:10])
    env = deployed()
    env.pipeline.run({"run_id": "fine"}, name="fine")

    code, out, err = env.enrichctl("retry", "fine")

    assert code == 2 and out == ""
    assert err == "enrichctl retry: error: refused: fine SUCCEEDED; there is nothing to retry\n"


def test_retry_refuses_when_the_failure_record_is_gone(deployed, seed):
    seed(IDS)
    env = deployed(rules={IDS[0]: [400]})
    report = failed_night(env)
    s3 = boto3.client("s3")
    for batch_id in report.failed_batch_ids:  # what lifecycle expiry does after N days
        s3.delete_object(
            Bucket=env.pipeline.bucket, Key=f"runs/{report.run_id}/failed/{batch_id}.json"
        )

    code, _, err = env.enrichctl("retry", report.run_id)

    assert code == 2
    assert "refused: nothing to retry; the failure record s3://" in err
    assert err.count("\n") == 1


def test_retry_of_a_run_that_failed_before_enrichment_redrives_it(
    deployed, snowflake, monkeypatch, closed_port
):
    # Snowflake down: its port refuses connections.
    env = deployed(
        snowflake_secret=snowflake.secret(port=closed_port),
        env={"SNOWFLAKE_LOGIN_TIMEOUT_S": "1"},
    )
    report = env.pipeline.run({"run_id": "no-snowflake"}, name="no-snowflake")
    assert report.error == "SnowflakeUnavailableError"
    stubs = stub_one_call(  # moto 5.2.5 has no RedriveExecution
        monkeypatch,
        "stepfunctions",
        "states.RedriveExecution",
        "redrive_execution",
        {"redriveDate": datetime.now(UTC)},
        {"executionArn": report.execution_arn},
    )

    code, out, err = env.enrichctl("retry", "no-snowflake")

    assert (code, err) == (0, "")
    assert "redriving no-snowflake: FAILED with SnowflakeUnavailableError" in out
    stubs[0].assert_no_pending_responses()  # RedriveExecution was called, with that ARN
    assert len(env.api.requests) == 0


# --------------------------------------------------------------------------- errors
def test_unknown_execution_is_one_clear_line(deployed):
    env = deployed()

    for command in ("show", "retry"):
        code, out, err = env.enrichctl(command, "no-such-run")
        assert (code, out) == (2, "")
        assert err == (
            f"enrichctl {command}: error: unknown execution 'no-such-run' in stack "
            "'ImdbEnrichment': list recent runs with `enrichctl status` and pass a name or ARN "
            "from there\n"
        )


def test_stack_not_deployed_is_one_clear_line(deployed):
    env = deployed()

    code, out, err = env.enrichctl("status", "--stack", "Elsewhere")

    assert (code, out) == (2, "")
    assert err == (
        "enrichctl status: error: stack 'Elsewhere' is not deployed in us-east-1: deploy it "
        "with `npx cdk deploy`, or point at it with --stack/--region/--profile\n"
    )


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """An environment where boto3 finds no credentials (and asks no metadata service)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_credentials_is_one_clear_line(no_credentials, capsys):
    from enrichctl.cli import main

    for argv in (["status"], ["show", "x"], ["run"], ["retry", "x"], ["smoke"]):
        code = main([*argv, "--region", "us-east-1"])
        out, err = capsys.readouterr()
        assert (code, out) == (2, "")
        assert err == (
            f"enrichctl {argv[0]}: error: no AWS credentials found (the default credential "
            "chain): run `aws configure` or `aws sso login`, or set AWS_PROFILE\n"
        )


def test_unknown_profile_and_missing_region_are_one_clear_line(no_credentials, capsys, monkeypatch):
    from enrichctl.cli import main

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert main(["status", "--profile", "nope", "--region", "us-east-1"]) == 2
    assert capsys.readouterr().err == (
        "enrichctl status: error: AWS profile 'nope' is not configured: check "
        "`aws configure list-profiles` or drop --profile\n"
    )
    assert main(["status"]) == 2
    assert capsys.readouterr().err == (
        "enrichctl status: error: no AWS region: pass --region REGION or set AWS_REGION "
        "(or the profile's)\n"
    )


def test_run_limit_above_the_pipeline_maximum_is_refused_before_starting(capsys):
    # The pipeline refuses it in QueryIds: starting it would only fail the run and page.
    from enrich_shared.models import MAX_LIMIT
    from enrichctl.cli import MAX_RUN_LIMIT, main

    assert MAX_RUN_LIMIT == MAX_LIMIT
    assert main(["run", "--limit", str(MAX_LIMIT + 1), "--region", "us-east-1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "argument --limit: 100000001 must be at most 100,000,000 rows" in err


def test_retry_of_an_incomplete_failure_record_is_refused_with_the_fix():
    # The state machine's cause and README say: fix S3, then a new run for the whole night.
    # A retry over the record (or a redrive) would silently skip the unrecorded batch.
    from types import SimpleNamespace

    from enrichctl.ops.aws import OpsError
    from enrichctl.ops.executions import plan_retry

    described = {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:Pipeline:night",
        "name": "night",
        "status": "FAILED",
        "error": "FailureRecordIncomplete",
        "input": '{"run_id": "scheduled-2026-11-25T02:00:00Z"}',
    }
    with pytest.raises(OpsError) as refused:
        plan_retry(SimpleNamespace(bucket="run-data"), described)
    message = str(refused.value)
    assert message.startswith("refused: night ended FailureRecordIncomplete")
    assert "s3://run-data/runs/scheduled-2026-11-25T02:00:00Z/failed/" in message
    assert message.endswith("start a new run for the whole night with `enrichctl run`")
