"""The cost model: prices, counts and arithmetic that the README's cost table relies on."""

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from enrichctl.bench.cli import cmd_cost
from enrichctl.cli import build_parser
from enrichctl.cost import (
    HOURS_PER_MONTH,
    LOADING,
    NIGHT,
    NIGHTS_PER_MONTH,
    PRICES,
    SOURCES,
    Workload,
    estimate,
    express_billed_ms,
    night_usage,
    template_counts,
    usd,
)
from stacks.memory import FUNCTION_MEMORY_MB

REPO = Path(__file__).resolve().parents[2]


def test_agent_price_is_the_t2_micro_month():
    assert PRICES.agent_per_month == pytest.approx(8.468, abs=0.001)


def test_every_price_names_its_source_page():
    assert set(SOURCES) == {"stepfunctions", "lambda", "s3", "cloudwatch", "secretsmanager", "ec2"}
    assert all(url.startswith("https://aws.amazon.com/") for url in SOURCES.values())


def test_design_prices():
    assert PRICES.sfn_standard_per_transition * 1000 == pytest.approx(0.025)
    assert PRICES.sfn_express_per_request * 1e6 == pytest.approx(1.00)
    assert PRICES.lambda_per_request * 1e6 == pytest.approx(0.20)
    assert PRICES.lambda_per_gb_s == pytest.approx(0.0000133334)


def test_the_cost_model_prices_the_stacks_memory_without_loading_cdk():
    """`enrichctl cost` reads the sizes the stack deploys (stacks/memory.py) and stays free of
    aws_cdk, which stacks/functions.py would load."""
    code = (
        "import sys; from enrichctl.cost import Workload; from stacks.memory import "
        "FUNCTION_MEMORY_MB as m; assert Workload(1).memory_mb == m, m; "
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('aws_cdk', 'constructs')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("ids", "batches"), [(1, 1), (70, 1), (71, 2), (1_000_000, 14_286)])
def test_batches_are_ids_over_70_rounded_up(ids, batches):
    assert Workload(ids).batch_count == batches


@pytest.mark.parametrize(
    ("ms", "billed"), [(0, 100), (1, 100), (100, 100), (101, 200), (1050, 1100)]
)
def test_express_duration_rounds_up_to_100_ms(ms, billed):
    assert express_billed_ms(ms) == billed


def test_one_night_counts():
    usage = night_usage(Workload(ids=700, enrich_ms=250, enrich_cpu_ms=0))
    assert usage.express_requests == 10
    # QueryIds + BuildUrls + CountFailedBatches + LoadResults + one InvokeEnrich per batch
    assert usage.lambda_requests == 14
    # 10 children x 300 ms billed (250 + 50 overhead) at 64 MB
    assert usage.express_gb_s == pytest.approx(10 * 0.3 * 64 / 1024)
    assert usage.lambda_gb_s["invoke_enrich"] == pytest.approx(
        10 * 0.25 * FUNCTION_MEMORY_MB["invoke_enrich"] / 1024
    )


def test_invoke_enrichs_own_cpu_time_stretches_with_less_memory():
    # Lambda gives CPU in proportion to memory (one vCPU at 1,769 MB).
    full = Workload(700, enrich_ms=1000, enrich_cpu_ms=20, memory_mb={"invoke_enrich": 1769})
    small = replace(full, memory_mb={"invoke_enrich": 128})
    assert full.invoke_ms == pytest.approx(1020)
    assert small.invoke_ms == pytest.approx(1000 + 20 * 1769 / 128)
    assert Workload(700).invoke_ms > Workload(700).enrich_ms  # the default counts it too


def test_retries_are_billed():
    plain, retried = night_usage(Workload(700)), night_usage(Workload(700, enrich_retries=3))
    assert retried.lambda_requests == plain.lambda_requests + 3
    assert retried.express_gb_s > plain.express_gb_s


def test_no_ids_costs_only_the_query():
    usage = night_usage(Workload(0))
    assert usage.express_requests == 0
    assert usage.lambda_requests == 1


def test_totals_add_up():
    report = estimate(Workload(1_000_000))
    assert report.night == pytest.approx(sum(line.night for line in report.lines))
    assert report.month == pytest.approx(
        report.night * NIGHTS_PER_MONTH + sum(f.month for f in report.fixed_month)
    )
    assert report.to_dict()["agent_month_usd"] == pytest.approx(PRICES.agent_per_month)


def test_cost_grows_with_ids_and_a_mostly_fresh_million_stays_below_the_agent():
    small, big = estimate(Workload(70)), estimate(Workload(1_000_000))
    incremental = estimate(Workload(1_000_000, fresh_share=0.95))
    assert small.month < incremental.month < big.month
    # Re-sending every ID every night no longer beats the agent once each batch's answer is
    # stored (one S3 PUT a batch); pulling only the stale IDs does, by far.
    assert incremental.month < PRICES.agent_per_month
    assert math.isclose(small.month_fixed, big.month_fixed)


def test_template_counts_read_alarms_and_memory():
    template = {
        "Resources": {
            "A": {"Type": "AWS::CloudWatch::Alarm"},
            "F": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Handler": "build_url.handler.lambda_handler", "MemorySize": 768},
            },
        }
    }
    counts = template_counts(template)
    assert counts["alarms"] == 1
    assert counts["memory_mb"]["build_url"] == 768
    assert counts["memory_mb"]["query_ids"] == FUNCTION_MEMORY_MB["query_ids"]


def test_cli_cost_json(capsys):
    args = build_parser().parse_args(["cost", "--ids", "100,000", "--json"])
    assert cmd_cost(args) == 0
    out = capsys.readouterr().out
    assert '"ids": 100000' in out and '"batches": 1429' in out


def test_cli_cost_rejects_bad_usage():
    assert build_parser_exit(["cost"]) == 2
    assert build_parser_exit(["cost", "--ids", "-5"]) == 2


def build_parser_exit(argv):
    from enrichctl.cli import main

    return main(argv)


# --------------------------------------------------------------------------- closing the loop
def test_each_enriched_batch_stores_one_answer_and_copy_reads_it():
    small, big = Workload(7_000), Workload(14_000)  # both well below multipart uploads
    extra_batches = big.batch_count - small.batch_count
    # InvokeEnrich stores one answer per enriched batch (loading on or off)
    assert night_usage(big).s3_put_requests - night_usage(small).s3_put_requests == extra_batches
    with_load, without = night_usage(small), night_usage(replace(small, load=False))
    # COPY lists results/ and failed/ (1,000 keys a LIST) and GETs every stored answer
    assert with_load.s3_put_requests - without.s3_put_requests == 2
    assert with_load.s3_get_requests - without.s3_get_requests == small.batch_count


def test_load_results_is_one_invocation_billed_at_its_memory():
    w = Workload(140_000, load_ms_fixed=2_000, load_us_per_id=10)
    usage, without = night_usage(w), night_usage(replace(w, load=False))
    assert usage.lambda_requests == without.lambda_requests + 1
    seconds = (w.load_ms_fixed + w.load_us_per_id * w.ids / 1000) / 1000
    assert usage.lambda_gb_s["load_results"] == pytest.approx(
        seconds * FUNCTION_MEMORY_MB["load_results"] / 1024
    )
    line = next(x for x in estimate(w).lines if x.service.startswith("Loading: LoadResults"))
    assert line.group == LOADING
    # Its invocation, plus its one transition, one secret read and its log lines.
    assert line.night == pytest.approx(
        PRICES.lambda_per_request
        + usage.lambda_gb_s["load_results"] * PRICES.lambda_per_gb_s
        + PRICES.sfn_standard_per_transition
        + PRICES.secret_api_per_request
        + w.load_log_bytes / 1e9 * PRICES.logs_ingest_per_gb
    )


def test_snowflake_warehouse_time_is_never_in_the_aws_total():
    plain = estimate(Workload(1_000_000))
    priced = estimate(Workload(1_000_000, warehouse_usd_per_hour=3.0))
    assert plain.snowflake is None
    assert priced.night == pytest.approx(plain.night)
    usage = night_usage(Workload(1_000_000))
    assert priced.snowflake.night == pytest.approx(usage.warehouse_s / 3600 * 3.0)


def test_warehouse_time_has_snowflakes_60_second_minimum():
    assert night_usage(Workload(70, load_ms_fixed=100, query_ms_fixed=100)).warehouse_s == 60


@pytest.mark.parametrize("share", [0.5, 0.95, 1.0])
def test_fresh_ids_are_not_batched_sent_stored_or_loaded(share):
    ids = 1_000_000
    w = Workload(ids, fresh_share=share)
    stale = ids - round(ids * share)
    assert w.sent_ids == stale
    assert w.batch_count == math.ceil(stale / w.ids_per_batch)
    assert night_usage(w).express_requests == w.batch_count
    assert night_usage(w).lambda_gb_s.get("load_results", 0.0) == pytest.approx(
        (w.load_ms_fixed + w.load_us_per_id * stale / 1000)
        / 1000
        * FUNCTION_MEMORY_MB["load_results"]
        / 1024
        if stale
        else 0.0
    )
    # Exactly the night of a table holding only the stale IDs, except the count it reports.
    assert night_usage(w) == night_usage(Workload(stale))
    assert estimate(w).skipped_fresh_ids == ids - stale


def test_a_mostly_fresh_night_costs_a_fraction():
    full, fresh = estimate(Workload(1_000_000)), estimate(Workload(1_000_000, fresh_share=0.95))
    assert fresh.batches == math.ceil(50_000 / 70)
    assert fresh.night < full.night * 0.1


def test_cli_cost_fresh_share(capsys):
    args = build_parser().parse_args(
        ["cost", "--ids", "1000000", "--fresh-share", "0.95", "--json"]
    )
    assert cmd_cost(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["skipped_fresh_ids"] == 950_000
    assert out["batches"] == math.ceil(50_000 / 70)
    assert build_parser_exit(["cost", "--ids", "10", "--fresh-share", "1.5"]) == 2


# --------------------------------------------------------------------------- issue 12: lean
def test_the_nights_work_and_results_loading_are_priced_apart_and_add_up():
    for w in (Workload(70), Workload(1_000_000), Workload(1_000_000, load=False)):
        report = estimate(w)
        assert {line.group for line in report.lines} == {NIGHT, LOADING}
        assert report.group_night(NIGHT) + report.group_night(LOADING) == pytest.approx(
            report.night
        )
        assert report.month_without_loading + report.month_loading == pytest.approx(report.month)
        out = report.to_dict()
        assert out["month_without_loading_usd"] == pytest.approx(report.month_without_loading)


def test_loading_lines_hold_the_stored_answers_and_load_results():
    w = Workload(1_000_000)
    usage, report = night_usage(w), estimate(w)
    # One stored answer per batch + the stage's LISTs; COPY GETs each answer.
    assert usage.loading_s3_put_requests == w.batch_count + 2 * math.ceil(w.batch_count / 1000)
    assert usage.loading_s3_get_requests == w.batch_count
    run_files = next(x for x in report.lines if x.service == "S3 requests (run files)")
    assert run_files.group == NIGHT and "14286" not in run_files.detail
    # Loading off: the answers are still stored (InvokeEnrich always stores them).
    off = night_usage(replace(w, load=False))
    assert off.loading_s3_put_requests == w.batch_count and off.loading_s3_get_requests == 0


def test_custom_metric_is_billed_per_hour_it_receives_data():
    # "prorated by the hour and metered only when you send metrics" (cloudwatch pricing):
    # FailedBatches is put once a run, so one metric-hour a night.
    line = next(x for x in estimate(Workload(70)).lines if "custom metric" in x.service)
    assert line.night == pytest.approx(PRICES.custom_metric_per_month / HOURS_PER_MONTH)
    assert line.month == pytest.approx(0.30 * NIGHTS_PER_MONTH / HOURS_PER_MONTH)
    assert night_usage(Workload(0)).custom_metric_hours == 0  # no run past QueryIds: no put
    assert all("custom" not in f.service for f in estimate(Workload(70)).fixed_month)


def test_children_log_only_their_failures():
    clean, retried = Workload(700), Workload(700, enrich_retries=4)
    extra = night_usage(retried).log_gb - night_usage(clean).log_gb
    assert extra == pytest.approx(4 * (clean.enrich_log_bytes + clean.child_error_log_bytes) / 1e9)
    # A clean night: children add nothing beyond the InvokeEnrich lines.
    more = night_usage(Workload(1_400)).log_gb - night_usage(clean).log_gb
    assert more == pytest.approx(10 * clean.enrich_log_bytes / 1e9)


def test_issue_12_targets():
    """<= $1.20 a month at the seed's 70 IDs; at 1,000,000 IDs the night's own work (without
    results loading) at most half of the $7.60 it cost before (1 s API, no free tier)."""
    assert estimate(Workload(70)).month <= 1.20
    assert estimate(Workload(1_000_000)).month_without_loading <= 7.60 / 2


def test_cli_cost_prints_both_subtotals(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # no wrapped cells
    assert cmd_cost(build_parser().parse_args(["cost", "--ids", "1000000"])) == 0
    out = capsys.readouterr().out
    assert "subtotal without results loading" in out and "subtotal results loading" in out
    assert out.index("subtotal without results loading") < out.index("Loading: LoadResults")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "$0"),
        (8.468, "$8.47"),
        (1234.5, "$1,234.50"),
        (0.9999, "$1.00"),
        (0.1, "$0.10"),
        (0.0238, "$0.024"),
        (0.000284, "$0.00028"),
        (0.0000251, "$0.000025"),
        (-0.0238, "-$0.024"),
    ],
)
def test_usd_keeps_two_significant_digits_below_a_dollar(value, text):
    assert usd(value) == text


def test_cli_cost_prints_the_figures_the_costs_page_shows(capsys, monkeypatch):
    """docs/costs.md says its rows are what `enrichctl cost` prints: every dollar cell of the
    rendered 1,000,000-ID breakdown is on the CLI's line of the same service."""
    from tools.docs import Sources, render_cost_night

    monkeypatch.setenv("COLUMNS", "250")  # no wrapped cells
    assert cmd_cost(build_parser().parse_args(["cost", "--ids", "1000000"])) == 0
    printed = {
        cells[0]: cells[2:]
        for line in capsys.readouterr().out.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 4
    }
    rows = [line.strip("| ").split(" | ") for line in render_cost_night(Sources()).splitlines()]
    services = [row for row in rows if len(row) == 4 and row[0] in printed]
    assert len(services) >= 9  # every line and fixed cost of the block, not just a few
    for service, _, night, month in services:
        assert printed[service] == [night, month], service
