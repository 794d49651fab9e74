"""Fixtures for workflow tests: the synthesized template, an embedded Snowflake, the local
enrichment API and the pipeline under moto (real handlers in-process).

One template and one fakesnow server per xdist worker; a fresh moto and API per test.
Retry waits are recorded and skipped, so backoff costs no wall time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enrichctl.embedded_snowflake import EmbeddedSnowflake
from enrichctl.local_api import LocalEnrichApi
from enrichctl.local_run.runner import LocalPipeline
from enrichctl.local_run.template import REPO_ROOT, load_template
from stacks.config import load_config  # plain Python: does not start jsii


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
    return load_config(json.loads((REPO_ROOT / "cdk.json").read_text()).get("context", {}))


@pytest.fixture(scope="session")
def snowflake() -> Iterator[EmbeddedSnowflake]:
    with EmbeddedSnowflake() as snow:
        yield snow


@pytest.fixture
def make_pipeline(
    pipeline_template, snowflake, tmp_path
) -> Iterator[Callable[..., tuple[LocalPipeline, LocalEnrichApi]]]:
    """Factory: `make_pipeline(api_kwargs..., snowflake_secret=..., env=...)`.

    Returns the entered pipeline and the started local API; both close after the test.
    """
    with contextlib.ExitStack() as stack:

        def make(
            *,
            snowflake_secret: dict[str, Any] | None = None,
            env: dict[str, str] | None = None,
            **api_kwargs: Any,
        ) -> tuple[LocalPipeline, LocalEnrichApi]:
            api = stack.enter_context(
                LocalEnrichApi(output_dir=tmp_path / "enriched", **api_kwargs)
            )
            pipeline = LocalPipeline(
                pipeline_template,
                snowflake_secret=snowflake_secret or snowflake.secret(),
                api_base_url=api.base_url,
                env_overrides=env,
                api_request_count=lambda: api.request_count,
                output_dir=tmp_path,
            )
            stack.enter_context(pipeline)
            return pipeline, api

        yield make


@pytest.fixture
def seed(snowflake) -> Callable[[list[str | None]], None]:
    """`seed(values)`: replace the source table with one row per IMDB value."""

    def seed_values(values: list[str | None]) -> None:
        rows = [(f"ORG{n % 7}", f"10.5240/{n:04X}-{n:04X}", v) for n, v in enumerate(values)]
        snowflake.seed_rows(rows)

    return seed_values
