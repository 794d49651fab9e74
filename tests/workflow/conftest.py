"""Fixtures for workflow tests: the synthesized template, an embedded Snowflake, the local
enrichment API and the pipeline under moto (real handlers in-process).

One template and one fakesnow server per xdist worker; a fresh moto and API per test.
Retry waits are recorded and skipped, so backoff costs no wall time. The reliability and
ops suites reuse this `make_pipeline` (imported by their conftest.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enrichctl.local_api import LocalEnrichApi
from enrichctl.local_run.logs import handler_output_to
from enrichctl.local_run.pipeline import LocalPipeline


@pytest.fixture
def make_pipeline(
    pipeline_template, snowflake, tmp_path, lambda_log
) -> Iterator[Callable[..., tuple[LocalPipeline, LocalEnrichApi]]]:
    """Factory: `make_pipeline(api_kwargs..., snowflake_secret=, env=, base_url=, before_enter=)`.

    Returns the entered pipeline and the started local API; both close after the test.
    `before_enter(pipeline)` may change the pipeline before moto creates it (e.g. a shorter
    execution timeout). When `lambda_log` names a file (the reliability suite's does),
    handler output goes there, as in `enrichctl local`; otherwise pytest captures it.
    """
    with contextlib.ExitStack() as stack:
        # Line-buffered: tests read it mid-run.
        log_file = stack.enter_context(lambda_log.open("w", buffering=1)) if lambda_log else None

        def make(
            *,
            snowflake_secret: dict[str, Any] | None = None,
            env: dict[str, str] | None = None,
            base_url: str | None = None,
            before_enter: Callable[[LocalPipeline], Any] | None = None,
            **api_kwargs: Any,
        ) -> tuple[LocalPipeline, LocalEnrichApi]:
            api = stack.enter_context(
                LocalEnrichApi(output_dir=tmp_path / "enriched", **api_kwargs)
            )
            pipeline = LocalPipeline(
                pipeline_template,
                snowflake_secret=snowflake_secret or snowflake.secret(),
                api_base_url=base_url or api.base_url,
                env_overrides=env,
                api_request_count=lambda: api.request_count,
                output_dir=tmp_path,
                # LoadResults' tables and file:// stage, fresh for this pipeline.
                embedded_snowflake=snowflake.secret(),
            )
            if before_enter is not None:
                before_enter(pipeline)
            if log_file is not None:
                stack.enter_context(handler_output_to(log_file))
            stack.enter_context(pipeline)
            return pipeline, api

        yield make
