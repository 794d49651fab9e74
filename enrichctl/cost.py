"""The pipeline's AWS bill per night and per month, modelled from what one night does.

Every price lives in `PRICES`, each with the AWS pricing page it comes from (us-east-1,
on-demand, list prices checked 2026-11-25, free tiers ignored so small nights are not
flattered). `enrichctl cost --ids N` prints the model; `enrichctl bench` feeds it the
counts and durations it measured instead of the defaults.

What one night costs (see `night_usage` for the counts):
- Step Functions: the parent (Standard) is billed per state transition, retries included;
  each Distributed Map child (one batch, declared EXPRESS) is one Express request plus its
  duration at its billed memory (64 MB chunks, rounded up to 100 ms).
- Lambda: one request per invocation plus GB-seconds at the function's configured memory
  (arm64 price, 1 ms granularity).
- S3: PUT-class and GET-class requests on the run's objects (storage of a few MB is < $0.01),
  including one stored answer per enriched batch (`runs/<run_id>/results/<batch_id>.json`)
  and the GET/LIST requests Snowflake's COPY makes through the stage (the bucket owner pays).
- LoadResults: one Lambda invocation whose duration is mostly waiting for Snowflake's COPY
  and MERGEs. That warehouse time is billed by Snowflake in credits, not by AWS: it is only
  priced with an explicit assumption (`Workload.warehouse_usd_per_hour`, `enrichctl cost
  --warehouse-usd-per-hour`), never in the AWS total.
- The incremental pull (`fresh_share`): IDs skipped as fresh are neither batched, sent,
  stored nor loaded, so every per-batch item shrinks with them.
- CloudWatch Logs ingestion: the functions' log lines and the state machine's execution log.
  The state machine logs level ERROR (with execution data): a clean night's parent and
  children write nothing there; each failed attempt of a child writes its failure events.
- CloudWatch custom metrics: one, FailedBatches, put once per run. Custom metrics are
  "prorated by the hour and metered only when you send metrics to CloudWatch" (SOURCES
  ["cloudwatch"]): one metric-hour a night, $0.30 / 730 each. The night's other counts are
  log fields (no metric), read by the dashboard's Logs Insights widget.
- Fixed per month, whatever the volume: the Snowflake secret and the alarms.

Each line belongs to a group: "night" (the work a night did before its answers were loaded
back into Snowflake: query, batches, enrichment, outcome) or "loading" (what closing the
loop adds: the stored answers, Snowflake's reads of them through the stage, LoadResults), so
both can be compared with the figures from before the loop.
Not modelled: X-Ray (sampled; 100,000 traces a month are free), data transfer, the
enrichment API itself (an existing service, billed to its owner), Snowflake credits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from enrichctl.paths import use_repo_code

use_repo_code()  # each function's memory is set in stacks/memory.py (no CDK import there)

from stacks.memory import FUNCTION_MEMORY_MB  # noqa: E402

#: 730 hours: the month AWS uses in its monthly estimates (t2.micro $0.0116 x 730 = $8.47).
HOURS_PER_MONTH = 730.0
NIGHTS_PER_MONTH = HOURS_PER_MONTH / 24.0

SOURCES = {
    "stepfunctions": "https://aws.amazon.com/step-functions/pricing/",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "s3": "https://aws.amazon.com/s3/pricing/",
    "cloudwatch": "https://aws.amazon.com/cloudwatch/pricing/",
    "secretsmanager": "https://aws.amazon.com/secrets-manager/pricing/",
    "ec2": "https://aws.amazon.com/ec2/pricing/on-demand/",
}


@dataclass(frozen=True)
class Prices:
    """List prices in USD (us-east-1). Each field names its source in `SOURCES`."""

    # Step Functions (SOURCES["stepfunctions"])
    sfn_standard_per_transition: float = 0.025 / 1_000
    sfn_express_per_request: float = 1.00 / 1_000_000
    #: First tier: $0.06 per GB-hour for the first 1,000 GB-hours a month.
    sfn_express_per_gb_s: float = 0.00001667
    sfn_express_memory_chunk_mb: int = 64
    sfn_express_duration_step_ms: int = 100
    # Lambda, arm64, first tier (SOURCES["lambda"])
    lambda_per_request: float = 0.20 / 1_000_000
    lambda_per_gb_s: float = 0.0000133334
    # S3 Standard requests (SOURCES["s3"])
    s3_put_per_request: float = 0.005 / 1_000  # PUT, COPY, POST, LIST
    s3_get_per_request: float = 0.0004 / 1_000  # GET, SELECT and all other requests
    # CloudWatch (SOURCES["cloudwatch"])
    logs_ingest_per_gb: float = 0.50
    alarm_per_month: float = 0.10  # standard resolution metric alarm
    custom_metric_per_month: float = 0.30  # first 10,000 metrics
    put_metric_data_per_request: float = 0.01 / 1_000
    #: Logs Insights queries (the dashboard's counts table), per GB of logs scanned.
    logs_insights_per_gb_scanned: float = 0.005
    # Secrets Manager (SOURCES["secretsmanager"])
    secret_per_month: float = 0.40
    secret_api_per_request: float = 0.05 / 10_000
    # The Prefect agent this replaces: EC2 t2.micro on demand, Linux (SOURCES["ec2"])
    ec2_t2_micro_per_hour: float = 0.0116

    @property
    def agent_per_month(self) -> float:
        """The always-on t2.micro agent: $0.0116/h x 730 h = $8.47."""
        return self.ec2_t2_micro_per_hour * HOURS_PER_MONTH


PRICES = Prices()

#: Line groups (see the module docstring).
NIGHT = "night"
LOADING = "loading"
#: Parent (Standard) transitions of a normal night: Route, QueryIds, HasIds?, BuildUrls,
#: EnrichBatches, CountFailedBatches, PublishFailedBatches, AnyBatchFailed, Succeed, ...
#: (measured by `enrichctl bench` from the execution history: 10 on a clean night).
PARENT_TRANSITIONS = 10
#: Transitions the LoadResults step adds to a night (its one Task state).
LOAD_TRANSITIONS = 1
#: Bytes one InvokeEnrich invocation logs: its "batch enriched" line (Powertools JSON with
#: the Lambda context: 581 bytes measured for a 70-ID batch; the Powertools metrics line it
#: replaced added 223 more) and Lambda's START, END and REPORT lines with the X-Ray trace ID
#: (~500 bytes).
ENRICH_LOG_BYTES = 1_100
#: Execution-log bytes per Express child when the state machine logged at level ALL with
#: execution data (its batch twice, the answer's summary, seven events): what the model
#: used before the level became ERROR, kept to price what that change saved.
CHILD_LOG_BYTES_AT_ALL = 9_000
#: Lambda memory at which a function has the equivalent of one vCPU; CPU is proportional
#: below it (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
LAMBDA_MB_PER_VCPU = 1_769
#: Snowflake bills a warehouse per second with a 60 s minimum each time it resumes.
WAREHOUSE_MINIMUM_S = 60.0
#: Express child memory: 50 MB + definition + payload (~1.5 KB a batch), billed in 64 MB.
EXPRESS_CHILD_MEMORY_MB = 64
#: A child's duration beyond its Lambda's (Step Functions' own overhead per task).
EXPRESS_CHILD_OVERHEAD_MS = 50


@dataclass(frozen=True)
class Workload:
    """What one night does, in the units AWS bills. Defaults describe a production night.

    Durations are per invocation. `enrich_ms` is the real API's answer time for a batch of
    70 IDs (an assumption: 1 s; the bench passes its measured value); the query and build
    durations grow with the IDs (per-ID costs measured by `enrichctl bench`).
    """

    ids: int
    ids_per_batch: int = 70
    #: Share of the queried IDs the incremental pull skips as fresh (0..1): not sent.
    fresh_share: float = 0.0
    #: The LoadResults step runs (load.enabled).
    load: bool = True
    #: LoadResults' duration: connect + COPY + 2 MERGEs + counts (an assumption for a real
    #: X-Small warehouse; `enrichctl bench` measures the embedded Snowflake's).
    load_ms_fixed: float = 3_000.0
    load_us_per_id: float = 20.0
    #: Price of Snowflake warehouse time (USD per hour), an assumption of the caller; 0 leaves
    #: Snowflake out (it is not an AWS cost and is never in the AWS total).
    warehouse_usd_per_hour: float = 0.0
    batches: int | None = None  # None: ceil(ids / ids_per_batch)
    enrich_ms: float = 1_000.0
    #: InvokeEnrich's own CPU time per call at a full vCPU (TLS, JSON, the S3 put): 24 ms
    #: measured by enrichctl.bench.memory_sizes (warm call, 70 IDs, moto's S3 in the same
    #: process: an upper bound). Lambda gives a function CPU in proportion to its memory,
    #: so at 128 MB this is ~14x longer (`invoke_ms`).
    enrich_cpu_ms: float = 25.0
    enrich_retries: int = 0
    query_ms_fixed: float = 2_000.0  # login, query start, claim, secret
    query_us_per_id: float = 4.0  # fetch + clean + write, per row
    build_ms_fixed: float = 200.0
    build_us_per_id: float = 3.0
    #: CountFailedBatches' duration (one LIST call per 1,000 failed batches).
    count_ms: float = 300.0
    parent_transitions: int = PARENT_TRANSITIONS
    #: Log bytes per InvokeEnrich invocation (handler lines + Lambda's START/END/REPORT).
    enrich_log_bytes: int = ENRICH_LOG_BYTES
    #: Execution-log bytes per successful Express child (level ERROR: none).
    child_log_bytes: int = 0
    #: Execution-log bytes per failed attempt inside a child (LambdaFunctionFailed and
    #: TaskFailed with the error and its cause, execution data included).
    child_error_log_bytes: int = 2_500
    #: Log bytes of QueryIds, BuildUrls and CountFailedBatches together (the parent writes
    #: nothing at level ERROR on a clean night).
    steps_log_bytes: int = 6_000
    #: LoadResults' log lines.
    load_log_bytes: int = 2_000
    memory_mb: dict[str, int] = field(default_factory=lambda: dict(FUNCTION_MEMORY_MB))
    alarms: int = 7
    #: FailedBatches, put by the state machine once per run (the only custom metric).
    custom_metrics: int = 1
    #: Hours a night in which each custom metric receives data (billed per such hour).
    custom_metric_hours: int = 1
    secrets: int = 1

    @property
    def skipped_ids(self) -> int:
        """IDs the incremental query leaves out as fresh."""
        return round(self.ids * self.fresh_share)

    @property
    def sent_ids(self) -> int:
        """IDs QueryIds returns and the night sends (the stale ones)."""
        return self.ids - self.skipped_ids

    @property
    def batch_count(self) -> int:
        """Batches (= Map children = InvokeEnrich invocations without retries)."""
        if self.batches is not None:
            return self.batches
        return math.ceil(self.sent_ids / self.ids_per_batch) if self.sent_ids > 0 else 0

    @property
    def query_ms(self) -> float:
        """QueryIds' duration for this night (per returned row: the anti-join runs in
        Snowflake, the Lambda fetches, cleans and writes only the stale IDs)."""
        return self.query_ms_fixed + self.query_us_per_id * self.sent_ids / 1000

    @property
    def build_ms(self) -> float:
        """BuildUrls' duration for this night."""
        return self.build_ms_fixed + self.build_us_per_id * self.sent_ids / 1000

    @property
    def invoke_ms(self) -> float:
        """One InvokeEnrich call: the API's answer time + our CPU time at the configured
        memory's CPU share (one vCPU at LAMBDA_MB_PER_VCPU, proportionally less below)."""
        share = min(1.0, self.memory_mb["invoke_enrich"] / LAMBDA_MB_PER_VCPU)
        return self.enrich_ms + self.enrich_cpu_ms / share

    @property
    def load_ms(self) -> float:
        """LoadResults' duration for this night (0 when loading is off)."""
        return self.load_ms_fixed + self.load_us_per_id * self.sent_ids / 1000 if self.load else 0.0


@dataclass(frozen=True)
class Usage:
    """Billable units of one night."""

    sfn_transitions: int
    express_requests: int
    express_gb_s: float
    lambda_requests: int
    lambda_gb_s: dict[str, float]
    s3_put_requests: int
    s3_get_requests: int
    log_gb: float
    other_requests: dict[str, int]
    #: Of the S3 requests above, those of results loading (stored answers, the stage's
    #: LISTs and GETs): priced on their own line.
    loading_s3_put_requests: int = 0
    loading_s3_get_requests: int = 0
    #: Of `log_gb`, LoadResults' share.
    loading_log_gb: float = 0.0
    #: Custom metric-hours of the night (each billed $0.30 / 730).
    custom_metric_hours: float = 0.0
    #: Snowflake warehouse seconds of the night (QueryIds + LoadResults, 60 s minimum):
    #: billed by Snowflake, priced only under `Workload.warehouse_usd_per_hour`.
    warehouse_s: float = 0.0


def express_billed_ms(duration_ms: float, prices: Prices = PRICES) -> int:
    """Express duration rounded up to the next 100 ms (at least one step)."""
    step = prices.sfn_express_duration_step_ms
    return max(step, math.ceil(duration_ms / step) * step)


def _s3_upload_requests(size_bytes: int, part_bytes: int = 8 * 1024 * 1024) -> int:
    """PUT-class requests of one boto3 managed upload (multipart above 8 MB)."""
    if size_bytes <= part_bytes:
        return 1
    return math.ceil(size_bytes / part_bytes) + 2  # create + parts + complete


def night_usage(w: Workload) -> Usage:
    """The billable units of one night of workload `w`."""
    batches = w.batch_count
    attempts = batches + w.enrich_retries
    if w.sent_ids == 0:  # QueryIds finds nothing (or all fresh): HasIds? ends the run quietly
        query_s = w.query_ms_fixed / 1000
        return Usage(
            sfn_transitions=4,
            express_requests=0,
            express_gb_s=0.0,
            lambda_requests=1,
            lambda_gb_s={"query_ids": query_s * w.memory_mb["query_ids"] / 1024},
            s3_put_requests=2,
            s3_get_requests=0,
            log_gb=2_000 / 1e9,
            other_requests={"secretsmanager": 1},
            warehouse_s=max(WAREHOUSE_MINIMUM_S, query_s),
        )
    invoke_ms = w.invoke_ms
    child_ms = invoke_ms + EXPRESS_CHILD_OVERHEAD_MS
    # A retried batch waits inside its child (backoff), billed as child duration too; the
    # wait is not known here, so a retry is billed as one more attempt of the same length.
    express_ms = batches * express_billed_ms(child_ms) + w.enrich_retries * express_billed_ms(
        invoke_ms
    )
    gb = w.memory_mb
    ids_jsonl = w.sent_ids * 13  # `"tt01234567"` and a newline
    batches_json = ids_jsonl * 2 + batches * 120  # IDs twice (list + URL) + keys and base URL
    lambda_gb_s = {
        "query_ids": w.query_ms / 1000 * gb["query_ids"] / 1024,
        "build_url": w.build_ms / 1000 * gb["build_url"] / 1024,
        "invoke_enrich": attempts * invoke_ms / 1000 * gb["invoke_enrich"] / 1024,
        "count_failed": w.count_ms / 1000 * gb["count_failed"] / 1024,
    }
    # LoadResults: one invocation, one secret read; Snowflake's COPY lists the run's
    # results/ and failed/ prefixes (1,000 keys a LIST) and GETs each stored answer.
    load_gets = batches if w.load else 0
    load_lists = 2 * max(1, math.ceil(batches / 1000)) if w.load else 0
    if w.load:
        lambda_gb_s["load_results"] = w.load_ms / 1000 * gb["load_results"] / 1024
    return Usage(
        sfn_transitions=w.parent_transitions + (LOAD_TRANSITIONS if w.load else 0),
        express_requests=batches,
        express_gb_s=express_ms / 1000 * EXPRESS_CHILD_MEMORY_MB / 1024,
        # QueryIds, BuildUrls, CountFailedBatches, [LoadResults], one InvokeEnrich per attempt
        lambda_requests=3 + (1 if w.load else 0) + attempts,
        lambda_gb_s=lambda_gb_s,
        # claim + ids.jsonl + batches.json + ResultWriter manifest + its result file + the
        # CountFailedBatches LIST (one per 1,000 failed batches; one on a clean night)
        # + one stored answer per enriched batch + the stage's LISTs
        s3_put_requests=1
        + _s3_upload_requests(ids_jsonl)
        + _s3_upload_requests(batches_json)
        + 3
        + batches
        + load_lists,
        # BuildUrls reads ids.jsonl, the Map's ItemReader reads batches.json, COPY the answers
        s3_get_requests=2 + load_gets,
        log_gb=(
            attempts * w.enrich_log_bytes
            + batches * w.child_log_bytes
            + w.enrich_retries * w.child_error_log_bytes
            + w.steps_log_bytes
            + (w.load_log_bytes if w.load else 0)
        )
        / 1e9,
        other_requests={"secretsmanager": 2 if w.load else 1, "put_metric_data": 1},
        warehouse_s=max(WAREHOUSE_MINIMUM_S, (w.query_ms + w.load_ms) / 1000),
        # Stored answers are written whether loading is on or not (InvokeEnrich stores each
        # 2xx answer); they exist for the loading, so they are priced with it.
        loading_s3_put_requests=batches + load_lists,
        loading_s3_get_requests=load_gets,
        loading_log_gb=(w.load_log_bytes if w.load else 0) / 1e9,
        custom_metric_hours=w.custom_metrics * w.custom_metric_hours,
    )


@dataclass(frozen=True)
class CostLine:
    """One service's share of a night and of a month."""

    service: str
    night: float
    month: float
    detail: str
    #: NIGHT (the night's own work) or LOADING (what loading the answers back adds).
    group: str = NIGHT


@dataclass(frozen=True)
class CostReport:
    """The modelled bill of a workload, beside the agent it replaces."""

    ids: int
    batches: int
    lines: list[CostLine]
    fixed_month: list[CostLine]
    agent_month: float
    skipped_fresh_ids: int = 0
    #: Snowflake warehouse time priced at the caller's assumption (not AWS; not in `night`).
    snowflake: CostLine | None = None

    @property
    def night(self) -> float:
        """Variable cost of one night."""
        return sum(line.night for line in self.lines)

    def group_night(self, group: str) -> float:
        """Variable cost of one night's lines of `group` (NIGHT or LOADING)."""
        return sum(line.night for line in self.lines if line.group == group)

    @property
    def month_variable(self) -> float:
        """Variable cost of a month of nights."""
        return self.night * NIGHTS_PER_MONTH

    @property
    def month_fixed(self) -> float:
        """What the stack costs a month even with no IDs."""
        return sum(line.month for line in self.fixed_month)

    @property
    def month(self) -> float:
        """Everything, per month."""
        return self.month_variable + self.month_fixed

    @property
    def month_without_loading(self) -> float:
        """A month of the night's own work and the fixed costs: what the figures from
        before results loading priced (compare with those)."""
        return self.group_night(NIGHT) * NIGHTS_PER_MONTH + self.month_fixed

    @property
    def month_loading(self) -> float:
        """What results loading adds to a month."""
        return self.group_night(LOADING) * NIGHTS_PER_MONTH

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (bench results, `enrichctl cost --json`)."""
        return {
            "ids": self.ids,
            "skipped_fresh_ids": self.skipped_fresh_ids,
            "batches": self.batches,
            "night_usd": self.night,
            "month_variable_usd": self.month_variable,
            "month_fixed_usd": self.month_fixed,
            "month_usd": self.month,
            "month_without_loading_usd": self.month_without_loading,
            "month_loading_usd": self.month_loading,
            "agent_month_usd": self.agent_month,
            "lines": [asdict(line) for line in self.lines],
            "fixed": [asdict(line) for line in self.fixed_month],
            "snowflake_assumed": asdict(self.snowflake) if self.snowflake else None,
            "sources": dict(SOURCES),
        }


def estimate(w: Workload, prices: Prices = PRICES) -> CostReport:
    """Price one night of `w` and a month of such nights."""
    u = night_usage(w)
    load_gb_s = u.lambda_gb_s.get("load_results", 0.0)
    load_requests = 1 if "load_results" in u.lambda_gb_s else 0
    lambda_gb_s = sum(u.lambda_gb_s.values()) - load_gb_s
    lambda_requests = u.lambda_requests - load_requests
    load_transitions = LOAD_TRANSITIONS if load_requests else 0
    transitions = u.sfn_transitions - load_transitions
    secret_reads = u.other_requests.get("secretsmanager", 0)
    load_secret_reads = 1 if load_requests else 0
    put_metric = u.other_requests.get("put_metric_data", 0)
    put = u.s3_put_requests - u.loading_s3_put_requests
    get = u.s3_get_requests - u.loading_s3_get_requests
    metric_hour = prices.custom_metric_per_month / HOURS_PER_MONTH
    lines = [
        CostLine(
            "Step Functions Standard (parent)",
            transitions * prices.sfn_standard_per_transition,
            0.0,
            f"{transitions} transitions",
        ),
        CostLine(
            "Step Functions Express (Map children)",
            u.express_requests * prices.sfn_express_per_request
            + u.express_gb_s * prices.sfn_express_per_gb_s,
            0.0,
            f"{u.express_requests} requests, {u.express_gb_s:.1f} GB-s",
        ),
        CostLine(
            "Lambda",
            lambda_requests * prices.lambda_per_request + lambda_gb_s * prices.lambda_per_gb_s,
            0.0,
            f"{lambda_requests} requests, {lambda_gb_s:.1f} GB-s",
        ),
        CostLine(
            "S3 requests (run files)",
            put * prices.s3_put_per_request + get * prices.s3_get_per_request,
            0.0,
            f"{put} PUT/LIST, {get} GET",
        ),
        CostLine(
            "CloudWatch Logs ingestion",
            (u.log_gb - u.loading_log_gb) * prices.logs_ingest_per_gb,
            0.0,
            f"{(u.log_gb - u.loading_log_gb) * 1000:.2f} MB (state machine at level ERROR)",
        ),
        CostLine(
            "CloudWatch custom metric FailedBatches",
            u.custom_metric_hours * metric_hour,
            0.0,
            f"{u.custom_metric_hours:g} metric-hour(s) at "
            f"${prices.custom_metric_per_month:.2f}/{HOURS_PER_MONTH:g}",
        ),
        CostLine(
            "Secrets Manager API + PutMetricData",
            (secret_reads - load_secret_reads) * prices.secret_api_per_request
            + put_metric * prices.put_metric_data_per_request,
            0.0,
            f"{secret_reads - load_secret_reads + put_metric} requests",
        ),
        CostLine(
            "Loading: S3 stored answers + stage reads",
            u.loading_s3_put_requests * prices.s3_put_per_request
            + u.loading_s3_get_requests * prices.s3_get_per_request,
            0.0,
            f"{u.loading_s3_put_requests} PUT/LIST, {u.loading_s3_get_requests} GET",
            LOADING,
        ),
        CostLine(
            "Loading: LoadResults (waits on Snowflake)",
            load_requests * prices.lambda_per_request
            + load_gb_s * prices.lambda_per_gb_s
            + load_transitions * prices.sfn_standard_per_transition
            + load_secret_reads * prices.secret_api_per_request
            + u.loading_log_gb * prices.logs_ingest_per_gb,
            0.0,
            f"{load_requests} request, {load_gb_s:.1f} GB-s ({w.load_ms / 1000:.0f} s at "
            f"{w.memory_mb['load_results']} MB), 1 transition, 1 secret read, its logs"
            if load_requests
            else "loading off",
            LOADING,
        ),
    ]
    lines = [replace(line, month=line.night * NIGHTS_PER_MONTH) for line in lines]
    fixed = [
        CostLine("Secrets Manager secrets", 0.0, w.secrets * prices.secret_per_month, ""),
        CostLine("CloudWatch alarms", 0.0, w.alarms * prices.alarm_per_month, ""),
    ]
    fixed = [replace(line, detail=_fixed_detail(line.service, w)) for line in fixed]
    snowflake = None
    if w.warehouse_usd_per_hour > 0:
        night = u.warehouse_s / 3600 * w.warehouse_usd_per_hour
        snowflake = CostLine(
            "Snowflake warehouse (assumed, not AWS)",
            night,
            night * NIGHTS_PER_MONTH,
            f"{u.warehouse_s:.0f} s at ${w.warehouse_usd_per_hour:g}/h",
        )
    return CostReport(
        w.ids, w.batch_count, lines, fixed, prices.agent_per_month, w.skipped_ids, snowflake
    )


def _fixed_detail(service: str, w: Workload) -> str:
    if service.startswith("Secrets"):
        return f"{w.secrets} secret(s)"
    return f"{w.alarms} alarms (each on one metric)"


def template_counts(template: dict[str, Any]) -> dict[str, Any]:
    """Alarms and function memory from a synthesized template (what the stack deploys)."""
    resources = template.get("Resources", {})
    alarms = sum(1 for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm")
    memory: dict[str, int] = {}
    for r in resources.values():
        if r.get("Type") != "AWS::Lambda::Function":
            continue
        props = r.get("Properties", {})
        handler = str(props.get("Handler", ""))
        step = handler.split(".")[0]
        if step in FUNCTION_MEMORY_MB and props.get("MemorySize"):
            memory[step] = int(props["MemorySize"])
    return {"alarms": alarms, "memory_mb": {**FUNCTION_MEMORY_MB, **memory}}


def usd(value: float) -> str:
    """Dollars as `enrichctl cost`, `enrichctl bench` and the docs print them: two decimals
    from $1 ($8.47), else two significant digits, so a sub-dollar item keeps its size
    readable ($0.024, $0.00028) instead of rounding to $0.02 or $0.00."""
    if value == 0:
        return "$0"
    if value < 0:
        return "-" + usd(-value)
    if value >= 1:
        return f"${value:,.2f}"
    text = f"{value:.{max(2, 1 - math.floor(math.log10(value)))}f}"
    whole, cents = text.split(".")
    # Keep whole cents ($0.10, not $0.1); drop only the zeros past them.
    return f"${whole}.{cents[:2] + cents[2:].rstrip('0')}"
