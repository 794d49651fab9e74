"""enrich_shared is bundled into every Lambda, but only QueryIds and LoadResults bundle the
Snowflake connector: no other Lambda code may import the module that needs it."""

from __future__ import annotations

import ast
from pathlib import Path

LAMBDAS = Path(__file__).resolve().parent.parent / "lambdas"
WITH_CONNECTOR = {"query_ids", "load_results"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_connector_bundles_import_snowflake_code():
    offenders = []
    for path in LAMBDAS.rglob("*.py"):
        package = path.relative_to(LAMBDAS).parts[0]
        if package in WITH_CONNECTOR or path.name == "snowflake_conn.py":
            continue
        bad = {
            m
            for m in imported_modules(path)
            if m.startswith("snowflake") or m == "enrich_shared.snowflake_conn"
        }
        if bad:
            offenders.append(f"{path.relative_to(LAMBDAS)}: {sorted(bad)}")
    assert not offenders, offenders


def test_connector_bundles_pin_the_connector():
    for step in WITH_CONNECTOR:
        requirements = (LAMBDAS / step / "requirements.txt").read_text()
        assert "snowflake-connector-python==" in requirements, step
