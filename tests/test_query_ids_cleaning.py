"""Unit tests of IMDB ID cleaning (no AWS, no Snowflake)."""

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from query_ids.id_cleaning import (
    IMDB_ID_PATTERN,
    SAMPLE_SIZE,
    clean_id,
    clean_ids,
    escape_for_log,
)
from query_ids.ids_file import write_json_lines
from query_ids.snowflake_source import column_index, limited_query


def test_valid_ids_are_trimmed_and_kept():
    assert clean_id("tt0111161") == "tt0111161"
    assert clean_id("  tt0111161\t") == "tt0111161"
    assert clean_id("tt1234567890") == "tt1234567890"  # 10 digits


def test_everything_else_is_rejected():
    for value in [
        None,
        "",
        "   ",
        "TT0111161",  # strict: the contract says `tt`, upper case is reported, not guessed
        "nm0000151",
        "tt123456",  # 6 digits
        "tt12345678901",  # 11 digits
        "tt1234567&ids=x",
        "tt0111161 OR 1=1",
        "tt0111161\nforged",
        "tt\u0661\u0662\u0663\u0664\u0665\u0666\u0667",  # Arabic-Indic digits match \d
        111161,
        b"tt0111161",
    ]:
        assert clean_id(value) is None, value


def test_dedupe_keeps_first_occurrence_and_counts_everything():
    values = ["tt0000002", " tt0000001", None, "tt0000002", "tt0000001 ", "bad", "", "tt0000003"]
    ids, cleaner = clean_ids(values)
    assert ids == ["tt0000002", "tt0000001", "tt0000003"]
    assert (cleaner.ids_count, cleaner.duplicate_count, cleaner.invalid_count) == (3, 2, 3)
    assert cleaner.null_count == 1
    assert cleaner.rows == len(values)


def test_invalid_sample_is_short_escaped_and_bounded():
    hostile = "tt1\x1b[31m\nINFO forged line " + "x" * 500
    _, cleaner = clean_ids([hostile] + [f"bad{i}" for i in range(20)])
    assert cleaner.invalid_count == 21
    assert len(cleaner.invalid_sample) == SAMPLE_SIZE
    first = cleaner.invalid_sample[0]
    assert "\n" not in first and "\x1b" not in first
    assert first.isascii() and len(first) < 60
    assert escape_for_log(None) == "None"


@given(st.lists(st.one_of(st.none(), st.text(max_size=14), st.from_regex(r"\s*tt[0-9]{7,10}\s*"))))
def test_cleaning_invariants(values):
    ids, cleaner = clean_ids(values)
    assert all(IMDB_ID_PATTERN.fullmatch(i) for i in ids)
    assert len(ids) == len(set(ids))
    # First-occurrence order of the trimmed valid values.
    expected = list(dict.fromkeys(v.strip() for v in values if clean_id(v)))
    assert ids == expected
    assert cleaner.ids_count + cleaner.invalid_count + cleaner.duplicate_count == len(values)


@given(st.lists(st.text(max_size=20), max_size=50))
def test_json_lines_hold_one_value_per_line(values):
    out = io.BytesIO()
    assert write_json_lines(iter(values), out) == len(values)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == values


def test_limit_is_a_bound_parameter_never_part_of_the_sql():
    sql, params = limited_query("SELECT A FROM T;  ", 25)
    assert sql == "SELECT * FROM (SELECT A FROM T) LIMIT ?"
    assert params == (25,)
    assert limited_query("SELECT A FROM T", None) == ("SELECT A FROM T", ())


def test_column_is_found_by_name():
    assert column_index(["ORG_ID", "IMDB_VALUE"], "IMDB_VALUE") == 1
    assert column_index(["org_id", "imdb_value"], "IMDB_VALUE") == 1
