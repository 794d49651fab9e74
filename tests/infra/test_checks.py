"""The checks `make test` must run: cdk-nag, cfn-lint, the pinned CDK CLI, app.py's errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import stacks.pipeline_stack as pipeline_stack
from stacks.config.context import with_local_placeholders
from stacks.config.limits import LOCAL_PLACEHOLDER_EXTERNAL_ID, LOCAL_PLACEHOLDER_IAM_USER_ARN
from stacks.synth import REPO_ROOT, synth_app

OFFLINE_ENV = {
    # No credentials, no instance metadata lookups: synth must not need AWS at all.
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_PROFILE": "",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "CDK_DISABLE_VERSION_CHECK": "1",
}


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({k: v for k, v in OFFLINE_ENV.items() if v})
    # cdk.json runs `.venv/bin/python app.py`; keep PATH pointing at the same interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


#: Every optional resource switched on (Slack, API key secret), and the schedule off.
FULL_OPTIONS = {
    "pipeline.alarms.slackWorkspaceId": "T0123ABCD",
    "pipeline.alarms.slackChannelId": "C0123ABCD",
    "pipeline.alarms.emails": ["ops@example.com"],
    "pipeline.enrichment.apiKeySecretName": "imdb-enrichment/api-key",
    "pipeline.schedule.enabled": False,
    "pipeline.load.source": "s3://partner-enrichment-results/imdb/",
}


#: `cdk synth` with Snowflake's two values set (what cdk.json holds after the setup).
PLACEHOLDER_CLI_CONTEXT = [
    "-c",
    f"pipeline.load.snowflakeIamUserArn={LOCAL_PLACEHOLDER_IAM_USER_ARN}",
    "-c",
    f"pipeline.load.externalId={LOCAL_PLACEHOLDER_EXTERNAL_ID}",
]


@pytest.mark.parametrize("overrides", [{}, FULL_OPTIONS], ids=["defaults", "all-options"])
def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(
    tmp_path: Path, overrides: dict[str, Any]
) -> None:
    # synth raises ValidationFailed when any AwsSolutions finding is not acknowledged.
    _, stack, _ = synth_app(overrides, nag=True, outdir=str(tmp_path))
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert [r["conclusion"] for r in report["pluginReports"]] == ["success"]
    acks = pipeline_stack.NAG_ACKNOWLEDGEMENTS(stack)
    assert acks, "expected the documented acknowledgements"
    for _, rule, reason in acks:
        assert rule.startswith("AwsSolutions::AwsSolutions-")
        assert len(reason) > 60, f"{rule}: give a real reason"


def test_cdk_nag_really_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the acknowledgements, the same stack must fail: the check is not vacuous.
    monkeypatch.setattr(pipeline_stack, "NAG_ACKNOWLEDGEMENTS", lambda stack: [])
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_app(nag=True, outdir=str(tmp_path))
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-S1" in report and "AwsSolutions-L1" in report


def test_cfn_lint_reports_no_errors(template: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "ImdbEnrichment.template.json"
    path.write_text(json.dumps(template))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert not errors, result.stdout
    assert result.returncode in (0, 4, 8, 12), result.stdout + result.stderr  # warnings/info ok


@pytest.mark.slow
@pytest.mark.bundling
def test_pinned_cdk_cli_synthesizes_offline(tmp_path: Path) -> None:
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx not found: install Node.js (make setup installs the pinned CLI)")
    out = tmp_path / "cdk.out"
    result = subprocess.run(
        # The CLI bundles every function (it forbids `aws:` context keys, so bundling cannot
        # be skipped here): pip only talks to PyPI, and .build/ caches the wheels.
        [
            npx,
            "--no-install",
            "cdk",
            "synth",
            "--quiet",
            "--no-notices",
            "--output",
            str(out),
            *PLACEHOLDER_CLI_CONTEXT,
        ],
        cwd=REPO_ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    version = subprocess.run(
        [npx, "--no-install", "cdk", "--version"],
        cwd=REPO_ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert version.startswith(pinned)
    template = json.loads((out / "ImdbEnrichment.template.json").read_text())
    assert "AWS::StepFunctions::StateMachine" in {r["Type"] for r in template["Resources"].values()}


def run_app_py(context: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run app.py as `cdk synth` does: the CLI hands context over in CDK_CONTEXT_JSON."""
    env = offline_env()
    env["CDK_CONTEXT_JSON"] = json.dumps(context)
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_app_py_with_cdk_json_defaults_stops_with_one_message_naming_the_setup() -> None:
    # cdk.json ships without Snowflake's two integration values: a deploy must stop at synth
    # (no local placeholders on this path), with one message that says what to set.
    result = run_app_py(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # (jsii may print a Node version banner first; the configuration speaks in one line)
    [message] = [line for line in result.stderr.splitlines() if "pipeline" in line]
    assert message.startswith(
        "Invalid pipeline configuration: pipeline.load.snowflakeIamUserArn and "
        "load.externalId not set while pipeline.load.enabled=true"
    )
    for hint in ("enrichctl snowflake-setup", "DESC INTEGRATION", "load.enabled=false"):
        assert hint in message


def test_app_py_stops_on_a_bad_value_with_one_clear_message() -> None:
    context = with_local_placeholders(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    context["pipeline.enrichment.baseUrl"] = "http://insecure.example.com/x"
    result = run_app_py(context)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        "Invalid pipeline configuration: pipeline.enrichment.baseUrl="
        "'http://insecure.example.com/x' is not an https URL; fix:" in result.stderr
    )
