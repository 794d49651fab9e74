"""Fixtures for workflow tests: the synthesized template, an embedded Snowflake, the local
enrichment API and the pipeline under moto (real handlers in-process).

One template and one fakesnow server per xdist worker; a fresh moto and API per test.
Retry waits are recorded and skipped, so backoff costs no wall time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enrichctl.local_api import LocalEnrichApi
from enrichctl.local_run.runner import LocalPipeline


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
                # LoadResults' tables and file:// stage, fresh for this pipeline.
                embedded_snowflake=snowflake.secret(),
            )
            stack.enter_context(pipeline)
            return pipeline, api

        yield make
