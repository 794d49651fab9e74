"""`enrichctl graph`: the Mermaid diagram comes from the synthesized definition, and the
README's architecture diagram is exactly its output (refresh: `enrichctl graph --update-readme`
or `make docs`; tests/test_docs.py checks the README's block with every other generated block).
"""

from __future__ import annotations

import re

from enrichctl.cli import main
from enrichctl.local_run.template import REPO_ROOT
from enrichctl.ops.graph import (
    README_END,
    README_START,
    mermaid,
    readme_diagram,
    synthesized_definition,
    with_diagram,
)


def test_every_state_and_transition_of_the_definition_is_drawn(pipeline_template):
    definition = synthesized_definition(pipeline_template)
    diagram = mermaid(definition)

    def node(name: str, prefix: str = "") -> str:
        return prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)

    for name, state in definition["States"].items():
        assert re.search(rf"^\s+{node(name)}[\[\{{(]", diagram, re.M) or (
            f"subgraph {node(name)}[" in diagram
        )
        if "Next" in state:
            assert f"{node(name)} --> {node(state['Next'])}" in diagram
        if "Default" in state:
            assert f'{node(name)} -->|"otherwise"| {node(state["Default"])}' in diagram
    enrich = definition["States"]["EnrichBatches"]
    children = enrich["ItemProcessor"]["States"]
    assert set(children) == {"InvokeEnrich", "RecordFailedBatch"}
    inside = diagram.split("subgraph EnrichBatches[")[1].split("\n  end\n")[0]
    for child in children:
        assert f"EnrichBatches_{child}[" in inside  # drawn inside the map's subgraph
    assert (
        'EnrichBatches_InvokeEnrich -.->|"catch States.ALL"| EnrichBatches_RecordFailedBatch'
        in inside
    )
    assert "EXPRESS children" in inside  # the synthesized definition, not the local rewrite
    assert '-->|"$.dry_run == true or $.batch_count == 0"| DryRunOrNoBatches' in diagram


def test_graph_prints_the_diagram(pipeline_template, capsys):
    assert main(["graph"]) == 0
    assert capsys.readouterr().out == mermaid(synthesized_definition(pipeline_template))


def test_update_readme_adds_the_block_at_the_end_of_how_it_works_then_check_passes(
    pipeline_template, tmp_path, capsys
):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n## How it works\n\nWords.\n\n## Deploy\n\nMore.\n")

    assert main(["graph", "--check", "--readme", str(readme)]) == 1
    assert "differs from the synthesized state machine" in capsys.readouterr().err
    assert main(["graph", "--update-readme", "--readme", str(readme)]) == 0

    text = readme.read_text()
    how, deploy = text.index("## How it works"), text.index("## Deploy")
    assert how < text.index(README_START) < text.index(README_END) < deploy
    assert main(["graph", "--check", "--readme", str(readme)]) == 0
    # Refreshing an existing block replaces it in place.
    stale = text.replace("AnyBatchFailed", "Renamed")
    assert with_diagram(stale, readme_diagram(text)) == text


def test_default_stack_name_is_the_cdk_apps():
    from enrichctl.ops.aws import DEFAULT_STACK

    synth = (REPO_ROOT / "stacks" / "synth.py").read_text()
    assert re.search(r'^STACK_NAME = "([^"]+)"', synth, re.M).group(1) == DEFAULT_STACK
