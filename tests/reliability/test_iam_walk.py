"""IAM walk: every role and policy of the synthesized template against iam_allowed.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from enrichctl.local_run.template import load_template
from tests.reliability.iam_allowed import ALLOWED, OPTIONAL, Grant

HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")
OPTIONAL_CONTEXT = {
    "pipeline.enrichment.apiKeySecretName": "imdb-enrichment/api-key",
    "pipeline.alarms.emails": ["oncall@example.com"],
    "pipeline.alarms.slackWorkspaceId": "T0123ABCD",
    "pipeline.alarms.slackChannelId": "C0123ABCD",
    "pipeline.load.source": "s3://partner-enrichment-results/imdb/",
}


def base_id(logical_id: str) -> str:
    """The logical ID without CDK's 8-character hash suffix."""
    return HASH_SUFFIX.sub("", logical_id)


def render(node: Any) -> str:
    """A policy resource as text, tokens written as `{LogicalId.Attr}` / `{Ref}`."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref":
            return "{" + (arg if arg.startswith("AWS::") else base_id(arg)) + "}"
        if key == "Fn::GetAtt":
            return "{" + base_id(arg[0]) + "." + arg[1] + "}"
        if key == "Fn::Join":
            return arg[0].join(render(part) for part in arg[1])
    raise AssertionError(f"cannot render policy resource {node!r}")


def role_key(logical_id: str) -> str:
    for key in (*ALLOWED, "SchedulerRoleForTarget"):
        if base_id(logical_id) == key or logical_id.startswith(key):
            return key
    return base_id(logical_id)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def granted(template: dict[str, Any]) -> dict[str, set[tuple[str, str, str | None]]]:
    """role -> {(action, resource, condition key)} from every policy attached to it."""
    resources = template["Resources"]
    out: dict[str, set[tuple[str, str, str | None]]] = {}
    for lid, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            assert not props.get("ManagedPolicyArns"), f"{lid} has managed policies"
            out.setdefault(role_key(lid), set())
            documents = [(lid, p["PolicyDocument"]) for p in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = [r["Ref"] for r in props.get("Roles", [])]
            assert roles and not props.get("Users") and not props.get("Groups"), lid
            documents = [(role, props["PolicyDocument"]) for role in roles]
        else:
            continue
        for role, document in documents:
            for statement in document["Statement"]:
                assert statement["Effect"] == "Allow", (lid, statement)
                assert "NotAction" not in statement and "NotResource" not in statement
                conditions = statement.get("Condition", {})
                keys = sorted(k for op in conditions.values() for k in op)
                condition = ",".join(keys) or None
                for action in as_list(statement["Action"]):
                    assert action != "*" and not action.endswith(":*"), (lid, action)
                    for resource in as_list(statement["Resource"]):
                        out.setdefault(role_key(role), set()).add(
                            (action, render(resource), condition)
                        )
    return out


def allowed(grants: list[Grant]) -> dict[tuple[str, str, str | None], str]:
    return {(a, g.resource, g.condition): g.reason for g in grants for a in g.actions}


def trust(template: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for lid, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            for statement in res["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                principal = statement["Principal"]
                trusted = out.setdefault(role_key(lid), set())
                if set(principal) == {"AWS"}:
                    # Another account's principal (Snowflake's IAM user): only with an
                    # external ID, and nothing else may relax it.
                    condition = statement["Condition"]
                    assert set(condition) == {"StringEquals"}, (lid, condition)
                    assert set(condition["StringEquals"]) == {"sts:ExternalId"}, (lid, condition)
                    external_id = condition["StringEquals"]["sts:ExternalId"]
                    trusted.add(f"{principal['AWS']} if sts:ExternalId={external_id}")
                    continue
                assert set(principal) == {"Service"}, (lid, principal)
                trusted.update(as_list(principal["Service"]))
    return out


@pytest.fixture(scope="module")
def optional_template() -> dict[str, Any]:
    template, _ = load_template(OPTIONAL_CONTEXT)
    return template


def test_every_grant_of_the_default_stack_is_listed_and_explained(pipeline_template):
    actual = granted(pipeline_template)
    assert set(actual) == set(ALLOWED), "a role was added or removed: update iam_allowed.py"
    for role, (_principal, grants) in ALLOWED.items():
        permitted = allowed(grants)
        extra = sorted(actual[role] - set(permitted))
        unused = sorted(set(permitted) - actual[role])
        assert not extra, f"{role} is granted more than iam_allowed.py explains: {extra}"
        assert not unused, f"iam_allowed.py lists grants {role} no longer has: {unused}"
        assert all(len(reason) > 15 for reason in permitted.values())


def test_wildcard_resources_only_for_actions_without_resource_types(pipeline_template):
    for role, grants in granted(pipeline_template).items():
        for action, resource, _condition in grants:
            if resource == "*":
                assert action.split(":")[0] in ("xray", "logs", "cloudwatch"), (role, action)


def test_each_role_is_assumable_only_by_its_service(pipeline_template):
    assert trust(pipeline_template) == {role: {p} for role, (p, _) in ALLOWED.items()}


def test_optional_features_add_only_their_listed_grants(optional_template):
    actual = granted(optional_template)
    for role, (_principal, grants) in ALLOWED.items():
        permitted = allowed(grants + OPTIONAL.get(role, []))
        extra = sorted(actual[role] - set(permitted))
        assert not extra, f"{role} (optional features on) has unexplained grants: {extra}"
    for role, grants in OPTIONAL.items():
        assert set(allowed(grants)) <= actual[role], f"{role}: optional grant not rendered"
    unknown = set(actual) - set(ALLOWED)
    # Chatbot's channel role: read-only guardrails only, no inline grants of ours.
    assert all(not actual[role] for role in unknown), {r: actual[r] for r in unknown}
