"""`enrichctl`'s modules import each other without a circle.

Function-level imports count too: they hide a circle from a plain `import` (it only breaks
when the two functions meet in one run) but not from a newcomer reading the code. Shared
pieces go into a module both sides import (e.g. `enrichctl.run_view`, `enrichctl.exit_codes`).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "enrichctl"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its body."""
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from enrichctl.ops import commands` imports the module enrichctl.ops.commands
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                    else node.module
                    for a in node.names
                ]  # fmt: skip
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """The modules of one import circle, sorted ([] when there is none): stdlib graphlib
    names one circle at a time, enough to fix it and run again."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return sorted(set(error.args[1]))
    return []


def test_the_cycle_finder_finds_a_circle_through_a_function_level_import(tmp_path):
    package = tmp_path / "enrichctl"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("def main():\n    from enrichctl.ops import commands\n")
    (package / "ops").mkdir()
    (package / "ops" / "__init__.py").write_text("")
    (package / "ops" / "commands.py").write_text("def view():\n    from enrichctl.cli import X\n")

    assert cycle(import_graph(package)) == ["enrichctl.cli", "enrichctl.ops.commands"]


def test_enrichctl_has_no_import_circle():
    graph = import_graph()
    assert "enrichctl.ops.commands" in graph["enrichctl.cli"]  # the graph sees lazy imports
    assert cycle(graph) == []
