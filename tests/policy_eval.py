"""A small IAM policy evaluator for the synthesized template (moto enforces no policy).

It answers "would AWS allow this request?" for the policy documents CDK writes, following
the documented evaluation logic for one account
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins, else any matching Allow allows, else the request is implicitly
denied. It covers what the template uses: Principal / NotPrincipal, Action / NotAction
(case-insensitive, `*` and `?` wildcards), Resource / NotResource (case-sensitive
wildcards), and the condition operators String(Not)Equals, String(Not)Like,
Arn(Not)Equals, Arn(Not)Like and Bool, each with `...IfExists`. Anything else raises, so
a new operator in the template cannot be silently treated as a match.

Template values are rendered with `Renderer`: pseudo parameters become fixed values of a
pretend account, `Ref`/`Fn::GetAtt` of a resource become `{LogicalId}` /
`{LogicalId.Attr}` (a topic's Ref is its ARN, a bucket's Arn `arn:aws:s3:::{LogicalId}`),
`Fn::Join` and `Fn::Sub` are joined.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
PARTITION = "aws"

ALLOW = "Allow"
EXPLICIT_DENY = "ExplicitDeny"
IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class Request:
    """One API request as IAM sees it: who, what, on which resource, with which context."""

    action: str
    resource: str
    principal: dict[str, str] = field(default_factory=dict)  # {"Service": ...} / {"AWS": ...}
    context: dict[str, str] = field(default_factory=dict)  # condition keys -> value


class Renderer:
    """Renders CloudFormation values of one template to plain strings."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.resources = template["Resources"]

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {key: self(value) for key, value in node.items()}
        ((key, arg),) = node.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            kind = self.resources.get(arg[0], {}).get("Type")
            if kind == "AWS::S3::Bucket" and arg[1] == "Arn":  # so that Ref + key composes
                return f"arn:{PARTITION}:s3:::{{{arg[0]}}}"
            return "{" + f"{arg[0]}.{arg[1]}" + "}"
        if key == "Fn::Join":
            return arg[0].join(str(self(part)) for part in arg[1])
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return re.sub(
                r"\$\{([^}]+)\}",
                lambda m: str(
                    self(variables[m.group(1)]) if m.group(1) in variables else self.ref(m.group(1))
                ),
                text,
            )
        return {key: self(arg)}

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if "." in name:  # Fn::Sub's ${X.Arn}
            return "{" + name + "}"
        if self.resources.get(name, {}).get("Type") == "AWS::SNS::Topic":
            return topic_arn(name)
        return "{" + name + "}"


def topic_arn(logical_id: str) -> str:
    """The ARN a topic's `Ref` stands for."""
    return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{{{logical_id}}}"


def as_list(value: Any) -> list[Any]:
    """A policy element that may be one value or a list, as a list."""
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, case: bool) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    # fnmatch's [...] classes do not exist in IAM: escape them.
    pattern = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, pattern)


def _principal_matches(element: Any, principal: dict[str, str]) -> bool:
    if element == "*":
        return True
    for kind, values in element.items():
        for value in as_list(values):
            if value == "*" and kind == "AWS":
                return True
            if principal.get(kind) == value:
                return True
            if (
                kind == "AWS"
                and principal.get("Account")
                and value
                in (
                    principal["Account"],
                    f"arn:{PARTITION}:iam::{principal['Account']}:root",
                )
            ):
                return True
    return False


_OPERATORS = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringLike": (lambda p, v: _wildcard(p, v, case=True), False),
    "ArnEquals": (lambda p, v: p == v, False),
    "ArnLike": (lambda p, v: _wildcard(p, v, case=True), False),
    "Bool": (lambda p, v: str(p).lower() == str(v).lower(), False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringNotLike": (lambda p, v: _wildcard(p, v, case=True), True),
    "ArnNotEquals": (lambda p, v: p == v, True),
    "ArnNotLike": (lambda p, v: _wildcard(p, v, case=True), True),
}


def _condition_matches(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, block in conditions.items():
        base = operator.removesuffix("IfExists")
        if base not in _OPERATORS:
            raise NotImplementedError(f"condition operator {operator} is not evaluated here")
        compare, negated = _OPERATORS[base]
        for key, patterns in block.items():
            if key not in context:
                if operator.endswith("IfExists") or negated:
                    continue  # a missing key satisfies IfExists and negated operators
                return False
            hit = any(compare(pattern, context[key]) for pattern in as_list(patterns))
            if hit == negated:
                return False
    return True


def statement_matches(
    statement: dict[str, Any], request: Request, *, resource_policy: bool
) -> bool:
    """Whether one (rendered) statement applies to the request."""
    if resource_policy:
        if "Principal" in statement and not _principal_matches(
            statement["Principal"], request.principal
        ):
            return False
        if "NotPrincipal" in statement and _principal_matches(
            statement["NotPrincipal"], request.principal
        ):
            return False
    if "Action" in statement:
        if not any(_wildcard(a, request.action, case=False) for a in as_list(statement["Action"])):
            return False
    elif any(_wildcard(a, request.action, case=False) for a in as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(
            _wildcard(r, request.resource, case=True) for r in as_list(statement["Resource"])
        ):
            return False
    elif "NotResource" in statement and any(
        _wildcard(r, request.resource, case=True) for r in as_list(statement["NotResource"])
    ):
        return False
    return _condition_matches(statement.get("Condition", {}), request.context)


def evaluate(
    statements: list[dict[str, Any]], request: Request, *, resource_policy: bool = False
) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for `request` under the rendered statements."""
    matching = [
        s for s in statements if statement_matches(s, request, resource_policy=resource_policy)
    ]
    if any(s["Effect"] == "Deny" for s in matching):
        return EXPLICIT_DENY
    if any(s["Effect"] == "Allow" for s in matching):
        return ALLOW
    return IMPLICIT_DENY


def role_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every identity-policy statement attached to a role (inline and AWS::IAM::Policy)."""
    render = Renderer(template)
    found: list[dict[str, Any]] = []
    for lid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role" and lid == role_logical_id:
            for policy in props.get("Policies", []):
                found += render(policy["PolicyDocument"])["Statement"]
        elif res["Type"] == "AWS::IAM::Policy" and {"Ref": role_logical_id} in props.get(
            "Roles", []
        ):
            found += render(props["PolicyDocument"])["Statement"]
    return found


__all__ = [
    "ACCOUNT",
    "ALLOW",
    "EXPLICIT_DENY",
    "IMPLICIT_DENY",
    "OTHER_ACCOUNT",
    "PARTITION",
    "REGION",
    "Renderer",
    "Request",
    "as_list",
    "evaluate",
    "role_statements",
    "statement_matches",
    "topic_arn",
]
