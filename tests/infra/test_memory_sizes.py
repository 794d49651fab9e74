"""Function memory comes from measured peaks (bench-results/memory.json), not from a guess.

The file is written by `python -m enrichctl.bench.memory_sizes` (see its docstring for what is
measured and the rule); re-run it and commit the file when a step's work changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from enrichctl.bench.memory_sizes import MARGIN, MIN_MB, STEP_MB, size_for
from stacks.memory import FUNCTION_MEMORY_MB
from tests.infra.conftest import resources

MEASURED = json.loads(
    (Path(__file__).resolve().parents[2] / "bench-results" / "memory.json").read_text()
)
#: Kept above its measured size on purpose (CPU scales with memory; see stacks/memory.py).
CPU_BOUND = {"query_ids"}


@pytest.mark.parametrize(
    ("needed", "size"),
    [(10, 128), (85.3, 128), (85.4, 192), (121.0, 192), (129.5, 256), (459.8, 704)],
)
def test_rule_adds_the_margin_and_rounds_up_to_64_mb(needed: float, size: int) -> None:
    assert (MARGIN, MIN_MB, STEP_MB) == (0.5, 128, 64)
    assert size_for(needed) == size


def test_the_file_follows_its_own_rule() -> None:
    assert set(MEASURED["steps"]) == set(FUNCTION_MEMORY_MB)
    for step, figures in MEASURED["steps"].items():
        assert figures["needed_mb"] == pytest.approx(
            figures["import_mb"] + max(0.0, figures["work_mb"]), abs=0.11
        )
        assert figures["memory_mb"] == size_for(figures["needed_mb"]), step


@pytest.mark.parametrize("step", sorted(FUNCTION_MEMORY_MB))
def test_configured_memory_is_the_measured_size(step: str) -> None:
    measured = MEASURED["steps"][step]["memory_mb"]
    if step in CPU_BOUND:
        assert FUNCTION_MEMORY_MB[step] >= measured
    else:
        assert FUNCTION_MEMORY_MB[step] == measured


def test_the_template_deploys_those_sizes(template: dict[str, Any]) -> None:
    deployed = {
        r["Properties"]["Handler"].split(".")[0]: r["Properties"]["MemorySize"]
        for r in resources(template, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler", "").endswith(".handler.lambda_handler")
    }
    assert deployed == FUNCTION_MEMORY_MB
