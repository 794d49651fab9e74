"""Build and synthesize the app in-process (tests, the local runner, `app.py`).

`synth_template()` loads `cdk.json`'s context like the CDK CLI does, so `python -c`, pytest
and `cdk synth` all see the same configuration.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations

from stacks.config.context import load_config, with_local_placeholders
from stacks.pipeline_stack import PipelineStack

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_NAME = "ImdbEnrichment"
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict[str, Any]:
    """The `context` object of `cdk.json`."""
    return json.loads((REPO_ROOT / "cdk.json").read_text()).get("context", {})


def build_app(
    context: dict[str, Any] | None = None,
    *,
    outdir: str | None = None,
    nag: bool = True,
    cfn_validation: bool = True,
) -> tuple[App, PipelineStack]:
    """The CDK app and its one stack; raises `ConfigError` on a bad configuration.

    `context` is the full CDK context (the CLI passes it through the environment; tests
    pass `cdk.json`'s plus overrides). With `nag`, cdk-nag AwsSolutions runs at synth.
    `cfn_validation=False` skips CDK's built-in CloudFormation rule check, which costs
    ~8 s per process (cfn-lint covers the same ground in the test suite).
    """
    kwargs: dict[str, Any] = {"builtin_cloud_formation_validation": cfn_validation}
    if context is not None:
        kwargs["context"] = context
    if outdir is not None:
        kwargs["outdir"] = outdir
    app = App(**kwargs)
    config = load_config(_all_context(app))
    stack = PipelineStack(
        app,
        STACK_NAME,
        config=config,
        description="Nightly IMDB-ID enrichment: Scheduler -> Step Functions -> Lambda",
    )
    if nag:
        from cdk_nag import AwsSolutionsChecks  # imported lazily: it loads a second jsii lib

        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def _all_context(app: App) -> dict[str, Any]:
    return dict(app.node.get_all_context() or {})


def synth_app(
    context_overrides: dict[str, Any] | None = None,
    *,
    bundle: bool = False,
    nag: bool = False,
    outdir: str | None = None,
    cfn_validation: bool = False,
) -> tuple[App, PipelineStack, Any]:
    """Synthesize with `cdk.json` context (+ overrides); returns (app, stack, assembly).

    In-process synth is for tests and the local runner, never for a deploy: the two values
    only Snowflake can give get local stand-ins when unset (`with_local_placeholders`).
    """
    context = cdk_json_context()
    if not bundle:
        context.update(SKIP_BUNDLING)
    context.update(context_overrides or {})
    context = with_local_placeholders(context)
    app, stack = build_app(
        context,
        outdir=outdir or tempfile.mkdtemp(prefix="cdk-synth-"),
        nag=nag,
        cfn_validation=cfn_validation,
    )
    return app, stack, app.synth()


@lru_cache(maxsize=16)
def _cached_template(key: str, bundle: bool) -> str:
    _, stack, assembly = synth_app(json.loads(key), bundle=bundle)
    return json.dumps(assembly.get_stack_by_name(stack.stack_name).template)


def synth_template(
    context_overrides: dict[str, Any] | None = None, bundle: bool = False
) -> dict[str, Any]:
    """The synthesized CloudFormation template of the stack (cached per process)."""
    key = json.dumps(context_overrides or {}, sort_keys=True)
    return json.loads(_cached_template(key, bundle))


def state_machine_definition(template: dict[str, Any] | None = None) -> Any:
    """The state machine's `DefinitionString` exactly as synthesized (may hold Fn::Join)."""
    template = template or synth_template()
    machines = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    return machines[0]["Properties"]["DefinitionString"]


def placeholder(token: dict[str, Any]) -> str:
    """Default token resolver: `{"Ref": "X"}` -> `X`, `{"Fn::GetAtt": ["X", "Arn"]}` -> `X.Arn`."""
    if "Ref" in token:
        return str(token["Ref"])
    if "Fn::GetAtt" in token:
        return ".".join(token["Fn::GetAtt"])
    raise ValueError(f"unexpected token in the definition: {token!r}")


def resolve_definition(
    definition: Any, resolve: Callable[[dict[str, Any]], str] = placeholder
) -> dict[str, Any]:
    """Parse a synthesized definition, replacing each CloudFormation token with `resolve(token)`.

    The local runner passes a resolver that maps `Fn::GetAtt [<fn>, Arn]` to its local
    function ARNs and `Ref <bucket>` to its bucket; the definition is otherwise untouched.
    """
    if isinstance(definition, str):
        return json.loads(definition)
    separator, parts = definition["Fn::Join"]
    text = separator.join(p if isinstance(p, str) else resolve(p) for p in parts)
    return json.loads(text)
