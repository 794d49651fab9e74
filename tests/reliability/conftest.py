"""Fixtures for the reliability suite: the workflow tests' pipeline factory (the template,
embedded Snowflake and seed fixtures come from tests/conftest.py), with handler logs
captured to a file that the tests read.

One template (the synth cache is shared by all workers) and one fakesnow server per xdist
worker; a fresh moto, API and log file per test. Retry waits are recorded and skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Reused, not copied: the workflow tests' LocalPipeline factory.
from tests.workflow.conftest import make_pipeline

__all__ = ["make_pipeline"]


@pytest.fixture
def lambda_log(tmp_path) -> Path:
    """Where handler logs (Powertools JSON lines) and EMF metrics of the test go."""
    return tmp_path / "lambda.log"


@pytest.fixture(scope="session")
def update_outcomes() -> bool:
    """RELIABILITY_UPDATE=1 (make reliability-doc) rewrites the recorded outcomes."""
    return os.environ.get("RELIABILITY_UPDATE") == "1"
