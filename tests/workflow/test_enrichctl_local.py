"""`enrichctl local` end to end: the CLI contract (JSON summary, exit codes, one-line errors)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from enrichctl.cli import main
from enrichctl.local_run.runner import SUMMARY_KEYS


@pytest.fixture(autouse=True)
def _template_ready(pipeline_template):
    # The CLI reuses the per-worker synthesized template through the synth cache.
    return pipeline_template


def run_cli(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["local", "--json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_json_summary_has_exactly_the_contract_keys_and_exit_0(capsys, tmp_path):
    code, summary, err = run_cli(capsys, "--output-dir", str(tmp_path))

    assert code == 0, err
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["status"] == "SUCCEEDED"
    assert summary["ids"] > 0 and summary["invalid_ids"] > 0  # the shipped sample is dirty
    assert summary["failed_batches"] == 0
    assert summary["http_requests"] == summary["batches"] > 0
    assert summary["output_dir"] == str(tmp_path)
    # Where the output went: the API's records, the run's S3 objects, the run files.
    assert len(list((tmp_path / "enriched").glob("request-*.jsonl"))) == summary["batches"]
    assert list((tmp_path / "s3" / "runs").glob("*/batches.json"))
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (tmp_path / "lambda.log").stat().st_size > 0  # handler logs kept off the terminal


def test_failed_run_exits_1(capsys, tmp_path):
    code, summary, _ = run_cli(
        capsys,
        "--output-dir",
        str(tmp_path),
        "--rows",
        "150",
        "--api-fail-rate",
        "1",
        "--api-fail-status",
        "400",
    )

    assert code == 1
    assert summary["status"] == "FAILED"
    assert summary["failed_batches"] == summary["batches"] == summary["http_requests"] > 0


def test_scheduled_time_runs_the_schedule_shaped_input(capsys, tmp_path):
    # Another spelling of 02:00 UTC: the run ID is the normalized UTC time.
    code, summary, err = run_cli(
        capsys, "--output-dir", str(tmp_path), "--rows", "30",
        "--scheduled-time", "2026-11-25T03:00:00+01:00",
    )  # fmt: skip

    assert code == 0, err
    assert summary["status"] == "SUCCEEDED"
    run = tmp_path / "s3" / "runs" / "scheduled-2026-11-25T02:00:00Z"
    assert (run / "claim.json").is_file() and (run / "batches.json").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["local", "--api-fail-rate", "2"],
        ["local", "--retry-waits", "never"],
        ["local", "--rows", "-1"],
        ["local", "--snowflake-secret-file", "/nonexistent/secret.json"],
        ["local", "--api-url", "ftp://example.invalid"],
        ["local", "--scheduled-time", "2026-11-25T02:00:00"],  # no zone
        ["unknown-command"],
    ],
)
def test_bad_usage_or_config_exits_2_with_one_clear_line(capsys, tmp_path, args):
    code = main([*args, "--output-dir", str(tmp_path)] if args[0] == "local" else args)
    out, err = capsys.readouterr()

    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0]


def test_python_dash_m_enrichctl_is_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "enrichctl", "local", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "--api-fail-rate" in result.stdout and "--retry-waits" in result.stdout


def test_a_dead_interpreter_thread_fails_the_run_instead_of_hanging(capsys, tmp_path, monkeypatch):
    # A corner no real component reaches: moto's Map worker raising. Its thread dies with
    # the batch's job still open, so the execution would stay RUNNING for ever; the run must
    # end FAILED at once, say what died, keep the traceback and exit 1.
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E501
        distributed_item_processor_worker as worker,
    )

    def broken_eval_job(self, env, job):
        raise RuntimeError("injected fault in moto's Map worker")

    monkeypatch.setattr(worker.DistributedItemProcessorWorker, "_eval_job", broken_eval_job)
    started = time.monotonic()
    code = main(["local", "--rows", "150", "--output-dir", str(tmp_path)])
    out, err = capsys.readouterr()

    assert code == 1 and "unexpected" not in err, err
    assert time.monotonic() - started < 120  # not the run's 600 s timeout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "FAILED" and summary["batches"] == 3
    last_line = " ".join(out.split())  # rich wraps long lines
    assert "FAILED run" in last_line and "LocalRunInternalError" in last_line
    assert "RuntimeError: injected fault in moto's Map worker" in last_line
    assert "not of the pipeline" in last_line and "internal-error.txt" in last_line
    traceback_text = (tmp_path / "internal-error.txt").read_text()
    assert "Traceback" in traceback_text and "broken_eval_job" in traceback_text
    assert "Traceback" not in out + err  # the terminal gets one line, the file the rest
