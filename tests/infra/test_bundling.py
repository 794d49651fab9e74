"""The one test that bundles the Lambda assets for real (local pip, no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.bundling import RUNTIME_PROVIDED, bundle_size, pip_command
from stacks.synth import synth_app

STEPS = {"QueryIds": "query_ids", "BuildUrls": "build_url", "InvokeEnrich": "invoke_enrich"}
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


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
def test_bundles_carry_their_code_and_only_query_ids_carries_the_connector(
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
        assert not any((path / p).exists() for p in RUNTIME_PROVIDED), step
        assert not list(path.rglob("__pycache__")), step
        assert size < LAMBDA_UNZIPPED_LIMIT, step
        has_connector = (path / "snowflake" / "connector").is_dir()
        assert has_connector == (step == "query_ids"), step
    # Only the step's own package is in its bundle, beside the shared one.
    assert not (bundles["build_url"] / "query_ids").exists()
    assert not (bundles["query_ids"] / "invoke_enrich").exists()
    # The connector's native parts are Linux aarch64 builds for CPython 3.12.
    natives = [p.name for p in (bundles["query_ids"] / "snowflake").rglob("*.so")]
    assert natives and all("aarch64" in n or "abi3" in n for n in natives), natives


def test_pip_targets_lambda_arm64_python_312_binary_wheels_only(tmp_path: Path) -> None:
    cmd = pip_command(tmp_path / "out", tmp_path / "requirements.txt", "arm64")
    joined = " ".join(cmd)
    assert "--only-binary=:all:" in cmd
    assert "--implementation cp" in joined and "--python-version 3.12" in joined
    assert "--platform manylinux2014_aarch64" in joined
    assert "--platform manylinux_2_28_aarch64" in joined
    assert f"--target {tmp_path / 'out'}" in joined
    assert "--cache-dir" in cmd and ".build" in cmd[cmd.index("--cache-dir") + 1]
