"""`enrichctl smoke`: check a deployed stack the way an operator would, one result per check.

Each check reads the deployed resources the stack's outputs name and returns a `Check`:
whether it passed, what was seen, and (when it failed) what to do. A check that AWS refuses
(a missing permission, an output an older stack lacks) fails with that one line instead of
ending the command; only a stack that cannot be read at all (no credentials, not deployed)
ends it, as for every other `enrichctl` command. No secret value is ever read: the secrets
check calls DescribeSecret, which returns metadata only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from enrichctl.ops import executions as ex
from enrichctl.ops.aws import Deployment, OpsError, aws_errors
from enrichctl.ops.topic_policy import cloudwatch_can_publish

#: What SNS reports instead of an ARN for a subscription nobody confirmed yet.
PENDING = "PendingConfirmation"
REDEPLOY = "deploy the current stack with `npx cdk deploy`"


@dataclass(frozen=True)
class Check:
    """One line of `enrichctl smoke`: `fix` says what to do when `ok` is False."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The `--json` form."""
        return asdict(self)


def _passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def _failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def guarded(name: str, body: Callable[[], Check]) -> Check:
    """Run one check; an `OpsError` inside it (AWS refused, output missing) fails only it."""
    try:
        return body()
    except OpsError as exc:
        return _failed(name, "could not be checked", str(exc))


# --------------------------------------------------------------------------- schedule
def check_schedule(dep: Deployment) -> Check:
    """The nightly schedule exists and is ENABLED (scheduler:GetSchedule)."""
    from botocore.exceptions import ClientError

    name = "schedule"
    schedule = dep.schedule_name
    with aws_errors(dep.target):
        try:
            found = dep.client("scheduler").get_schedule(Name=schedule)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            return _failed(name, f"schedule {schedule} does not exist", REDEPLOY)
    state = str(found.get("State", ""))
    when = f"{found.get('ScheduleExpression', '?')} {found.get('ScheduleExpressionTimezone', '')}"
    if state != "ENABLED":
        return _failed(
            name,
            f"schedule {schedule} is {state or 'in no state'} ({when.strip()}): no night will run",
            "set pipeline.schedule.enabled to true and run `npx cdk deploy`",
        )
    return _passed(name, f"schedule {schedule} is ENABLED ({when.strip()})")


# --------------------------------------------------------------------------- subscriptions
def check_subscriptions(dep: Deployment) -> Check:
    """The alarm topic has at least one confirmed subscription."""
    name = "alarm subscriptions"
    topic = dep.alarm_topic_arn
    subscriptions: list[dict[str, Any]] = []
    with aws_errors(dep.target):
        for page in (
            dep.client("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        ):
            subscriptions += page.get("Subscriptions", [])
    confirmed = [s for s in subscriptions if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    pending = [s for s in subscriptions if s.get("SubscriptionArn") == PENDING]
    if confirmed:
        protocols = ", ".join(sorted({str(s.get("Protocol")) for s in confirmed}))
        more = f"; {len(pending)} still pending confirmation" if pending else ""
        return _passed(name, f"{len(confirmed)} confirmed ({protocols}){more}")
    if pending:
        endpoints = ", ".join(str(s.get("Endpoint")) for s in pending)
        return _failed(
            name,
            f"none confirmed; {len(pending)} pending confirmation ({endpoints}): "
            "alarms reach nobody",
            'click "Confirm subscription" in the e-mail "AWS Notification - Subscription '
            'Confirmation" each address got (or resubscribe it: `aws sns subscribe '
            f"--topic-arn {topic} --protocol email --notification-endpoint ADDRESS`)",
        )
    return _failed(
        name,
        "the alarm topic has no subscription: alarms reach nobody",
        "set pipeline.alarms.emails (or the Slack channel) and run `npx cdk deploy`, or "
        f"`aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint ADDRESS`",
    )


# --------------------------------------------------------------------------- topic policy
def alarms_publishing_to(dep: Deployment, topic: str) -> list[str]:
    """ARNs of the alarms that name `topic` in their ALARM, OK or INSUFFICIENT_DATA actions."""
    arns: list[str] = []
    with aws_errors(dep.target):
        for page in (
            dep.client("cloudwatch")
            .get_paginator("describe_alarms")
            .paginate(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        ):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                actions = (
                    alarm.get("AlarmActions", [])
                    + alarm.get("OKActions", [])
                    + alarm.get("InsufficientDataActions", [])
                )
                if topic in actions:
                    arns.append(str(alarm["AlarmArn"]))
    return arns


def check_topic_policy(dep: Deployment) -> Check:
    """The topic policy lets CloudWatch publish for every alarm that sends to the topic."""
    name = "topic policy"
    topic = dep.alarm_topic_arn
    with aws_errors(dep.target):
        attributes = dep.client("sns").get_topic_attributes(TopicArn=topic).get("Attributes", {})
    alarms = alarms_publishing_to(dep, topic)
    if not alarms:
        return _failed(name, "no CloudWatch alarm sends to the alarm topic", REDEPLOY)
    verdict = cloudwatch_can_publish(attributes.get("Policy"), topic, alarms)
    if not verdict.allowed:
        return _failed(
            name,
            f"CloudWatch may not publish: {verdict.reason}; no alarm would notify anyone",
            "the topic policy needs an Allow for cloudwatch.amazonaws.com on sns:Publish "
            f"(scoped by aws:SourceAccount and aws:SourceArn): {REDEPLOY}",
        )
    return _passed(name, f"CloudWatch may publish for all {len(alarms)} alarms ({verdict.reason})")


# --------------------------------------------------------------------------- secrets
def check_secrets(dep: Deployment) -> list[Check]:
    """The Snowflake secret (and the API key secret, if configured) exist: metadata only."""
    checks = [
        guarded(
            "Snowflake secret",
            lambda: _check_secret(dep, "Snowflake secret", dep.snowflake_secret_name),
        )
    ]
    api_key = dep.api_key_secret_name
    if api_key:
        checks.append(
            guarded("API key secret", lambda: _check_secret(dep, "API key secret", api_key))
        )
    return checks


def _check_secret(dep: Deployment, name: str, secret: str) -> Check:
    from botocore.exceptions import ClientError

    create = (
        f"create it: `aws secretsmanager create-secret --name {secret} --secret-string "
        "file://secret.json` (README, Deploy step 1)"
    )
    with aws_errors(dep.target):
        try:
            described = dep.client("secretsmanager").describe_secret(SecretId=secret)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            return _failed(name, f"{secret} does not exist in {dep.region}", create)
    if described.get("DeletedDate"):
        return _failed(
            name,
            f"{secret} is scheduled for deletion",
            f"restore it: `aws secretsmanager restore-secret --secret-id {secret}`",
        )
    return _passed(name, f"{secret} exists (value not read)")


# --------------------------------------------------------------------------- dry run
def check_dry_run(
    dep: Deployment,
    *,
    poll_s: float,
    started: Callable[[str, str], None] | None = None,
) -> Check:
    """Start a dry run (`enrichctl run --dry-run`), wait for it and judge its status.

    Its success counts in ExecutionsSucceeded, which clears MissedRun, and proves the Snowflake
    secret, the Snowflake query and the S3 writes. `started(name, arn)` is told once it runs.
    """
    name = "dry run"
    run, arn, _ = ex.start_run(dep, dry_run=True)
    if started is not None:
        started(run, arn)
    described = ex.follow(dep, arn, poll_s=poll_s)
    facts = ex.run_facts(dep, described)
    took = facts.duration_s
    elapsed = f" in {took:.0f}s" if took is not None else ""
    if described["status"] != "SUCCEEDED":
        return _failed(
            name,
            f"{run} {facts.status}{elapsed}: {facts.error}: {(facts.cause or '').strip()[:200]}",
            f"see `enrichctl show {run}`; README's alarm table (ExecutionsFailed) says where "
            "to look, then run `enrichctl smoke` again",
        )
    counts = facts.counts
    built = f"{counts.ids or 0:,} IDs in {counts.batches or 0:,} batch(es), nothing sent"
    return _passed(name, f"{run} SUCCEEDED{elapsed} ({built}); MissedRun clears")


def static_checks(dep: Deployment) -> list[Check]:
    """Every check but the dry run, in the order they are printed."""
    return [
        guarded("schedule", lambda: check_schedule(dep)),
        guarded("alarm subscriptions", lambda: check_subscriptions(dep)),
        guarded("topic policy", lambda: check_topic_policy(dep)),
        *check_secrets(dep),
    ]
