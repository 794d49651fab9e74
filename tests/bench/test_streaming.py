"""BuildUrls' streamed ID reader: same answers as json.loads, at any chunk boundary."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from build_url.batches import iter_json_strings
from build_url.urls import build_urls, iter_batches

ERROR = ValueError("not an ID list")


def chunks(data: bytes, size: int):
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=12), max_size=30),
    st.integers(min_value=1, max_value=17),
    st.sampled_from([None, 1]),
)
def test_same_as_json_loads_at_any_chunk_size(values, size, indent):
    data = json.dumps(values, indent=indent, ensure_ascii=False).encode()
    assert list(iter_json_strings(chunks(data, size), ERROR)) == values


@pytest.mark.parametrize(
    "text",
    ['{"ids": ["tt1"]}', '["tt1", 2]', '["tt1"', '["tt1"] x', '["tt1",]', "", '"tt1"', "[tt1]"],
)
def test_anything_but_an_array_of_strings_is_refused(text):
    with pytest.raises(ValueError, match="not an ID list"):
        list(iter_json_strings(chunks(text.encode(), 3), ERROR))


def test_invalid_utf8_is_refused():
    with pytest.raises(ValueError, match="not an ID list"):
        list(iter_json_strings([b'["tt\xff"]'], ERROR))


def test_iter_batches_equals_build_urls():
    ids = [f"tt{n:07d}" for n in range(1000)] + ["a b", "é"]
    base = "https://api.example.com/lamba-tmdb"
    assert list(iter_batches(base, iter(ids), 70, 8192)) == build_urls(base, ids, 70, 8192)
