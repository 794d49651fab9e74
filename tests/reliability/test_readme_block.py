"""README's Reliability section is exactly what the recorded outcomes render to."""

from __future__ import annotations

import pytest

from tests.reliability.cases import BAD_INPUTS, FAULTS
from tests.reliability.readme import README, current_block, render
from tests.reliability.support import OUTCOMES_DIR


def test_every_case_has_one_outcome_and_no_outcome_is_orphaned():
    cases = {case.id for case in (*FAULTS, *BAD_INPUTS)}
    recorded = {path.stem for path in OUTCOMES_DIR.glob("*.json")}
    assert recorded == cases, {"missing": cases - recorded, "orphaned": recorded - cases}


def test_readme_reliability_block_matches_the_recorded_outcomes(update_outcomes):
    if update_outcomes:
        pytest.skip("outcomes are being re-recorded; `make reliability-doc` renders next")
    block = current_block(README.read_text())
    assert block is not None, "README.md has no reliability block: run `make reliability-doc`"
    assert block == render(), "README.md's Reliability block is stale: run `make reliability-doc`"
