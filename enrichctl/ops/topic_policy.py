"""Does a topic policy let CloudWatch alarms publish? (`enrichctl smoke`'s policy check).

A topic policy (`AWS::SNS::TopicPolicy`) replaces SNS's default policy, so an alarm can
publish only if a statement Allows `cloudwatch.amazonaws.com` to `sns:Publish` on the topic
for that alarm's request, and no Deny applies to that request. moto enforces none of this,
so the command evaluates the policy it reads back (sns:GetTopicAttributes -> Policy) itself.

The request evaluated is the one CloudWatch sends for an alarm: service principal
`cloudwatch.amazonaws.com`, action `sns:Publish`, resource the topic, over TLS, with
`aws:SourceAccount` the alarm's account and `aws:SourceArn` the alarm's ARN. The evaluation
covers what topic policies use (Principal/NotPrincipal, Action/NotAction, Resource/NotResource,
the String/Arn/Bool/Null condition operators and their IfExists forms). A condition it cannot
evaluate never proves an Allow and always counts as a Deny that applies: it errs towards
"cannot publish", which is the failure an operator must hear about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

CLOUDWATCH = "cloudwatch.amazonaws.com"
PUBLISH = "sns:Publish"


@dataclass(frozen=True)
class Request:
    """One publish request as the policy sees it."""

    service: str
    action: str
    resource: str
    context: Mapping[str, str]


@dataclass(frozen=True)
class Verdict:
    """Whether the requests are allowed; `reason` says why not (or which statement allows)."""

    allowed: bool
    reason: str


def alarm_request(topic_arn: str, alarm_arn: str) -> Request:
    """The request CloudWatch makes when alarm `alarm_arn` publishes to `topic_arn`."""
    account = alarm_arn.split(":")[4]
    return Request(
        service=CLOUDWATCH,
        action=PUBLISH,
        resource=topic_arn,
        context={
            "aws:SecureTransport": "true",
            "aws:SourceAccount": account,
            "AWS:SourceOwner": account,  # SNS's own key for the same (its default policy's)
            "aws:SourceArn": alarm_arn,
            "aws:PrincipalServiceName": CLOUDWATCH,
        },
    )


def cloudwatch_can_publish(
    policy: str | Mapping[str, Any] | None, topic_arn: str, alarm_arns: Iterable[str]
) -> Verdict:
    """Whether every alarm in `alarm_arns` may publish to `topic_arn` under `policy`.

    Args:
        policy: the topic's policy document (JSON text or parsed); None/empty: no policy.
        topic_arn: the topic the alarms publish to.
        alarm_arns: the alarms that name the topic in their actions (at least one).
    """
    arns = list(alarm_arns)
    if not arns:
        return Verdict(False, "no alarm publishes to the topic")
    if not policy:
        return Verdict(False, "the topic has no policy")
    document = json.loads(policy) if isinstance(policy, str) else dict(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for alarm_arn in arns:
        verdict = evaluate(statements, alarm_request(topic_arn, alarm_arn))
        if not verdict.allowed:
            name = alarm_arn.split(":alarm:")[-1]
            return Verdict(False, f"alarm {name}: {verdict.reason}")
    return Verdict(True, f"{len(arns)} alarm(s) allowed")


def evaluate(statements: list[Mapping[str, Any]], request: Request) -> Verdict:
    """IAM's order for one resource policy: an applying Deny wins, then any Allow, else no."""
    allowed_by: str | None = None
    for index, statement in enumerate(statements):
        label = str(statement.get("Sid") or f"statement {index + 1}")
        if not _applies(statement, request):
            continue
        effect = str(statement.get("Effect", ""))
        deny = effect == "Deny"
        conditions = _conditions_hold(statement.get("Condition") or {}, request, deny=deny)
        if not conditions:
            continue
        if deny:
            return Verdict(
                False, f"Deny {label} applies to {request.action} from {request.service}"
            )
        if effect == "Allow" and allowed_by is None:
            allowed_by = label
    if allowed_by is None:
        return Verdict(
            False,
            f"no statement allows {request.service} to {request.action} "
            f"(with aws:SourceAccount and aws:SourceArn of the alarm)",
        )
    return Verdict(True, f"allowed by {allowed_by}")


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _principal_matches(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if "*" in _listed(principal.get("AWS")):  # {"AWS": "*"}: everyone, services included
        return True
    return service in _listed(principal.get("Service"))


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    """Principal, action and resource match (conditions apart)."""
    if "NotPrincipal" in statement:
        if _principal_matches(statement["NotPrincipal"], request.service):
            return False
    elif not _principal_matches(statement.get("Principal"), request.service):
        return False
    action = request.action.lower()
    if "NotAction" in statement:
        if any(fnmatchcase(action, a.lower()) for a in _listed(statement["NotAction"])):
            return False
    elif not any(fnmatchcase(action, a.lower()) for a in _listed(statement.get("Action"))):
        return False
    if "NotResource" in statement:
        return not any(_arn_like(request.resource, r) for r in _listed(statement["NotResource"]))
    return any(_arn_like(request.resource, r) for r in _listed(statement.get("Resource")))


def _arn_like(value: str, pattern: str) -> bool:
    """ArnLike: per colon-separated part, `*` and `?` wildcards (the resource part may hold `:`)."""
    value_parts, pattern_parts = value.split(":", 5), pattern.split(":", 5)
    if pattern == "*":
        return True
    if len(value_parts) != len(pattern_parts):
        return False
    return all(fnmatchcase(v, p) for v, p in zip(value_parts, pattern_parts, strict=True))


def _string_like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


_MATCHERS = {
    "StringEquals": lambda v, p: v == p,
    "StringEqualsIgnoreCase": lambda v, p: v.lower() == p.lower(),
    "StringLike": _string_like,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda v, p: v.lower() == p.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _conditions_hold(conditions: Mapping[str, Any], request: Request, *, deny: bool) -> bool:
    """Every condition block holds (AND over operators and keys, OR over a key's values).

    An operator this module does not know returns `deny`: it cannot prove an Allow, and a
    Deny guarded by it is taken to apply.
    """
    for operator, block in conditions.items():
        if not isinstance(block, Mapping):
            return deny
        for key, expected in block.items():
            held = _condition_holds(operator, key, _listed(expected), request.context)
            if held is None:
                return deny
            if not held:
                return False
    return True


def _condition_holds(
    operator: str, key: str, expected: list[str], context: Mapping[str, str]
) -> bool | None:
    """One operator on one key; None when the operator is unknown."""
    present = _context_value(context, key)
    if operator == "Null":  # "true": the key must be absent; "false": present
        return any((present is None) == (e.lower() == "true") for e in expected)
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base.startswith("ForAnyValue:") or base.startswith("ForAllValues:"):
        return None  # multi-valued keys: none in a CloudWatch publish request
    negated = base in _NEGATED
    matcher = _MATCHERS.get(_NEGATED.get(base, base))
    if matcher is None:
        return None
    if present is None:  # an absent key matches nothing: negated operators then hold
        return if_exists or negated
    matched = any(matcher(present, e) for e in expected)
    return not matched if negated else matched


def _context_value(context: Mapping[str, str], key: str) -> str | None:
    """Condition keys are case-insensitive."""
    for name, value in context.items():
        if name.lower() == key.lower():
            return value
    return None
