"""The one test that bundles the Lambda assets for real (local pip, no Docker)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from stacks.bundling import (
    LAMBDAS_DIR,
    REPO_ROOT,
    RUNTIME_PROVIDED,
    bundle_size,
    pinned_packages,
    pip_command,
)
from stacks.synth import synth_app

STEPS = {
    "QueryIds": "query_ids",
    "BuildUrls": "build_url",
    "InvokeEnrich": "invoke_enrich",
    "CountFailedBatches": "count_failed",
    "LoadResults": "load_results",
}
#: The steps that talk to Snowflake (their bundles carry the connector).
CONNECTOR_STEPS = {"query_ids", "load_results"}
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
#: The run claim (lambdas/query_ids/claim.py) writes with S3 conditional put.
SDK_PACKAGES = {"boto3", "botocore", "s3transfer", "jmespath"}


def put_object_has_if_none_match(site: Path) -> bool:
    """Whether the botocore below `site` knows PutObject's IfNoneMatch (its S3 model)."""
    models = sorted((site / "botocore" / "data" / "s3").glob("*/service-2.json*"))
    assert models, f"no botocore S3 service model below {site}"
    raw = models[-1].read_bytes()
    model = json.loads(gzip.decompress(raw) if models[-1].suffix == ".gz" else raw)
    return "IfNoneMatch" in model["shapes"]["PutObjectRequest"]["members"]


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            pins[name.lower()] = version
    return pins


def asset_dirs(outdir: Path, template: dict) -> dict[str, Path]:
    """step -> its bundled asset directory, from the functions' asset metadata."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        name = next(n for n in STEPS if logical_id.startswith(f"Functions{n}"))
        asset_hash = resource["Properties"]["Code"]["S3Key"].removesuffix(".zip")
        found[STEPS[name]] = outdir / f"asset.{asset_hash}"
    return found


@pytest.mark.bundling
@pytest.mark.slow
def test_bundles_carry_their_code_and_only_snowflake_steps_carry_the_connector(
    tmp_path: Path,
) -> None:
    _, stack, assembly = synth_app(bundle=True, outdir=str(tmp_path))
    template = assembly.get_stack_by_name(stack.stack_name).template
    bundles = asset_dirs(tmp_path, template)
    assert set(bundles) == set(STEPS.values())
    for step, path in bundles.items():
        size = bundle_size(path)
        print(f"{step}: {size / 1024 / 1024:.1f} MB unzipped ({path.name})")
        assert (path / step / "handler.py").is_file(), step
        assert (path / "enrich_shared" / "errors.py").is_file(), step
        assert (path / "aws_lambda_powertools").is_dir(), step
        bundled_sdk = {p for p in RUNTIME_PROVIDED if (path / p).exists()}
        # Runtime-provided packages only where the step pins them (query_ids: its claim).
        assert bundled_sdk == RUNTIME_PROVIDED & pinned_packages(
            LAMBDAS_DIR / step / "requirements.txt"
        ), step
        assert not list(path.rglob("__pycache__")), step
        assert size < LAMBDA_UNZIPPED_LIMIT, step
        has_connector = (path / "snowflake" / "connector").is_dir()
        assert has_connector == (step in CONNECTOR_STEPS), step
    assert put_object_has_if_none_match(bundles["query_ids"])
    # Only the step's own package is in its bundle, beside the shared one.
    assert not (bundles["build_url"] / "query_ids").exists()
    assert not (bundles["query_ids"] / "invoke_enrich").exists()
    # The connector's native parts are Linux aarch64 builds for CPython 3.12.
    for step in CONNECTOR_STEPS:
        natives = [p.name for p in (bundles[step] / "snowflake").rglob("*.so")]
        assert natives and all("aarch64" in n or "abi3" in n for n in natives), (step, natives)


def test_pip_targets_lambda_arm64_python_312_binary_wheels_only(tmp_path: Path) -> None:
    cmd = pip_command(tmp_path / "out", tmp_path / "requirements.txt", "arm64")
    joined = " ".join(cmd)
    assert "--only-binary=:all:" in cmd
    assert "--implementation cp" in joined and "--python-version 3.12" in joined
    assert "--platform manylinux2014_aarch64" in joined
    assert "--platform manylinux_2_28_aarch64" in joined
    assert f"--target {tmp_path / 'out'}" in joined
    assert "--cache-dir" in cmd and ".build" in cmd[cmd.index("--cache-dir") + 1]


def test_query_ids_pins_an_sdk_that_knows_s3_conditional_puts() -> None:
    """QueryIds bundles boto3/botocore at the pins of requirements/dev.txt, and that botocore
    (the one .venv runs the tests with) has PutObject's IfNoneMatch."""
    step = requirement_pins(LAMBDAS_DIR / "query_ids" / "requirements.txt")
    dev = requirement_pins(REPO_ROOT / "requirements" / "dev.txt")
    assert set(step) >= SDK_PACKAGES, "query_ids must pin its own boto3/botocore (claim.py)"
    assert {p: step[p] for p in SDK_PACKAGES} == {p: dev[p] for p in SDK_PACKAGES}
    import botocore

    assert botocore.__version__ == step["botocore"]
    assert put_object_has_if_none_match(Path(botocore.__file__).parent.parent)


def test_only_pinned_runtime_packages_are_bundled(tmp_path: Path) -> None:
    from stacks.bundling import _top_level_ignored

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# x\nboto3==1.44.5\nBotoCore == 1.44.8\nurllib3>=2\n")
    assert pinned_packages(requirements) == {"boto3", "botocore"}
    names = ["boto3", "boto3-1.44.5.dist-info", "botocore", "s3transfer", "jmespath", "bin", "x"]
    left_out = RUNTIME_PROVIDED - pinned_packages(requirements)
    assert _top_level_ignored(names, left_out) == {"s3transfer", "jmespath", "bin"}
