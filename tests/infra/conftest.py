"""Shared fixtures: one synthesized template per test worker (synth takes seconds)."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_DEPRECATED", "quiet")

from stacks.synth import resolve_definition, state_machine_definition, synth_template


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The stack template synthesized from cdk.json's context (bundling skipped)."""
    return synth_template()


@pytest.fixture(scope="session")
def definition(template: dict[str, Any]) -> dict[str, Any]:
    """The state machine definition, tokens replaced by `<LogicalId>` / `<LogicalId>.Arn`."""
    return resolve_definition(state_machine_definition(template))


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical ID."""
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def one(template: dict[str, Any], resource_type: str, id_prefix: str = "") -> dict[str, Any]:
    """The properties of the one resource of a type (optionally by logical ID prefix)."""
    found = [
        r["Properties"]
        for k, r in resources(template, resource_type).items()
        if k.startswith(id_prefix)
    ]
    assert len(found) == 1, f"expected one {resource_type} {id_prefix!r}, found {len(found)}"
    return found[0]


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, including the Distributed Map's child states, by name."""
    found: dict[str, dict[str, Any]] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            found[name] = state
            for key in ("ItemProcessor", "Iterator"):
                if key in state:
                    walk(state[key]["States"])
            for branch in state.get("Branches", []):
                walk(branch["States"])

    walk(definition["States"])
    return found
