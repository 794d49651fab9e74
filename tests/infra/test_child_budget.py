"""An Express child's whole time budget, proved on the synthesized definition.

moto does not enforce Express's 5-minute limit, so this walks what `cdk synth` produced:
every Retry (MaxAttempts, IntervalSeconds, BackoffRate, MaxDelaySeconds) and every
TimeoutSeconds of the child states, along every path (Next and Catch), and checks the
worst case against the figure config validation uses (stacks/config/budget.py ChildBudget).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from stacks.config.context import load_config, with_local_placeholders
from stacks.config.limits import EXPRESS_CHILD_LIMIT_S
from stacks.config.problems import ConfigError
from stacks.synth import cdk_json_context, resolve_definition, state_machine_definition
from tests.infra.conftest import all_states

#: ASL's defaults for a Retrier's omitted fields.
ASL_RETRY_DEFAULTS = {"MaxAttempts": 3, "IntervalSeconds": 1, "BackoffRate": 2.0}


def retrier_worst(rule: dict[str, Any]) -> tuple[int, float]:
    """(retries, longest total wait) of one Retrier (full jitter only shortens waits)."""
    rule = {**ASL_RETRY_DEFAULTS, **rule}
    cap = rule.get("MaxDelaySeconds", math.inf)
    waits = [
        min(rule["IntervalSeconds"] * rule["BackoffRate"] ** n, cap)
        for n in range(rule["MaxAttempts"])
    ]
    return rule["MaxAttempts"], sum(waits)


def state_worst(state: dict[str, Any]) -> float:
    """Longest time in one state: retriers count attempts separately, so they add up."""
    if state["Type"] != "Task":
        return 0.0
    assert state.get("TimeoutSeconds"), "a Task without TimeoutSeconds has no bound"
    retries = waits = 0.0
    for rule in state.get("Retry", []):
        r, w = retrier_worst(rule)
        retries, waits = retries + r, waits + w
    return (1 + retries) * state["TimeoutSeconds"] + waits


def path_worst(states: dict[str, Any], name: str) -> float:
    """Longest time from state `name` to the end of the child, over Next and Catch."""
    state = states[name]
    following = [state["Next"]] if "Next" in state else []
    following += [c["Next"] for c in state.get("Catch", [])]
    return state_worst(state) + max((path_worst(states, n) for n in following), default=0.0)


def child_worst(definition: dict[str, Any]) -> float:
    (enrich_map,) = [s for s in all_states(definition).values() if "ItemProcessor" in s]
    processor = enrich_map["ItemProcessor"]
    assert processor["ProcessorConfig"]["ExecutionType"] == "EXPRESS"
    return path_worst(processor["States"], processor["StartAt"])


def local_context() -> dict[str, Any]:
    """cdk.json's context as in-process synth sees it (Snowflake's two values stood in)."""
    return with_local_placeholders(cdk_json_context())


def test_the_synthesized_child_fits_in_the_budget_config_checks(definition: dict) -> None:
    worst = child_worst(definition)
    assert worst < EXPRESS_CHILD_LIMIT_S, f"a child may run {worst:g} s"
    budget = load_config(local_context()).enrichment.child_budget()
    assert worst == pytest.approx(budget.worst_case_s)


def test_a_tighter_config_is_walked_the_same_way() -> None:
    from stacks.synth import synth_template

    overrides = {
        "pipeline.enrichment.timeoutSeconds": 10,
        "pipeline.enrichment.retry": {"intervalSeconds": 3, "backoffRate": 3.0,
                                      "maxAttempts": 4, "maxDelaySeconds": 20},
    }  # fmt: skip
    definition = resolve_definition(state_machine_definition(synth_template(overrides)))
    context = {**local_context(), **overrides}
    budget = load_config(context).enrichment.child_budget()
    assert child_worst(definition) == pytest.approx(budget.worst_case_s)


def test_a_config_past_the_express_limit_is_refused_with_the_exact_worst_case() -> None:
    # 32 s per API call: 4 InvokeEnrich attempts of 5 + 32 + 15 + 10 = 62 s, waits of
    # 5 + 10 + 20 s, then RecordFailedBatch's 3 x 5 s + 1 + 2 s: 301 s.
    context = {**local_context(), "pipeline.enrichment.timeoutSeconds": 32}
    with pytest.raises(ConfigError) as excinfo:
        load_config(context)
    assert (
        "lets one batch's child execution run up to 301 s (InvokeEnrich 4 attempts x 62 s + "
        "35 s of retry waits = 283 s, then RecordFailedBatch 3 x 5 s + 3 s = 18 s; each "
        "InvokeEnrich attempt is timeoutSeconds=32 + 30 s), not below the 300 s an Express "
        "child may live; fix: lower enrichment.retry.maxAttempts or maxDelaySeconds, or "
        "enrichment.timeoutSeconds, until the total is below 300 s"
    ) in str(excinfo.value)
    # One second less per call fits.
    load_config({**local_context(), "pipeline.enrichment.timeoutSeconds": 31})
