"""Every reliability case has exactly one recorded outcome, which docs/reliability.md renders
(tests/test_docs.py checks that page's block with every other generated block)."""

from __future__ import annotations

from tests.reliability.cases import BAD_INPUTS, FAULTS
from tests.reliability.support import OUTCOMES_DIR


def test_every_case_has_one_outcome_and_no_outcome_is_orphaned():
    cases = {case.id for case in (*FAULTS, *BAD_INPUTS)}
    recorded = {path.stem for path in OUTCOMES_DIR.glob("*.json")}
    assert recorded == cases, {"missing": cases - recorded, "orphaned": recorded - cases}
