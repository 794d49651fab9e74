"""The embedded Snowflake (fakesnow server + 5.x login adapter) and the shipped EIDR sample."""

import ast
import csv
import re
import socket

import pytest

from enrichctl.data.generate_eidr_sample import OUTPUT, eidr_check_character, generate
from enrichctl.embedded_snowflake import LAUNCHER, SAMPLE_CSV, EmbeddedSnowflake
from query_ids.id_cleaning import clean_ids

EIDR_CONTENT_ID = re.compile(
    r"10\.5240/([0-9A-F]{4})-([0-9A-F]{4})-([0-9A-F]{4})-([0-9A-F]{4})-([0-9A-F]{4})-([0-9A-Z])"
)


def test_committed_sample_is_what_the_generator_writes():
    assert SAMPLE_CSV == OUTPUT
    assert SAMPLE_CSV.read_text() == generate()


def test_sample_is_realistic_and_dirty():
    with SAMPLE_CSV.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 300
    for row in rows:
        match = EIDR_CONTENT_ID.fullmatch(row["CREATIVEWORKID"])
        assert match, row
        assert match.group(6) == eidr_check_character("".join(match.groups()[:5]))
        assert re.fullmatch(r"10\.5237/[0-9A-F]{4}-[0-9A-F]{4}", row["ORG_ID"])
    ids, cleaner = clean_ids(None if r["IMDB_VALUE"] == "" else r["IMDB_VALUE"] for r in rows)
    assert len(ids) > 150
    assert cleaner.invalid_count >= 20 and cleaner.null_count >= 1
    assert cleaner.duplicate_count >= 20
    assert any("&ids=" in r["IMDB_VALUE"] for r in rows)


def test_adapter_is_thin_and_independent_of_our_packages():
    tree = ast.parse(LAUNCHER.read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"json", "socket", "sys", "uvicorn", "fakesnow", "starlette"}
    # "A few lines": if the adapter grows, the plan is to pin the connector to 4.8.x instead.
    source_lines = LAUNCHER.read_text().splitlines()[tree.body[0].end_lineno :]
    code_lines = [
        line for line in source_lines if line.strip() and not line.strip().startswith("#")
    ]
    assert len(code_lines) <= 30


@pytest.fixture(scope="module")
def snow():
    with EmbeddedSnowflake() as server:
        yield server


def test_sample_and_synthetic_seeding_round_trip(snow):
    assert snow.seed_sample() == 300
    assert snow.execute(
        "SELECT COUNT(*), COUNT(IMDB_VALUE) FROM EIDR.PUBLIC.ORGS_IMDB_FILTERED"
    ) == [(300, sum(1 for r in csv.DictReader(SAMPLE_CSV.open()) if r["IMDB_VALUE"]))]

    assert snow.seed_synthetic(1_000, table="SYNTHETIC") == 1_000
    rows = dict(
        snow.execute("SELECT CREATIVEWORKID, IMDB_VALUE FROM EIDR.PUBLIC.SYNTHETIC")
    ).values()
    values = list(rows)
    assert len(values) == 1_000
    assert values.count(None) == 1_000 // 101
    assert sum(1 for v in values if v and v.endswith("&ids=x")) == 1_000 // 103
    assert "tt00000001" in values


def test_stop_frees_the_port():
    server = EmbeddedSnowflake().start()
    port = server.port
    assert server.execute("SELECT 1") == [(1,)]
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
