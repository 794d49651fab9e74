"""Docs that cannot drift: every generated block of README.md and docs/*.md is exactly what
its committed source renders to (`make docs`, tools/docs.py), and every page is linked."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tools import docs
from tools.docs import BLOCKS, REPO_ROOT, Block, Sources

README_MAX_BYTES = 20_000


@pytest.fixture(scope="module")
def sources(pipeline_template) -> Sources:
    return Sources(template=pipeline_template)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: f"{block.page}:{block.name}")
def test_every_generated_block_is_what_its_source_renders(block: Block, sources: Sources):
    if block.name == "reliability" and os.environ.get("RELIABILITY_UPDATE") == "1":
        pytest.skip("outcomes are being re-recorded; `make reliability-doc` renders next")
    _, _, have, want = docs.compare(sources, block)
    assert have is not None, f"{block.page} lacks {block.start} ... {block.end}: add the markers"
    if want is None:
        pytest.skip(f"{block.name}: its source is not there yet; the block is left as written")
    assert have == want, f"{block.page}: block {block.name!r} is stale: run `make docs`"


def _copy_docs(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    for page in {block.page for block in BLOCKS}:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / page, tmp_path / page)
    shutil.copyfile(REPO_ROOT / "cdk.json", tmp_path / "cdk.json")  # the configuration blocks
    if docs.BENCH_RESULTS.exists():
        (tmp_path / "docs" / "results").mkdir()
        shutil.copyfile(docs.BENCH_RESULTS, tmp_path / "docs" / "results" / "bench.json")
    return tmp_path


def test_a_changed_source_is_caught_then_rendered(tmp_path, sources):
    """A hand edit of a rendered figure is caught; `make docs` puts the source's back."""
    root = _copy_docs(tmp_path)
    local = Sources(root=root, template=sources.template)
    blocks = tuple(b for b in BLOCKS if b.page == "docs/costs.md")
    assert docs.stale(local, blocks) == []
    page = root / "docs" / "costs.md"
    page.write_text(page.read_text().replace("| **$", "| **$9", 1))  # hand-edit a total
    stale = docs.stale(local, blocks)
    assert stale == ["docs/costs.md: block 'cost-table' differs from its source"]
    assert docs.write(local, blocks) == ["docs/costs.md (cost-table)"]
    assert docs.stale(local, blocks) == []
    assert docs.write(local, blocks) == []  # deterministic: a second render changes nothing


def _render_new_source(tmp_path, sources, block_name: str, source: str, data) -> str:
    """In a copy of the pages: write `data` as the block's JSON source at `source`, check the
    block is caught as stale, render it; return the page it is on."""
    root = _copy_docs(tmp_path)
    local = Sources(root=root, template=sources.template)
    blocks = tuple(b for b in BLOCKS if b.name == block_name)
    (root / source).parent.mkdir(parents=True, exist_ok=True)
    (root / source).write_text(json.dumps(data))
    assert len(docs.stale(local, blocks)) == 1
    docs.write(local, blocks)
    return (root / blocks[0].page).read_text()


def test_a_new_bench_run_flows_into_the_performance_page(tmp_path, sources):
    bench = sources.bench()
    assert bench is not None, "docs/results/bench.json is missing: `make docs BENCH=...`"
    bench["latency_ms"] = 12345
    page = _render_new_source(tmp_path, sources, "bench-table", "docs/results/bench.json", bench)
    assert "API latency 12345 ms" in page


def test_a_new_memory_measurement_flows_into_the_performance_page(tmp_path, sources):
    """A re-measured bench-results/memory.json is caught as stale, then rendered."""
    data = json.loads(docs.MEMORY_RESULTS.read_text())
    data["steps"]["invoke_enrich"]["needed_mb"] = 77.7
    page = _render_new_source(tmp_path, sources, "memory", docs.MEMORY_SOURCE, data)
    assert "| 77.7 |" in page


def test_a_new_import_measurement_flows_into_the_performance_page(tmp_path, sources):
    """Import times typed into docs/results/import-times.json, never into the page."""
    data = json.loads(docs.IMPORT_RESULTS.read_text())
    data["handlers"][0]["after_s"] = 0.123
    source = "docs/results/import-times.json"
    page = _render_new_source(tmp_path, sources, "import-times", source, data)
    assert f"| `{data['handlers'][0]['handler']}` |" in page
    assert "| 0.12 s, " in page


def test_the_readme_is_short_and_links_every_page():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.encode()) < README_MAX_BYTES, "README.md grew past 20 KB: move reference out"
    pages = sorted(p.name for p in (REPO_ROOT / "docs").glob("*.md"))
    unlinked = [name for name in pages if f"(docs/{name}" not in readme]
    assert not unlinked, f"pages the README does not link: {unlinked}"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_of_the_docs_resolves():
    """Every link between README.md and docs/*.md reaches its file, and its heading if named."""
    broken = []
    for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if "://" in target:
                continue
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(REPO_ROOT)} -> {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{page.relative_to(REPO_ROOT)} -> {target}#{anchor}")
    assert not broken, broken
