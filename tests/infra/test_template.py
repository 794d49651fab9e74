"""Assertions on the synthesized template (bundling skipped, cdk.json configuration)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from enrich_shared.errors import NON_RETRYABLE_ERRORS, RETRYABLE_ERRORS
from stacks.config.context import load_config, with_local_placeholders
from stacks.synth import cdk_json_context
from tests.infra.conftest import all_states, one, resources

CONFIG = load_config(with_local_placeholders(cdk_json_context()))
LAMBDA_TASKS = ("QueryIds", "BuildUrls", "BuildRetryBatches", "InvokeEnrich", "CountFailedBatches",
                "LoadResults")  # fmt: skip
#: Lambda tasks whose whole result replaces the state (the others add to it at a path).
RESULT_IS_STATE = ("QueryIds", "BuildUrls", "BuildRetryBatches", "InvokeEnrich")
SDK_TASKS = ("RecordFailedBatch", "PublishFailedBatches")


def statements(template: dict[str, Any], policy_prefix: str) -> list[dict[str, Any]]:
    policy = one(template, "AWS::IAM::Policy", policy_prefix)
    return policy["PolicyDocument"]["Statement"]


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def resources_of(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    items = resource if isinstance(resource, list) else [resource]
    return [json.dumps(r) if not isinstance(r, str) else r for r in items]


def grants(template: dict[str, Any], policy_prefix: str) -> dict[str, list[str]]:
    """action -> resources (JSON text of each) for one policy."""
    out: dict[str, list[str]] = {}
    for st in statements(template, policy_prefix):
        for action in actions_of(st):
            out.setdefault(action, []).extend(resources_of(st))
    return out


# ------------------------------------------------------------------ state machine shape


def test_state_names_and_flow(definition: dict[str, Any]) -> None:
    states = all_states(definition)
    assert definition["StartAt"] == "RouteRun"
    assert set(states) == {
        "RouteRun",
        "QueryIds",
        "AlreadyRanOrEmpty",
        "NothingToEnrich",
        "BuildUrls",
        "BuildRetryBatches",
        "DryRunOrEmpty",
        "DryRunOrNoBatches",
        "EnrichBatches",
        "InvokeEnrich",
        "RecordFailedBatch",
        "CountFailedBatches",
        "LoadResults",
        "PublishFailedBatches",
        "AnyBatchFailed",
        "BatchesFailed",
        "AllBatchesEnriched",
        "FailureRecordIncomplete",
    }
    assert states["RouteRun"]["Default"] == "QueryIds"
    assert states["RouteRun"]["Choices"][0]["Next"] == "BuildRetryBatches"
    assert states["QueryIds"]["Next"] == "AlreadyRanOrEmpty"
    assert states["AlreadyRanOrEmpty"]["Default"] == "BuildUrls"
    assert states["BuildUrls"]["Next"] == states["BuildRetryBatches"]["Next"] == "DryRunOrEmpty"
    assert states["DryRunOrEmpty"]["Default"] == "EnrichBatches"
    assert states["EnrichBatches"]["Next"] == "CountFailedBatches"
    # A child fails only when its failure could not be recorded: the run must say so.
    (map_catch,) = states["EnrichBatches"]["Catch"]
    assert map_catch["ErrorEquals"] == ["States.ALL"]
    assert map_catch["Next"] == "FailureRecordIncomplete"
    assert states["FailureRecordIncomplete"]["Type"] == "Fail"
    # The run's answers and failure records reach Snowflake before its outcome is decided,
    # on the one path after the map (a retry run's map is the same map).
    assert states["CountFailedBatches"]["Next"] == "LoadResults"
    assert states["LoadResults"]["Next"] == "PublishFailedBatches"
    assert states["PublishFailedBatches"]["Next"] == "AnyBatchFailed"
    assert states["AnyBatchFailed"]["Choices"][0]["Next"] == "BatchesFailed"
    assert states["AnyBatchFailed"]["Default"] == "AllBatchesEnriched"


def test_first_steps_get_the_run_input_and_execution_identity(definition: dict) -> None:
    states = all_states(definition)
    expected = {
        "input.$": "$",
        "execution_id.$": "$$.Execution.Id",
        "execution_name.$": "$$.Execution.Name",
    }
    assert states["QueryIds"]["Parameters"]["Payload"] == expected
    assert states["BuildRetryBatches"]["Parameters"]["Payload"] == expected
    assert states["BuildUrls"]["Parameters"]["Payload.$"] == "$"


def test_every_task_has_a_timeout_and_a_retry(definition: dict[str, Any]) -> None:
    tasks = {n: s for n, s in all_states(definition).items() if s["Type"] == "Task"}
    assert set(tasks) == set(LAMBDA_TASKS) | set(SDK_TASKS)
    for name, state in tasks.items():
        assert state.get("TimeoutSeconds", 0) > 0, name
        assert state.get("Retry"), name


def test_lambda_tasks_use_output_path_and_retry_service_errors(definition: dict) -> None:
    states = all_states(definition)
    for name in LAMBDA_TASKS:
        state = states[name]
        assert state["Resource"].endswith(":states:::lambda:invoke"), name
        if name in RESULT_IS_STATE:
            assert state["OutputPath"] == "$.Payload", name
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.AWSLambdaException"} <= retried, name


def test_task_timeouts_exceed_their_lambda_timeouts(template: dict, definition: dict) -> None:
    functions = resources(template, "AWS::Lambda::Function")
    timeout_by_arn = {f"{k}.Arn": r["Properties"]["Timeout"] for k, r in functions.items()}
    for name in LAMBDA_TASKS:
        state = all_states(definition)[name]
        assert state["TimeoutSeconds"] > timeout_by_arn[state["Parameters"]["FunctionName"]]


def test_retryable_errors_back_off_with_full_jitter_from_config(definition: dict) -> None:
    states = all_states(definition)
    lambda_errors = ["Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException",
                     "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                     "Lambda.TooManyRequestsException"]  # fmt: skip
    for state_name, errors, retry in (
        ("QueryIds", ["SnowflakeUnavailableError"], CONFIG.snowflake.retry),
        ("LoadResults", ["SnowflakeUnavailableError"], CONFIG.snowflake.retry),
        # One retrier for all that InvokeEnrich retries: its attempts are bounded once.
        ("InvokeEnrich", ["RetryableEnrichError", *lambda_errors], CONFIG.enrichment.retry),
    ):
        (rule,) = [r for r in states[state_name]["Retry"] if errors[0] in r["ErrorEquals"]]
        assert rule == {
            "ErrorEquals": errors,
            "IntervalSeconds": retry.interval_seconds,
            "MaxAttempts": retry.max_attempts,
            "BackoffRate": retry.backoff_rate,
            "MaxDelaySeconds": retry.max_delay_seconds,
            "JitterStrategy": "FULL",
        }
    assert set(RETRYABLE_ERRORS) == {"SnowflakeUnavailableError", "RetryableEnrichError"}


def test_non_retryable_errors_are_never_retried(definition: dict[str, Any]) -> None:
    for name in LAMBDA_TASKS:
        retried = {e for r in all_states(definition)[name]["Retry"] for e in r["ErrorEquals"]}
        assert not retried & set(NON_RETRYABLE_ERRORS), name
        assert not retried & {"States.ALL", "States.TaskFailed"}, name


def test_distributed_map(definition: dict[str, Any]) -> None:
    state = all_states(definition)["EnrichBatches"]
    assert state["Type"] == "Map"
    assert state["MaxConcurrency"] == CONFIG.enrichment.max_concurrency
    assert state["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "EXPRESS",
    }
    reader = state["ItemReader"]
    assert reader["Resource"].endswith(":states:::s3:getObject")
    assert reader["ReaderConfig"] == {"InputType": "JSON"}
    assert reader["Parameters"]["Key.$"] == "$.batches_key"
    assert state["ItemSelector"] == {
        "batch_id.$": "$$.Map.Item.Value.batch_id",
        "url.$": "$$.Map.Item.Value.url",
        "ids.$": "$$.Map.Item.Value.ids",
        "run_id.$": "$.run_id",
    }
    assert state["ResultWriter"]["Parameters"]["Prefix"].startswith("runs/")
    assert state["ResultPath"] is None
    # moto's grammar rejects these; failures are recorded as data instead.
    assert "ItemBatcher" not in state and "ToleratedFailurePercentage" not in state


def test_a_failing_batch_is_recorded_not_propagated(definition: dict[str, Any]) -> None:
    states = all_states(definition)
    (catch,) = states["InvokeEnrich"]["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                     "Next": "RecordFailedBatch"}  # fmt: skip
    record = states["RecordFailedBatch"]
    assert record["Resource"].endswith(":states:::aws-sdk:s3:putObject")
    params = record["Parameters"]
    assert params["Key.$"] == "States.Format('runs/{}/failed/{}.json', $.run_id, $.batch_id)"
    assert params["Body.$"] == "States.JsonToString($)"
    assert record.get("End") is True


def test_outcome_is_decided_from_the_failure_record(definition: dict[str, Any]) -> None:
    states = all_states(definition)
    count = states["CountFailedBatches"]
    assert count["Parameters"]["FunctionName"].startswith("FunctionsCountFailedBatches")
    assert count["Parameters"]["Payload"] == {"run_id.$": "$.run_id"}
    # Only the count and the prefix come back into the state, at $.failed.
    assert count["ResultSelector"] == {"count.$": "$.Payload.count",
                                       "prefix.$": "$.Payload.prefix"}  # fmt: skip
    assert count["ResultPath"] == "$.failed" and "OutputPath" not in count
    publish = states["PublishFailedBatches"]["Parameters"]
    assert publish["Namespace"] == "ImdbEnrichment"
    assert publish["MetricData"][0]["MetricName"] == "FailedBatches"
    assert publish["MetricData"][0]["Value.$"] == "$.failed.count"
    fail = states["BatchesFailed"]
    assert fail["Type"] == "Fail" and fail["Error"] == "BatchesFailed"
    assert fail["CausePath"].startswith("States.Format('{} batch(es) failed")
    assert "/runs/{}/failed/" in fail["CausePath"]
    assert fail["CausePath"].endswith("$.failed.count, $.run_id, $.run_id)")


def test_state_machine_settings(template: dict[str, Any], definition: dict) -> None:
    sm = one(template, "AWS::StepFunctions::StateMachine")
    assert sm["StateMachineType"] == "STANDARD"
    assert sm["TracingConfiguration"] == {"Enabled": True}
    logging = sm["LoggingConfiguration"]
    # ERROR: failures only, for the parent and the Express children alike (one config).
    assert logging["Level"] == "ERROR"
    assert logging["IncludeExecutionData"] is True
    assert definition["TimeoutSeconds"] == CONFIG.workflow.timeout_minutes * 60


# ------------------------------------------------------------------ schedule


def test_schedule(template: dict[str, Any]) -> None:
    schedule = one(template, "AWS::Scheduler::Schedule")
    assert schedule["ScheduleExpression"] == CONFIG.schedule.cron
    assert schedule["ScheduleExpressionTimezone"] == CONFIG.schedule.timezone
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    # The keyword only as a whole value: the run ID is derived from it by QueryIds.
    assert json.loads(target["Input"]) == {
        "trigger": "schedule",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "DeadLetterConfig" in target
    queue = one(template, "AWS::SQS::Queue")
    assert queue["SqsManagedSseEnabled"] is True


def _strings(node: Any) -> list[str]:
    """Every string in a JSON value, JSON text inside strings included."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if isinstance(node, str):
        try:
            inner = json.loads(node)
        except ValueError:
            return [node]
        return [node, *_strings(inner)] if isinstance(inner, dict | list) else [node]
    return []


def test_scheduler_keywords_are_only_whole_values(template: dict[str, Any]) -> None:
    # Scheduler documents <aws.scheduler.*> keywords as whole JSON values; one embedded in
    # a longer string may never be replaced, and every scheduled night would then fail.
    target = one(template, "AWS::Scheduler::Schedule")["Target"]
    values = _strings(json.loads(target["Input"]))
    keywords = [v for v in values if "<aws.scheduler." in v]
    assert keywords, "the schedule passes no scheduler keyword: the test would be vacuous"
    for value in keywords:
        assert re.fullmatch(r"<aws\.scheduler\.[a-z-]+>", value), value


def test_configured_schedule_slack_emails_and_api_key() -> None:
    from stacks.synth import synth_template

    t = synth_template(
        {
            "pipeline.schedule.cron": "cron(0 3 * * ? *)",
            "pipeline.schedule.timezone": "America/New_York",
            "pipeline.alarms.slackWorkspaceId": "T0123ABCD",
            "pipeline.alarms.slackChannelId": "C0123ABCD",
            "pipeline.alarms.emails": ["ops@example.com", "oncall@example.com"],
            "pipeline.enrichment.apiKeySecretName": "imdb-enrichment/api-key",
            "pipeline.schedule.enabled": False,
        }
    )
    schedule = one(t, "AWS::Scheduler::Schedule")
    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "America/New_York"
    assert schedule["State"] == "DISABLED"
    # No schedule, no "missed run": that alarm would fire every day for nothing.
    assert "MissedRun" not in alarms_by_name(t)
    slack = one(t, "AWS::Chatbot::SlackChannelConfiguration")
    assert slack["SlackChannelId"] == "C0123ABCD"
    subs = resources(t, "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subs) == [
        "oncall@example.com",
        "ops@example.com",
    ]
    enrich = grants(t, "FunctionsInvokeEnrichRoleDefaultPolicy")
    assert any("secret:imdb-enrichment/api-key-??????" in r
               for r in enrich["secretsmanager:GetSecretValue"])  # fmt: skip
    env = next(
        r["Properties"]["Environment"]["Variables"]
        for k, r in resources(t, "AWS::Lambda::Function").items()
        if k.startswith("FunctionsInvokeEnrich")
    )
    assert env["API_KEY_SECRET_NAME"] == "imdb-enrichment/api-key"
    assert t["Outputs"]["ApiKeySecretName"]["Value"] == "imdb-enrichment/api-key"  # for smoke


# ------------------------------------------------------------------ functions


def function_props(template: dict[str, Any], name: str) -> dict[str, Any]:
    return one(template, "AWS::Lambda::Function", f"Functions{name}")


@pytest.mark.parametrize(
    ("name", "step"),
    [
        ("QueryIds", "query_ids"),
        ("BuildUrls", "build_url"),
        ("InvokeEnrich", "invoke_enrich"),
        ("LoadResults", "load_results"),
    ],
)
def test_functions_runtime_arch_tracing_logs(template: dict, name: str, step: str) -> None:
    fn = function_props(template, name)
    assert fn["Handler"] == f"{step}.handler.lambda_handler"
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == ["arm64"]
    assert fn["TracingConfig"] == {"Mode": "Active"}
    log_group_id = fn["LoggingConfig"]["LogGroup"]["Ref"]
    assert (
        template["Resources"][log_group_id]["Properties"]["RetentionInDays"]
        == CONFIG.retention.log_days
    )


def test_function_environments_match_the_contract(template: dict[str, Any]) -> None:
    # No POWERTOOLS_METRICS_NAMESPACE: the functions publish no metrics (counts are log fields).
    common = {"BUCKET_NAME", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}
    expected = {
        "QueryIds": common | {"SNOWFLAKE_SECRET_NAME", "SNOWFLAKE_QUERY", "SNOWFLAKE_ID_COLUMN",
                              "SNOWFLAKE_LOGIN_TIMEOUT_S", "SNOWFLAKE_NETWORK_TIMEOUT_S",
                              "SNOWFLAKE_STATEMENT_TIMEOUT_S", "FETCH_BATCH_SIZE",
                              "SNOWFLAKE_REFRESH_AFTER_DAYS", "LOAD_STATE_TABLE"},
        "LoadResults": common | {"SNOWFLAKE_SECRET_NAME", "SNOWFLAKE_LOGIN_TIMEOUT_S",
                                 "SNOWFLAKE_NETWORK_TIMEOUT_S", "SNOWFLAKE_STATEMENT_TIMEOUT_S",
                                 "LOAD_STAGE", "LOAD_LANDING_TABLE", "LOAD_RESULTS_TABLE",
                                 "LOAD_STATE_TABLE", "LOAD_RECORDS_PATH", "LOAD_ID_FIELD"},
        "BuildUrls": common | {"ENRICH_BASE_URL", "MAX_IDS_PER_REQUEST", "MAX_URL_LENGTH"},
        "InvokeEnrich": common | {"HTTP_CONNECT_TIMEOUT_S", "HTTP_READ_TIMEOUT_S",
                                  "API_KEY_HEADER"},
    }  # fmt: skip
    for name, keys in expected.items():
        fn = function_props(template, name)
        env = fn["Environment"]["Variables"]
        assert set(env) == keys, name
        assert env["POWERTOOLS_SERVICE_NAME"] == "imdb-enrichment"
    qi = function_props(template, "QueryIds")
    env = qi["Environment"]["Variables"]
    assert env["SNOWFLAKE_QUERY"] == CONFIG.snowflake.query
    assert int(env["SNOWFLAKE_LOGIN_TIMEOUT_S"]) < qi["Timeout"]
    assert int(env["SNOWFLAKE_NETWORK_TIMEOUT_S"]) < qi["Timeout"]
    assert int(env["SNOWFLAKE_STATEMENT_TIMEOUT_S"]) < qi["Timeout"]
    # The incremental pull is on by default with loading (cdk.json): a night re-sends only
    # what is stale, read from the state table LoadResults keeps.
    assert env["SNOWFLAKE_REFRESH_AFTER_DAYS"] == str(
        CONFIG.snowflake.incremental.refresh_after_days
    )
    assert env["LOAD_STATE_TABLE"] == CONFIG.load.state_table
    lr = function_props(template, "LoadResults")
    env = lr["Environment"]["Variables"]
    assert lr["Timeout"] == CONFIG.load.timeout_seconds == 600
    for key in ("LOGIN", "NETWORK", "STATEMENT"):
        assert int(env[f"SNOWFLAKE_{key}_TIMEOUT_S"]) < lr["Timeout"], key
    assert env["SNOWFLAKE_SECRET_NAME"] == CONFIG.snowflake.secret_name
    assert (env["LOAD_STAGE"], env["LOAD_STATE_TABLE"]) == (CONFIG.load.stage, "ENRICH_STATE")
    ie = function_props(template, "InvokeEnrich")
    env = ie["Environment"]["Variables"]
    assert int(env["HTTP_CONNECT_TIMEOUT_S"]) + int(env["HTTP_READ_TIMEOUT_S"]) < ie["Timeout"]
    bu = function_props(template, "BuildUrls")["Environment"]["Variables"]
    assert bu["ENRICH_BASE_URL"] == CONFIG.enrichment.base_url
    assert bu["MAX_IDS_PER_REQUEST"] == "70"


def test_each_function_has_its_own_role_without_managed_policies(template: dict) -> None:
    roles = {
        function_props(template, n)["Role"]["Fn::GetAtt"][0]
        for n in ("QueryIds", "BuildUrls", "InvokeEnrich", "CountFailedBatches", "LoadResults")
    }
    assert len(roles) == 5
    for role in roles:
        assert "ManagedPolicyArns" not in template["Resources"][role]["Properties"]


def _bucket_key(resource: str) -> str:
    """`{"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/runs/*/x"]]}` -> `/runs/*/x`."""
    parts = json.loads(resource)["Fn::Join"][1]
    assert parts[0]["Fn::GetAtt"][0].startswith("StorageRunData")
    return parts[1]


def test_query_ids_role(template: dict[str, Any]) -> None:
    g = grants(template, "FunctionsQueryIdsRoleDefaultPolicy")
    assert set(g) == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords",
                      "xray:PutTraceSegments", "secretsmanager:DescribeSecret",
                      "secretsmanager:GetSecretValue", "s3:PutObject", "s3:GetObject",
                      "s3:AbortMultipartUpload"}  # fmt: skip
    put_keys = sorted(map(_bucket_key, g["s3:PutObject"]))
    assert put_keys == ["/runs/*/claim.json", "/runs/*/ids.jsonl"]
    assert [_bucket_key(r) for r in g["s3:GetObject"]] == ["/runs/*/claim.json"]
    assert [_bucket_key(r) for r in g["s3:AbortMultipartUpload"]] == ["/runs/*/ids.jsonl"]
    (secret,) = g["secretsmanager:GetSecretValue"]
    assert f"secret:{CONFIG.snowflake.secret_name}-??????" in secret


def test_build_url_role(template: dict[str, Any]) -> None:
    st = statements(template, "FunctionsBuildUrlsRoleDefaultPolicy")
    g = grants(template, "FunctionsBuildUrlsRoleDefaultPolicy")
    assert sorted(map(_bucket_key, g["s3:GetObject"])) == ["/runs/*/failed/*", "/runs/*/ids.jsonl"]
    assert [_bucket_key(r) for r in g["s3:PutObject"]] == ["/runs/*/batches.json"]
    (listing,) = [s for s in st if "s3:ListBucket" in actions_of(s)]
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["runs/*/failed/", "runs/*/failed/*"]}
    }
    assert not any(a.startswith("secretsmanager:") for a in g)


def test_count_failed_role_lists_only_failure_records(template: dict[str, Any]) -> None:
    st = statements(template, "FunctionsCountFailedBatchesRoleDefaultPolicy")
    g = grants(template, "FunctionsCountFailedBatchesRoleDefaultPolicy")
    assert set(g) == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords",
                      "xray:PutTraceSegments", "s3:ListBucket"}  # fmt: skip
    (listing,) = [s for s in st if "s3:ListBucket" in actions_of(s)]
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["runs/*/failed/", "runs/*/failed/*"]}
    }


def test_invoke_enrich_role_may_only_write_results(template: dict[str, Any]) -> None:
    g = grants(template, "FunctionsInvokeEnrichRoleDefaultPolicy")
    assert set(g) == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords",
                      "xray:PutTraceSegments", "s3:PutObject"}  # fmt: skip
    assert [_bucket_key(r) for r in g["s3:PutObject"]] == ["/runs/*/results/*"]


def test_load_results_role_reads_only_the_snowflake_secret(template: dict[str, Any]) -> None:
    # Snowflake reads the run's objects through its stage (the storage integration's
    # role), so LoadResults itself needs no S3 access at all.
    g = grants(template, "FunctionsLoadResultsRoleDefaultPolicy")
    assert set(g) == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords",
                      "xray:PutTraceSegments", "secretsmanager:DescribeSecret",
                      "secretsmanager:GetSecretValue"}  # fmt: skip
    (secret,) = g["secretsmanager:GetSecretValue"]
    assert f"secret:{CONFIG.snowflake.secret_name}-??????" in secret
    logs_group = function_props(template, "LoadResults")["LoggingConfig"]["LogGroup"]["Ref"]
    assert logs_group.startswith("FunctionsLoadResultsLogs")
    assert [json.loads(r)["Fn::GetAtt"][0] for r in g["logs:PutLogEvents"]] == [logs_group]


def test_load_results_task_payload_result_and_timeout(definition: dict[str, Any]) -> None:
    state = all_states(definition)["LoadResults"]
    assert state["Parameters"]["Payload"] == {
        "run_id.$": "$.run_id",
        "started_at.$": "$$.Execution.StartTime",
    }
    assert state["ResultPath"] == "$.loaded"
    assert set(state["ResultSelector"]) == {
        f"{k}.$" for k in ("files_loaded", "results_merged", "state_merged", "ids_ok", "ids_failed")
    }
    # Fits a large night: the function's configured time plus the task margin.
    assert CONFIG.load.timeout_seconds < state["TimeoutSeconds"] <= 900 + 60
    # No Catch: a load that still fails fails the execution (recovery: a redrive).
    assert "Catch" not in state
    retried = [e for r in state["Retry"] for e in r["ErrorEquals"]]
    assert [e for e in retried if not e.startswith("Lambda.")] == ["SnowflakeUnavailableError"]


def test_without_loading_the_definition_has_no_load_step() -> None:
    from stacks.synth import resolve_definition, state_machine_definition, synth_template

    # load.enabled=false alone: the incremental pull goes off with it (no state to read).
    template = synth_template({"pipeline.load.enabled": False})
    states = all_states(resolve_definition(state_machine_definition(template)))
    assert "LoadResults" not in states
    assert states["CountFailedBatches"]["Next"] == "PublishFailedBatches"
    assert not [k for k in resources(template, "AWS::Lambda::Function") if "LoadResults" in k]
    qi = function_props(template, "QueryIds")["Environment"]["Variables"]
    assert "SNOWFLAKE_REFRESH_AFTER_DAYS" not in qi and "LOAD_STATE_TABLE" not in qi


def test_load_source_adds_the_source_stage_named_as_snowflake_setup_creates_it() -> None:
    # snowflake-setup names it with LoadConfig.source_stage, which calls source_stage_name.
    from stacks.config.models import source_stage_name
    from stacks.synth import synth_template

    template = synth_template({"pipeline.load.source": "s3://partner-results/imdb/out/"})
    env = function_props(template, "LoadResults")["Environment"]["Variables"]
    assert env["LOAD_SOURCE_STAGE"] == source_stage_name(CONFIG.load.stage)
    assert env["LOAD_SOURCE_STAGE"] == "ENRICH_RUNS_STAGE_SOURCE"


def test_wildcard_resources_only_where_no_resource_can_be_named(template: dict) -> None:
    unscoped = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                "xray:GetSamplingTargets", "cloudwatch:PutMetricData", "logs:CreateLogDelivery",
                "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"}  # fmt: skip
    for policy_id in resources(template, "AWS::IAM::Policy"):
        for st in statements(template, policy_id):
            if "*" in resources_of(st):
                assert set(actions_of(st)) <= unscoped, (policy_id, st)
            assert not any(a.endswith(":*") or a == "*" for a in actions_of(st)), st


# ------------------------------------------------------------------ state machine role


def test_state_machine_role(template: dict[str, Any]) -> None:
    sm = one(template, "AWS::StepFunctions::StateMachine")
    role_id = sm["RoleArn"]["Fn::GetAtt"][0]
    attached = [
        k
        for k, r in resources(template, "AWS::IAM::Policy").items()
        if {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    assert attached == [k for k in attached if k.startswith("WorkflowPolicy")] and attached
    st = {s["Sid"]: s for s in statements(template, "WorkflowPolicy")}
    invoke = st["InvokeThePipelineFunctions"]
    assert actions_of(invoke) == ["lambda:InvokeFunction"]
    assert sorted(r["Fn::GetAtt"][0][: -8] for r in invoke["Resource"]) == [
        "FunctionsBuildUrls", "FunctionsCountFailedBatches", "FunctionsInvokeEnrich",
        "FunctionsLoadResults", "FunctionsQueryIds"]  # fmt: skip
    assert [_bucket_key(r) for r in resources_of(st["ReadBatchLists"])] == ["/runs/*/batches.json"]
    assert actions_of(st["ReadBatchLists"]) == ["s3:GetObject"]
    assert [_bucket_key(r) for r in resources_of(st["WriteFailureRecords"])] == ["/runs/*/failed/*"]
    assert actions_of(st["WriteFailureRecords"]) == ["s3:PutObject"]
    # Counting the record is CountFailedBatches' job (its own role): no listing here.
    assert not any("s3:ListBucket" in actions_of(s) for s in st.values())
    assert [_bucket_key(r) for r in resources_of(st["WriteMapResults"])] == ["/runs/_map-results/*"]
    start = st["RunMapChildren"]
    assert actions_of(start) == ["states:StartExecution"]
    assert start["Resource"]["Fn::Join"][1][-1].endswith(":stateMachine:ImdbEnrichment-Pipeline")
    assert sm["StateMachineName"] == "ImdbEnrichment-Pipeline"
    metric = st["PublishFailedBatchesMetric"]
    assert metric["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ImdbEnrichment"}}


# ------------------------------------------------------------------ storage, topic, alarms


def test_bucket(template: dict[str, Any]) -> None:
    bucket = one(template, "AWS::S3::Bucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True}  # fmt: skip
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == CONFIG.retention.run_data_days
    policy = json.dumps(one(template, "AWS::S3::BucketPolicy"))
    assert '"aws:SecureTransport": "false"' in policy


def test_topic_is_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    topic = one(template, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic
    policy = json.dumps(one(template, "AWS::SNS::TopicPolicy"))
    assert '"aws:SecureTransport": "false"' in policy
    key = one(template, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    assert "cloudwatch.amazonaws.com" in json.dumps(key["KeyPolicy"])


def alarms_by_name(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k.removeprefix("Monitoring")[:-8]: r["Properties"]
        for k, r in resources(template, "AWS::CloudWatch::Alarm").items()
    }


@pytest.mark.parametrize(
    ("alarm", "namespace", "metric", "missing"),
    [
        ("ExecutionsFailed", "AWS/States", "ExecutionsFailed", "notBreaching"),
        ("ExecutionsTimedOut", "AWS/States", "ExecutionsTimedOut", "notBreaching"),
        ("ExecutionsAborted", "AWS/States", "ExecutionsAborted", "notBreaching"),
        ("ExecutionThrottled", "AWS/States", "ExecutionThrottled", "notBreaching"),
        ("MissedRun", "AWS/States", "ExecutionsSucceeded", "breaching"),
        ("SchedulerDeadLetters", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "notBreaching"),
        ("FailedBatches", "ImdbEnrichment", "FailedBatches", "notBreaching"),
    ],
)
def test_alarm(template: dict, alarm: str, namespace: str, metric: str, missing: str) -> None:
    props = alarms_by_name(template)[alarm]
    assert props["Namespace"] == namespace
    assert props["MetricName"] == metric
    assert props["TreatMissingData"] == missing
    assert len(props["AlarmActions"]) == 1 and props["OKActions"] == props["AlarmActions"]
    assert props["AlarmActions"][0]["Ref"].startswith("MonitoringAlarmTopic")
    assert "What to do" in props["AlarmDescription"]
    assert len(props["AlarmDescription"]) <= 1024  # CloudWatch's limit


def test_missed_run_alarm_spans_the_configured_hours(template: dict[str, Any]) -> None:
    props = alarms_by_name(template)["MissedRun"]
    assert props["Period"] == 3600
    assert (
        props["EvaluationPeriods"] == props["DatapointsToAlarm"] == CONFIG.alarms.missed_run_hours
    )
    assert props["ComparisonOperator"] == "LessThanThreshold" and props["Threshold"] == 1


def test_alarm_count_and_dashboard(template: dict[str, Any]) -> None:
    assert len(alarms_by_name(template)) == 7
    assert len(resources(template, "AWS::CloudWatch::Dashboard")) == 1


def test_outputs(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) == {
        "StateMachineArn", "RunDataBucketName", "AlarmTopicArn", "DashboardUrl",
        "ScheduleName", "SnowflakeSecretName", "SnowflakeStageRoleArn",
        "SnowflakeStageUrl"}  # fmt: skip
    # `enrichctl smoke` looks the schedule and the secret up by these names.
    schedule = next(iter(resources(template, "AWS::Scheduler::Schedule")))
    assert template["Outputs"]["ScheduleName"]["Value"] == {"Ref": schedule}
    assert template["Outputs"]["SnowflakeSecretName"]["Value"] == "imdb-enrichment/snowflake"


# ------------------------------------------------------------------ secrets


def test_no_secret_value_in_the_template(template: dict[str, Any]) -> None:
    text = json.dumps(template)
    for marker in ("PRIVATE KEY", "private_key", "password", "passphrase", "x-api-key:"):
        assert marker.lower() not in text.lower(), marker
    # Secrets are referenced by name only (resolved at run time), never as dynamic references.
    assert "{{resolve:secretsmanager" not in text
    assert "AWS::SecretsManager::Secret" not in {r["Type"] for r in template["Resources"].values()}
