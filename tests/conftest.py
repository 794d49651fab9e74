"""Fixtures shared by the suites that run the pipeline (workflow, ops, reliability).

One synthesized template (from the shared synth cache) and one embedded Snowflake per xdist
worker; each suite's own conftest builds its pipeline factory on top of these.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from enrichctl.embedded_snowflake import LOOPBACK_ONLY_ENV, EmbeddedSnowflake
from enrichctl.local_run.template import REPO_ROOT, load_template
from stacks.config.context import load_config, with_local_placeholders  # plain Python: no jsii
from tests.ports import refused_port

# Tests reach 127.0.0.1 only: keep the Snowflake connector from probing cloud metadata.
os.environ.update(LOOPBACK_ONLY_ENV)


@pytest.fixture(scope="session")
def pipeline_template() -> dict[str, Any]:
    """The stack's synthesized template (cdk.json context), synthesized once per worker."""
    template, _source = load_template()
    return template


@pytest.fixture(scope="session")
def pipeline_config():
    """The validated `pipeline` configuration the template was synthesized from."""
    # Read cdk.json directly: importing stacks.synth here would start jsii before
    # load_template() silences its Node version banner.
    context = json.loads((REPO_ROOT / "cdk.json").read_text()).get("context", {})
    return load_config(with_local_placeholders(context))


@pytest.fixture
def lambda_log() -> Path | None:
    """Where `make_pipeline` writes handler output: nowhere of its own here (pytest
    captures it); the reliability suite overrides this with a file its tests read."""
    return None


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections, held for the whole test (tests/ports.py)."""
    with refused_port() as port:
        yield port


@pytest.fixture(scope="session")
def snowflake() -> Iterator[EmbeddedSnowflake]:
    """The embedded Snowflake (fakesnow's server on 127.0.0.1), one per worker."""
    with EmbeddedSnowflake() as snow:
        yield snow


@pytest.fixture
def seed(snowflake) -> Callable[[list[Any]], None]:
    """`seed(values)`: replace the source table with one row per IMDB value."""

    def seed_values(values: list[Any]) -> None:
        rows = [(f"ORG{n % 7}", f"10.5240/{n:04X}-{n:04X}", v) for n, v in enumerate(values)]
        snowflake.seed_rows(rows)

    return seed_values
