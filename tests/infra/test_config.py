"""Configuration validation: every bad value stops synth with one message (key, value, fix)."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import jsonschema
import pytest

from stacks.config import problems, reference, schema
from stacks.config.context import DEFAULTS, load_config, with_local_placeholders
from stacks.config.cron import dst_gaps, parse_cron_times
from stacks.config.problems import ConfigError
from stacks.config.schema import SCHEMA_DIR
from stacks.synth import REPO_ROOT, cdk_json_context
from tests.config_keys import leaf_keys
from tests.test_shared_imports import LAMBDAS, imported_modules

TODAY = date(2026, 11, 25)


def config_with(**dotted: Any):
    """Load cdk.json's configuration with `pipeline.<dotted key>` overrides."""
    context = cdk_json_context()
    context.update({f"pipeline.{k.replace('__', '.')}": v for k, v in dotted.items()})
    return load_config(with_local_placeholders(context), today=TODAY)


def error_of(**dotted: Any) -> str:
    with pytest.raises(ConfigError) as excinfo:
        config_with(**dotted)
    return str(excinfo.value)


def test_cdk_json_holds_every_key_with_the_code_defaults() -> None:
    pipeline = cdk_json_context()["pipeline"]
    expected = copy.deepcopy(DEFAULTS)
    expected["enrichment"]["baseUrl"] = pipeline["enrichment"]["baseUrl"]
    assert pipeline == expected


def test_defaults_load_and_derive_client_timeouts_below_lambda_timeouts() -> None:
    config = config_with()
    assert config.schedule.cron == "cron(0 2 * * ? *)"
    assert config.schedule.timezone == "UTC"
    sf = config.snowflake
    assert sf.login_timeout_s < sf.timeout_seconds
    assert sf.network_timeout_s <= sf.statement_timeout_s < sf.timeout_seconds
    en = config.enrichment
    assert en.connect_timeout_s + en.timeout_seconds < en.lambda_timeout_s


def test_dotted_override_and_json_strings_from_the_cli_are_applied() -> None:
    config = config_with(
        schedule__cron="cron(15 3 * * ? *)",
        enrichment__maxConcurrency="25",
        alarms__emails='["ops@example.com"]',
    )
    assert config.schedule.cron == "cron(15 3 * * ? *)"
    assert config.enrichment.max_concurrency == 25
    assert config.alarms.emails == ("ops@example.com",)


def test_whole_object_override_as_json_string() -> None:
    context = {"pipeline": '{"enrichment": {"baseUrl": "https://api.example.org/x"}}'}
    config = load_config(with_local_placeholders(context), today=TODAY)
    assert config.enrichment.base_url == "https://api.example.org/x"


def test_unknown_key() -> None:
    message = error_of(enrichment__maxConcurency=5)
    assert "pipeline.enrichment.maxConcurency=5 is not a known configuration key" in message
    assert "maxConcurrency" in message  # the fix lists the real keys


def test_unknown_top_level_key_in_the_object() -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.shedule=\{\} is not a known"):
        load_config({"pipeline": {"shedule": {}}}, today=TODAY)


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("0 2 * * ? *", "it must look like cron(...)"),
        ("cron(0 2 * * *)", "it has 5 fields inside cron(...), Scheduler needs 6"),
        ("cron(0 25 * * ? *)", "25 is outside 0-23"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("rate(1 day)", "it must look like cron(...)"),
    ],
)
def test_malformed_cron(cron: str, problem: str) -> None:
    message = error_of(schedule__cron=cron)
    assert f"pipeline.schedule.cron={cron!r} is not a valid Scheduler cron expression" in message
    assert problem in message
    assert "fix: use cron(minutes hours day-of-month month day-of-week year)" in message


def test_unknown_time_zone() -> None:
    message = error_of(schedule__timezone="Mars/Olympus_Mons")
    assert "pipeline.schedule.timezone='Mars/Olympus_Mons' is not a known IANA time zone" in message
    assert "fix:" in message and "Europe/Paris" in message


def test_time_zone_with_wrong_case_suggests_the_right_name() -> None:
    assert "did you mean 'Europe/Paris'?" in error_of(schedule__timezone="europe/paris")


def test_non_https_base_url() -> None:
    message = error_of(enrichment__baseUrl="http://api.example.com/lamba-tmdb")
    assert (
        "pipeline.enrichment.baseUrl='http://api.example.com/lamba-tmdb' is not an https URL"
        in (message)
    )
    assert "fix: use https://<host>/<path>" in message


def test_base_url_that_cannot_be_parsed_is_not_an_https_url() -> None:
    # urlsplit raises on an unclosed IPv6 bracket: that used to escape as a bare ValueError.
    message = error_of(enrichment__baseUrl="https://[::1/lamba-tmdb")
    assert "pipeline.enrichment.baseUrl='https://[::1/lamba-tmdb' is not an https URL" in message


def test_missing_base_url() -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.enrichment\.baseUrl=None is required"):
        load_config({}, today=TODAY)


def test_malformed_email() -> None:
    message = error_of(alarms__emails=["ops@example.com", "oncall-at-example.com"])
    assert "pipeline.alarms.emails[1]='oncall-at-example.com' is not an e-mail address" in message
    assert "fix: use name@domain.tld" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("enrichment__maxConcurrency", 0, "from 1 to 10000"),
        ("enrichment__maxIdsPerRequest", 5000, "from 1 to 1000"),
        ("alarms__missedRunHours", 500, "from 2 to 168"),
        ("snowflake__timeoutSeconds", 901, "from 60 to 900"),
        ("retention__runDataDays", 0, "from 1 to 3650"),
        ("enrichment__retry__maxAttempts", 11, "from 0 to 10"),
        ("snowflake__retry__backoffRate", 0.5, "from 1.0 to 10.0"),
    ],
)
def test_out_of_range_numbers(key: str, value: Any, expected: str) -> None:
    message = error_of(**{key: value})
    dotted = "pipeline." + key.replace("__", ".")
    assert f"{dotted}={value!r} is out of range; fix: use a number {expected}" in message


def test_not_a_number() -> None:
    assert "pipeline.enrichment.maxConcurrency='ten' is not a whole number" in error_of(
        enrichment__maxConcurrency="ten"
    )


def test_log_retention_must_be_a_cloudwatch_value() -> None:
    message = error_of(retention__logDays=31)
    assert "pipeline.retention.logDays=31 is not a retention CloudWatch Logs accepts" in message
    assert "30" in message and "60" in message


def test_cron_in_the_spring_forward_gap_is_refused_with_a_safe_time() -> None:
    message = error_of(schedule__timezone="America/New_York", schedule__cron="cron(30 2 * * ? *)")
    assert "pipeline.schedule.cron='cron(30 2 * * ? *)' fires at 02:30 in America/New_York" in (
        message
    )
    assert "does not exist on 2027-03-14" in message
    assert "clocks jump from 02:00 to 03:00 for daylight saving" in message
    assert "e.g. cron(0 3 * * ? *)" in message


def test_cron_outside_the_gap_is_accepted_in_a_dst_zone() -> None:
    config = config_with(schedule__timezone="America/New_York", schedule__cron="cron(0 3 * * ? *)")
    assert config.schedule.timezone == "America/New_York"


def test_every_hour_cron_hits_the_gap_too() -> None:
    message = error_of(schedule__timezone="Europe/Paris", schedule__cron="cron(0 * * * ? *)")
    assert "fires at 02:00 in Europe/Paris" in message


def test_half_hour_dst_zone_gap_is_found() -> None:
    gaps = dst_gaps("Australia/Lord_Howe", TODAY)
    assert [(g.start.isoformat(), g.end.isoformat()) for g in gaps] == [("02:00:00", "02:30:00")]


def test_utc_has_no_gaps() -> None:
    assert dst_gaps("UTC", TODAY) == []


def test_cron_times_expand_lists_ranges_and_steps() -> None:
    assert parse_cron_times("cron(0/30 1-2 ? * MON-FRI *)") == [(1, 0), (1, 30), (2, 0), (2, 30)]


def test_half_configured_slack_is_refused() -> None:
    message = error_of(alarms__slackWorkspaceId="T0123ABCD")
    assert "pipeline.alarms.slackChannelId=None is missing while the other Slack key is set" in (
        message
    )


def test_retry_budget_beyond_the_express_child_limit_is_refused() -> None:
    message = error_of(
        enrichment__timeoutSeconds=120,
        enrichment__retry__maxAttempts=5,
    )
    assert "pipeline.enrichment.retry=" in message
    assert "not below the 300 s an Express child may live" in message


def test_the_retry_budget_is_reported_alongside_other_problems() -> None:
    # One synth shows everything to fix: the budget used to be checked only without others.
    message = error_of(enrichment__timeoutSeconds=32, schedule__timezone="Mars/Olympus_Mons")
    assert message.startswith("Invalid pipeline configuration (2 problems):")
    assert "not below the 300 s an Express child may live" in message


def test_max_delay_below_interval_is_refused() -> None:
    message = error_of(snowflake__retry__intervalSeconds=60, snowflake__retry__maxDelaySeconds=30)
    assert "pipeline.snowflake.retry.maxDelaySeconds=30 is below" in message


def test_several_problems_are_reported_together() -> None:
    message = error_of(enrichment__baseUrl="ftp://x", logLevel="LOUD")
    assert message.startswith("Invalid pipeline configuration (2 problems):")
    assert "pipeline.logLevel='LOUD' is not a log level" in message


def test_base_url_longer_than_max_url_length_is_refused_at_synth() -> None:
    # Otherwise synth passes and every night fails in BuildUrls with a ConfigurationError.
    base = "https://api.example.com/" + "p" * 300
    message = error_of(enrichment__baseUrl=base, enrichment__maxUrlLength=256)
    assert "pipeline.enrichment.maxUrlLength=256 leaves no room for IDs" in message
    assert "raise it to at least 341" in message
    # Exactly enough room for one longest ID is accepted.
    assert config_with(enrichment__baseUrl=base, enrichment__maxUrlLength=341)


# --------------------------------------------------------------------------- load.*


def test_cdk_json_defaults_stop_with_one_message_naming_the_two_values() -> None:
    # No local placeholders here: this is what `cdk synth`/`cdk deploy` see.
    with pytest.raises(ConfigError) as excinfo:
        load_config(cdk_json_context(), today=TODAY)
    message = str(excinfo.value)
    assert message.startswith(
        "Invalid pipeline configuration: pipeline.load.snowflakeIamUserArn and "
        "load.externalId not set while pipeline.load.enabled=true"
    )
    assert "problems" not in message, "one message, not a list"
    for hint in ("enrichctl snowflake-setup", "DESC INTEGRATION", "STORAGE_AWS_EXTERNAL_ID",
                 "load.enabled=false"):  # fmt: skip
        assert hint in message


def test_only_the_missing_value_is_named() -> None:
    context = cdk_json_context()
    context["pipeline.load.externalId"] = "MYACCOUNT_SFCRole=2_abc="
    with pytest.raises(ConfigError, match=r"pipeline\.load\.snowflakeIamUserArn not set"):
        load_config(context, today=TODAY)


def test_loading_off_needs_neither_value() -> None:
    context = cdk_json_context()
    context["pipeline.load.enabled"] = False
    assert load_config(context, today=TODAY).load.enabled is False


def test_local_placeholders_fill_only_unset_values() -> None:
    context = cdk_json_context()
    context["pipeline.load.externalId"] = "MYACCOUNT_SFCRole=2_abc="
    load = load_config(with_local_placeholders(context), today=TODAY).load
    assert load.external_id == "MYACCOUNT_SFCRole=2_abc="
    assert load.snowflake_iam_user_arn is not None
    assert "local-placeholder" in load.snowflake_iam_user_arn
    context["pipeline.load.enabled"] = False
    assert with_local_placeholders(context) == context


def test_load_defaults() -> None:
    load = config_with().load
    assert (load.stage, load.landing_table, load.results_table, load.state_table) == (
        "ENRICH_RUNS_STAGE",
        "ENRICH_LANDING",
        "ENRICH_RESULTS",
        "ENRICH_STATE",
    )
    assert (load.records_path, load.id_field, load.source) == ("records", "imdb_id", None)
    assert load.role_name == "imdb-enrichment-snowflake-stage"
    assert load.timeout_seconds == 600
    # The incremental pull is on by default with loading: a night re-sends only stale IDs.
    assert config_with().snowflake.incremental.refresh_after_days == 30


def test_load_values_that_are_accepted() -> None:
    config = config_with(
        load__source="s3://partner-results/imdb/out/",
        load__stage="ANALYTICS.ENRICH.RUNS_STAGE",
        load__recordsPath="data.items",
        load__snowflakeIamUserArn="arn:aws:iam::123456789012:user/abc1-s-v2st1234",
        load__externalId="MYACCOUNT_SFCRole=2_abcdefgHIJKLmnop=",
        snowflake__incremental__refreshAfterDays=7,
    )
    assert (config.load.source_bucket, config.load.source_prefix) == (
        "partner-results",
        "imdb/out/",
    )
    assert config.load.stage == "ANALYTICS.ENRICH.RUNS_STAGE"
    assert config.snowflake.incremental.refresh_after_days == 7


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        ("load__enabled", "yes", "use true or false"),
        ("load__source", "https://bucket/prefix/", "s3://bucket/prefix/"),
        ("load__source", "s3://bucket/prefix", "ending in /"),
        ("load__stage", "ENRICH STAGE", "letters, digits, _ and $"),
        ("load__landingTable", "a.b.c.d", "optionally db.schema.name"),
        ("load__resultsTable", "1RESULTS", "letters, digits, _ and $"),
        ("load__stateTable", "", "letters, digits, _ and $"),
        ("load__recordsPath", "records[0]", "data.items"),
        ("load__idField", "imdb.id", "imdb_id"),
        ("load__snowflakeIamUserArn", "arn:aws:iam::123:user/x", "arn:aws:iam::<12 digits>:user/"),
        ("load__externalId", "has space", "STORAGE_AWS_EXTERNAL_ID"),
        ("load__roleName", "x" * 65, "IAM role name"),
        ("snowflake__incremental__refreshAfterDays", 0, "from 1 to 3650"),
        ("snowflake__incremental__refreshAfterDays", "seven", "from 1 to 3650"),
        ("load__timeoutSeconds", 901, "from 60 to 900"),
        ("load__timeoutSeconds", "ten", "from 60 to 900"),
    ],
)
def test_bad_load_values_name_key_value_and_fix(key: str, value: Any, fix: str) -> None:
    message = error_of(**{key: value})
    assert f"pipeline.{key.replace('__', '.')}={value!r}" in message
    assert "fix:" in message and fix in message


def test_loading_off_turns_the_incremental_pull_off() -> None:
    # No state is kept without loading, so there is nothing to be incremental against;
    # `load.enabled=false` alone must be a valid configuration (the first deploy uses it).
    config = config_with(load__enabled=False, snowflake__incremental__refreshAfterDays=3)
    assert config.load.enabled is False
    assert config.snowflake.incremental.refresh_after_days is None
    assert config_with(load__enabled=False).snowflake.incremental.refresh_after_days is None


# --------------------------------------------------------------------------- messages


def test_a_section_given_a_value_on_the_command_line_says_it_must_be_an_object() -> None:
    # `-c pipeline.snowflake=5` used to end in a TypeError from the checker.
    message = error_of(snowflake=5)
    assert "pipeline.snowflake=5 must be an object with keys ['fetchBatchSize'," in message
    assert "fix:" in message


def test_a_section_that_is_not_an_object_is_named_also_with_local_placeholders() -> None:
    # with_local_placeholders reads the load section before validation: it must leave a bad
    # one to load_config, not fail on it.
    context = {"pipeline": {"enrichment": {"baseUrl": "https://api.example.com/x"}, "load": 5}}
    with pytest.raises(ConfigError, match=r"pipeline\.load=5 must be an object with keys \["):
        load_config(with_local_placeholders(context), today=TODAY)


def test_unknown_keys_are_listed_with_the_other_problems() -> None:
    message = error_of(enrichment__maxConcurency=5, logLevel="LOUD")
    assert message.startswith("Invalid pipeline configuration (2 problems):")
    assert "pipeline.enrichment.maxConcurency=5 is not a known configuration key" in message
    assert "pipeline.logLevel='LOUD' is not a log level" in message


def test_a_key_below_a_value_says_what_the_value_must_be() -> None:
    # -c pipeline.schedule.cron.x=1 makes cron an object: the message says cron is text.
    message = error_of(schedule__cron__x=1)
    assert "pipeline.schedule.cron={'x': 1} must be a non-empty string; fix: use a Scheduler" in (
        message
    )


def test_reading_the_context_leaves_it_as_it_was() -> None:
    # A dotted override lands below an object of the context's own: merged into a copy.
    context = {"pipeline": {"shedule": {"cron": "x"}}, "pipeline.shedule.enabled": "true"}
    before = copy.deepcopy(context)
    with pytest.raises(ConfigError, match=r"pipeline\.shedule=\{'cron': 'x', 'enabled': True\}"):
        load_config(context, today=TODAY)
    assert context == before


def test_an_out_of_range_retry_value_is_one_problem() -> None:
    # Not also a second, made-up "maxDelaySeconds=1 is below intervalSeconds" problem.
    message = error_of(enrichment__retry__maxDelaySeconds=0)
    assert message == (
        "Invalid pipeline configuration: pipeline.enrichment.retry.maxDelaySeconds=0 is out of "
        "range; fix: use a number from 1 to 3600"
    )


@pytest.mark.parametrize(
    "dotted",
    [
        {"enrichment__maxConcurrency": '"10"'},  # -c passes JSON: this is the string "10"
        {"schedule__enabled": 1},
        {"alarms__emails": "oncall@example.com"},
        {"alarms__emails": [5]},
        {"retention__logDays": True},
        {"snowflake__retry__backoffRate": '"2"'},
        {"load__source": 5},
        {"snowflake__incremental__refreshAfterDays": 2.5},
    ],
)
def test_messages_are_ours_not_pydantics(dotted: dict[str, Any]) -> None:
    message = error_of(**dotted)
    key = "pipeline." + next(iter(dotted)).replace("__", ".")
    assert key in message and "; fix: " in message
    for pydantic_text in ("pydantic", "Input should", "validation error", "[type="):
        assert pydantic_text not in message


def test_a_check_without_words_of_its_own_still_names_key_value_and_fix(monkeypatch) -> None:
    # Every error type pydantic raises here has words in WORDS; one that has none (a newer
    # pydantic's, say) still gives the key, the value and a fix, never pydantic's URL.
    monkeypatch.delitem(problems.WORDS, "bool_type")
    message = error_of(schedule__enabled=1)
    assert message.startswith("Invalid pipeline configuration: pipeline.schedule.enabled=1 is ")
    assert "invalid (" in message
    assert "fix: see the configuration reference (`python -m stacks.config.reference`)" in message
    assert "errors.pydantic.dev" not in message


# --------------------------------------------------------------------------- schema, reference


def test_the_committed_json_schemas_are_the_models_schemas() -> None:
    for path, text in schema.rendered().items():
        assert path.read_text() == text, f"{path} is stale: run `python -m stacks.config.schema`"


def set_dotted(obj: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of `obj` with `dotted` set to `value`."""
    out = copy.deepcopy(obj)
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node[part]
    node[last] = value
    return out


@pytest.mark.parametrize("name", ["pipeline.schema.json", "cdk.schema.json"])
def test_the_json_schemas_accept_cdk_json_and_refuse_what_synth_refuses(name: str) -> None:
    checker = jsonschema.Draft202012Validator(json.loads((SCHEMA_DIR / name).read_text()))
    document = json.loads((REPO_ROOT / "cdk.json").read_text())
    prefix = "context.pipeline."
    if name == "pipeline.schema.json":
        document, prefix = document["context"]["pipeline"], ""
    assert list(checker.iter_errors(document)) == []
    for dotted, value in [
        ("enrichment.maxConcurrency", 0),
        ("snowflake.fetchBatchSize", "10000"),
        ("retention.logDays", 31),
        ("logLevel", "LOUD"),
        ("load.stage", "ENRICH STAGE"),
        ("enrichment.maxConcurency", 5),
        ("alarms.emails", "oncall@example.com"),
        ("enrichment.retry.maxAttempts", 11),
    ]:
        bad = set_dotted(document, prefix + dotted, value)
        assert list(checker.iter_errors(bad)), f"{name} accepts {dotted}={value!r}"


def test_the_reference_has_every_key_with_its_default_and_the_checked_range() -> None:
    rows = reference.rows()
    keys = {key.strip("`") for key, *_ in rows}
    for leaf in leaf_keys(DEFAULTS):
        section = leaf.rsplit(".", 1)[0] + ".{"
        assert leaf in keys or any(k.startswith(section) for k in keys), leaf
    assert all(meaning for *_, meaning in rows), "a key without a description"
    by_key = {key.strip("`"): (default, values) for key, default, values, _ in rows}
    assert by_key["enrichment.maxConcurrency"] == ("`10`", "1\N{EN DASH}10,000")
    assert by_key["logLevel"][1] == "`DEBUG`, `INFO`, `WARNING`, `ERROR`"
    assert reference.render().startswith("| Key | Default | Values | Meaning |")


def test_no_lambda_imports_pydantic_or_the_config_package() -> None:
    # pydantic is the CDK app's (requirements/dev.txt): no Lambda bundle carries it, and
    # each function gets its configuration as environment variables, not from stacks/.
    offenders = [
        f"{path.relative_to(LAMBDAS)}: {sorted(bad)}"
        for path in LAMBDAS.rglob("*.py")
        if (bad := {m for m in imported_modules(path) if m.split(".")[0] in ("pydantic", "stacks")})
    ]
    assert not offenders, offenders
