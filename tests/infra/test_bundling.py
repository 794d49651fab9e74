"""The one test that bundles the Lambda assets for real (local pip, no Docker)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.bundling import (
    LAMBDAS_DIR,
    REPO_ROOT,
    RUNTIME_PROVIDED,
    RuntimePython,
    bundle_size,
    bytecode_tag,
    compile_tree,
    pinned_packages,
    pip_command,
    runtime_python,
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


#: Run by the runtime's Python inside a bundle: every module's byte code, checked the way
#: that Python's import system would (magic number, unchecked-hash flags, source hash).
_PYC_CHECK = """
import importlib.util, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
bad, count = [], 0
for src in root.rglob("*.py"):
    count += 1
    pyc = pathlib.Path(importlib.util.cache_from_source(str(src)))
    if not pyc.is_file():
        bad.append(f"{src.relative_to(root)}: no byte code")
        continue
    head = pyc.read_bytes()[:16]
    if head[:4] != importlib.util.MAGIC_NUMBER:
        bad.append(f"{src.relative_to(root)}: magic {head[:4].hex()}")
    elif int.from_bytes(head[4:8], "little") != 0b01:  # hash-based, source not checked
        bad.append(f"{src.relative_to(root)}: flags {head[4:8].hex()}")
    elif head[8:16] != importlib.util.source_hash(src.read_bytes()):
        bad.append(f"{src.relative_to(root)}: stale")
print(json.dumps({"count": count, "bad": bad[:10], "bad_count": len(bad)}))
"""


def needs_runtime_python() -> RuntimePython:
    """The runtime's Python; these tests check what it compiled. Without one the bundles
    carry no byte code (bundling warns; test_without_python_312_... covers that path), so
    they are skipped with the fix rather than failing a machine that has only 3.11."""
    python = runtime_python()
    if python is None:
        pytest.skip(
            "no Python 3.12 here: install it (python3.12 on PATH or pyenv) to check byte code"
        )
    return python


def bytecode_problems(bundle: Path) -> dict:
    """What the runtime's Python finds wrong with the byte code below `bundle`."""
    python = needs_runtime_python()
    done = subprocess.run(
        [python.executable, "-c", _PYC_CHECK, str(bundle)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


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
        # Lambda's /var/task is read-only: byte code missing there is compiled again at
        # every cold start.
        if runtime_python() is not None:  # without 3.12 bundling warns and ships none
            pyc = bytecode_problems(path)
            assert pyc["count"] > 100 and pyc["bad_count"] == 0, (step, pyc)
        if sys.version_info[:2] != (3, 12):  # no host byte code (3.12's is checked above)
            assert not list(path.rglob(f"*.{sys.implementation.cache_tag}.pyc")), step
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


def test_byte_code_names_lambda_paths_and_does_not_depend_on_the_build_dir(
    tmp_path: Path,
) -> None:
    """The asset hash is the bundle's bytes: byte code must not carry the build directory
    (tracebacks then name /var/task, as on Lambda) nor vary between builds."""
    needs_runtime_python()
    source = "KINDS = {'a', 'b', 'c'}\n\ndef fail():\n    raise ValueError(sorted(KINDS))\n"
    built = []
    for name in ("one", "two"):
        package = tmp_path / name / "pkg"
        package.mkdir(parents=True)
        (package / "mod.py").write_text(source)
        assert compile_tree(package, "/var/task/pkg")
        built.append((package / "__pycache__" / "mod.cpython-312.pyc").read_bytes())
    assert built[0] == built[1]
    assert b"/var/task/pkg/mod.py" in built[0] and str(tmp_path).encode() not in built[0]


def test_compile_tree_refuses_code_python_312_cannot_compile(tmp_path: Path) -> None:
    needs_runtime_python()
    (tmp_path / "broken.py").write_text("print 'python 2'\n")
    with pytest.raises(RuntimeError, match="could not compile"):
        compile_tree(tmp_path, "/var/task/x")
    assert compile_tree(tmp_path, "/var/task/x", strict=False)  # third-party: skipped


def test_without_python_312_bundling_warns_once_and_caches_apart(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only other Pythons (this test's own unless it is 3.12, and a missing one): no byte
    code, one warning with the fix, and a dependency cache key of its own ("no-pyc", where
    a runtime Python gives "pyc-<its magic number>"). Runs on machines without 3.12 too."""
    import stacks.bundling as bundling

    others = [sys.executable] if sys.version_info[:2] != (3, 12) else []
    monkeypatch.setattr(
        bundling, "_python_candidates", lambda: [*others, "/nonexistent/python3.12"]
    )
    bundling.runtime_python.cache_clear()
    try:
        assert bundling.runtime_python() is None
        assert bytecode_tag() == "no-pyc"
        assert bundling.compile_tree(Path("."), "/var/task") is False
        warning = capsys.readouterr().err
        assert warning.count("WARNING") == 1 and "install Python 3.12" in warning
    finally:
        bundling.runtime_python.cache_clear()
