"""`enrichctl local` end to end: the CLI contract (JSON summary, exit codes, one-line errors)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from enrichctl.cli import main
from enrichctl.local_run.report import SUMMARY_KEYS


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
        ["local", "--nights", "0"],
        ["local", "--nights", "31"],
        ["local", "--nights", "two"],
        ["local", "--refresh-after-days", "0"],
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


# --------------------------------------------------------------------------- --nights
def run_nights_cli(capsys, *args: str) -> tuple[int, list[dict], str]:
    code = main(["local", "--json", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_two_nights_second_sends_nothing_because_every_id_is_fresh(capsys, tmp_path):
    code, nights, err = run_nights_cli(
        capsys, "--output-dir", str(tmp_path), "--rows", "150",
        "--nights", "2", "--refresh-after-days", "7",
    )  # fmt: skip

    assert code == 0, err
    assert len(nights) == 2
    assert all(tuple(night) == SUMMARY_KEYS for night in nights)
    assert len(SUMMARY_KEYS) == 11 and SUMMARY_KEYS[-2:] == ("loaded_ids", "skipped_fresh_ids")
    first, second = nights
    assert first["status"] == "SUCCEEDED" and first["skipped_fresh_ids"] == 0
    assert first["loaded_ids"] == first["ids"] > 0  # every sent ID merged into the state as OK
    assert second["status"] == "SUCCEEDED"
    assert second["http_requests"] == second["batches"] == second["ids"] == 0
    assert second["skipped_fresh_ids"] == first["ids"]
    assert second["loaded_ids"] == 0
    assert json.loads((tmp_path / "nights.json").read_text()) == nights
    assert len(list((tmp_path / "s3" / "runs").iterdir())) == 2  # a run ID per night


def test_failed_ids_are_pulled_again_and_the_last_night_sets_the_exit_code(capsys, tmp_path):
    code, nights, _ = run_nights_cli(
        capsys, "--output-dir", str(tmp_path), "--rows", "150", "--nights", "2",
        "--refresh-after-days", "7", "--api-fail-rate", "1", "--api-fail-status", "400",
    )  # fmt: skip

    assert code == 1
    first, second = nights
    assert first["status"] == second["status"] == "FAILED"
    assert first["loaded_ids"] == second["loaded_ids"] == 0
    # Nothing was enriched, so nothing is fresh: night 2 sends every ID again.
    assert second["skipped_fresh_ids"] == 0
    assert second["ids"] == first["ids"] and second["http_requests"] == first["http_requests"] > 0


def test_full_ignores_the_state_on_the_first_night_only(capsys, tmp_path):
    code, nights, err = run_nights_cli(
        capsys, "--output-dir", str(tmp_path), "--rows", "80", "--nights", "2",
        "--refresh-after-days", "7", "--full",
    )  # fmt: skip

    assert code == 0, err
    assert nights[0]["skipped_fresh_ids"] == 0 and nights[0]["http_requests"] > 0
    assert nights[1]["skipped_fresh_ids"] == nights[0]["ids"]  # the state counts again


def test_a_loop_that_heals_exits_0_because_the_last_night_decides(capsys, tmp_path):
    # 30 % of requests answered 400 (not retried): night 1 fails some batches, night 2 pulls
    # exactly their IDs again (FAILED in the state table). The local API draws its failures
    # from a fixed seed, so which nights fail is the same on every run: here night 2's few
    # requests all succeed.
    code, nights, err = run_nights_cli(
        capsys, "--output-dir", str(tmp_path), "--rows", "2000", "--nights", "2",
        "--api-fail-rate", "0.3", "--api-fail-status", "400",
    )  # fmt: skip

    first, second = nights
    assert first["status"] == "FAILED" and first["failed_batches"] > 0
    assert first["loaded_ids"] < first["ids"]
    assert second["ids"] == first["ids"] - first["loaded_ids"]  # exactly the failed IDs
    assert second["skipped_fresh_ids"] == first["loaded_ids"]
    assert second["status"] == "SUCCEEDED" and second["loaded_ids"] == second["ids"]
    assert code == 0, err


def test_terminal_view_shows_each_night_and_results_read_back_from_snowflake(capsys, tmp_path):
    code = main(["local", "--rows", "80", "--nights", "2", "--output-dir", str(tmp_path)])
    out, err = capsys.readouterr()

    assert code == 0, err
    text = " ".join(out.split())  # rich wraps and pads
    nights = json.loads((tmp_path / "nights.json").read_text())
    sent = nights[0]["ids"]
    assert "night 1/2" in text and "night 2/2" in text
    assert f"{sent} sent, {sent} loaded, 0 fresh" in text
    assert f"0 sent, 0 loaded, {sent} fresh" in text
    # The results table, counted and sampled from the embedded Snowflake after the last night.
    assert f"ENRICH_RESULTS in the embedded Snowflake ({sent} rows, first 5)" in text
    run_1 = sorted(p.name for p in (tmp_path / "s3" / "runs").iterdir())[0]
    assert text.count(run_1) >= 5  # every sampled row was loaded by night 1
    assert "SUCCEEDED night 2 of 2" in text
