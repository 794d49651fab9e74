"""build_url: property tests of `build_urls`, and the BuildUrls handler against moto S3."""

from __future__ import annotations

import itertools
import json
import math
import uuid
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from build_url import batches
from build_url.batches import failed_batches
from build_url.urls import build_urls, url_prefix
from enrich_shared import storage
from enrich_shared.errors import ConfigurationError, IdTooLongError, InvalidInputError
from query_ids.ids_file import upload_ids
from tests.lambda_context import lambda_context
from tests.log_counts import logged_counts, step_log_lines


# The seed's `built_url` (shared/seed/prefect-getting-started.md), verbatim except that the
# base URL is a parameter instead of the "https://<< API Gateway URL >>/lamba-tmdb" literal.
def built_url(id_list, base_url):
    url = base_url + "?"

    for i in range(len(id_list)):
        url += "ids="
        url += id_list[i]
        if i == len(id_list) - 1:
            return url
        else:
            url += "&"

    return url


# No deadline: a loaded CI machine must not turn a slow example into a failure. 60 examples
# per property keeps the module fast under `pytest -n 2` and still covers the edge cases
# (hypothesis favours empty lists, limits of 1, boundary lengths).
PROPERTY = settings(max_examples=60, deadline=None)

PLAIN_BASES = [
    "https://abc123.execute-api.us-east-1.amazonaws.com/prod/lamba-tmdb",
    "http://127.0.0.1:8080/enrich",
    "https://api.example.com",
]
QUERY_BASES = [
    "https://api.example.com/lamba-tmdb?source=nightly",
    "https://api.example.com/lamba-tmdb?a=1&b=two%20words",
    "https://api.example.com/lamba-tmdb?",
    "https://api.example.com/lamba-tmdb?a=1&",
]
# `tt` + 7 to 10 digits, leading zeros included (from_regex is ~5x slower to draw).
imdb_ids = st.integers(7, 10).flatmap(
    lambda width: st.integers(0, 10**width - 1).map(lambda n: f"tt{n:0{width}d}")
)
# Anything a broken source could hold: spaces, '&', '=', '#', '+', '%', '/', non-ASCII, empty.
any_ids = st.text(max_size=30)
bases = st.sampled_from(PLAIN_BASES + QUERY_BASES)


def encoded_length(base_url: str, one_id: str) -> int:
    """Length of the URL holding only `one_id`."""
    return len(url_prefix(base_url)) + len("ids=") + len(quote(one_id, safe=""))


@st.composite
def cases(draw, ids_strategy=any_ids):
    """(base_url, ids, max_ids, max_len) where every ID fits in a URL alone."""
    base = draw(bases)
    ids = draw(st.lists(ids_strategy, max_size=120))
    longest = max((encoded_length(base, i) for i in ids), default=len(base) + 10)
    max_len = draw(st.integers(min_value=longest, max_value=longest + 600))
    max_ids = draw(st.integers(min_value=1, max_value=80))
    return base, ids, max_ids, max_len


def base_params(base_url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(base_url).query, keep_blank_values=True)


@PROPERTY
@given(cases())
def test_every_id_in_exactly_one_batch_in_input_order(case):
    base, ids, max_ids, max_len = case
    batches = build_urls(base, ids, max_ids, max_len)
    assert [i for b in batches for i in b.ids] == ids
    assert all(b.ids for b in batches), "no empty batch"


@PROPERTY
@given(cases())
def test_no_batch_over_either_limit(case):
    base, ids, max_ids, max_len = case
    for batch in build_urls(base, ids, max_ids, max_len):
        assert len(batch.ids) <= max_ids
        assert len(batch.url) <= max_len


@PROPERTY
@given(cases())
def test_batches_are_filled_greedily(case):
    """A batch is closed only when the next ID would break a limit (no needless requests)."""
    base, ids, max_ids, max_len = case
    batches = build_urls(base, ids, max_ids, max_len)
    for batch, following in itertools.pairwise(batches):
        next_part = "&ids=" + quote(following.ids[0], safe="")
        assert len(batch.ids) == max_ids or len(batch.url) + len(next_part) > max_len


@PROPERTY
@given(cases())
def test_urls_round_trip_through_parse_qsl_and_keep_the_base(case):
    base, ids, max_ids, max_len = case
    for batch in build_urls(base, ids, max_ids, max_len):
        assert batch.url.startswith(base)
        split, base_split = urlsplit(batch.url), urlsplit(base)
        assert (split.scheme, split.netloc, split.path) == (
            base_split.scheme,
            base_split.netloc,
            base_split.path,
        )
        assert split.fragment == ""
        params = parse_qsl(split.query, keep_blank_values=True, strict_parsing=False)
        kept = base_params(base)
        assert params[: len(kept)] == kept, "the base URL's own query string is kept, first"
        assert params[len(kept) :] == [("ids", i) for i in batch.ids]


@PROPERTY
@given(cases(), st.sampled_from(PLAIN_BASES))
def test_urls_round_trip_through_parse_qs(case, base):
    _, ids, max_ids, _ = case
    for batch in build_urls(base, ids, max_ids, 100_000):
        parsed = parse_qs(urlsplit(batch.url).query, keep_blank_values=True)
        assert parsed == ({"ids": batch.ids} if batch.ids else {})


@PROPERTY
@given(st.lists(imdb_ids, min_size=1, max_size=70), st.sampled_from(PLAIN_BASES))
def test_up_to_70_valid_ids_give_exactly_the_seed_url(ids, base):
    batches = build_urls(base, ids)
    assert len(batches) == 1
    assert batches[0].url == built_url(ids, base)


@PROPERTY
@given(st.lists(imdb_ids, max_size=400), st.sampled_from(PLAIN_BASES), st.integers(1, 100))
def test_every_batch_of_valid_ids_is_the_seed_url_of_its_ids(ids, base, max_ids):
    batches = build_urls(base, ids, max_ids)
    assert len(batches) == math.ceil(len(ids) / max_ids)
    for batch in batches:
        assert batch.url == built_url(batch.ids, base)


@PROPERTY
@given(cases())
def test_batch_ids_are_zero_padded_and_in_order(case):
    base, ids, max_ids, max_len = case
    batches = build_urls(base, ids, max_ids, max_len)
    assert [b.batch_id for b in batches] == [f"{n:06d}" for n in range(1, len(batches) + 1)]


@PROPERTY
@given(bases, st.lists(any_ids, min_size=1, max_size=40), st.integers(0, 60))
def test_id_that_cannot_fit_alone_is_an_error(base, ids, room):
    max_len = len(url_prefix(base)) + len("ids=") + room
    too_long = [i for i in ids if encoded_length(base, i) > max_len]
    if too_long:
        with pytest.raises(IdTooLongError, match="MAX_URL_LENGTH"):
            build_urls(base, ids, 70, max_len)
    else:
        batches = build_urls(base, ids, 70, max_len)
        assert [i for b in batches for i in b.ids] == ids


def test_too_long_id_is_reported_not_dropped():
    base = PLAIN_BASES[0]
    with pytest.raises(IdTooLongError, match=r"position 1 .*MAX_URL_LENGTH=200"):
        build_urls(base, ["tt0000001", "tt" + "9" * 500, "tt0000002"], 70, 200)


def test_values_are_percent_encoded():
    [batch] = build_urls("https://h.example/p", ["tt1 2", "a&ids=x", "é#/+%"])
    assert batch.url == "https://h.example/p?ids=tt1%202&ids=a%26ids%3Dx&ids=%C3%A9%23%2F%2B%25"


def test_existing_query_string_is_appended_with_ampersand():
    [batch] = build_urls("https://h.example/p?key=v", ["tt0000001", "tt0000002"])
    assert batch.url == "https://h.example/p?key=v&ids=tt0000001&ids=tt0000002"


def test_no_ids_no_batches():
    assert build_urls(PLAIN_BASES[0], []) == []


@pytest.mark.parametrize(
    ("base", "max_ids", "max_len", "match"),
    [
        ("api.example.com/p", 70, 8192, "absolute http"),
        ("ftp://h.example/p", 70, 8192, "absolute http"),
        ("https://h.example/p#frag", 70, 8192, "fragment"),
        ("https://h.example/p", 0, 8192, "MAX_IDS_PER_REQUEST"),
        ("https://h.example/p", 70, 10, "MAX_URL_LENGTH"),
    ],
)
def test_unusable_configuration_is_a_clear_error(base, max_ids, max_len, match):
    with pytest.raises(ConfigurationError, match=match):
        build_urls(base, ["tt0000001"], max_ids, max_len)


def test_a_big_night():
    """300,000 IDs split into ceil(n / 70) seed-shaped URLs (1,000,000 take ~0.9 s)."""
    ids = [f"tt{n:07d}" for n in range(300_000)]
    batches = build_urls(PLAIN_BASES[0], ids)
    assert len(batches) == 4_286
    assert batches[-1].ids == ids[-(300_000 % 70) :]
    assert batches[1234].url == built_url(ids[1234 * 70 : 1235 * 70], PLAIN_BASES[0])


# -- handler (moto S3) ---------------------------------------------------------------------


BASE = "https://api.example.com/lamba-tmdb"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("BUCKET_NAME", "pipeline-bucket")
    monkeypatch.setenv("ENRICH_BASE_URL", BASE)
    monkeypatch.delenv("MAX_IDS_PER_REQUEST", raising=False)
    monkeypatch.delenv("MAX_URL_LENGTH", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="pipeline-bucket")
        yield client


def handler(event):
    from build_url.handler import lambda_handler

    return lambda_handler(event, lambda_context())


def query_result(run_id: str, count: int) -> dict:
    return {
        "run_id": run_id,
        "dry_run": False,
        "status": "claimed",
        "ids_key": storage.ids_key(run_id),
        "ids_count": count,
        "invalid_count": 0,
        "duplicate_count": 0,
    }


def put_ids(run_id: str, ids: list[str], s3) -> None:
    """Store a run's IDs the way QueryIds does."""
    upload_ids(s3, "pipeline-bucket", storage.ids_key(run_id), iter(ids))


def test_handler_builds_batches_from_the_ids_file(s3, monkeypatch):
    monkeypatch.setenv("MAX_IDS_PER_REQUEST", "3")
    ids = [f"tt{n:07d}" for n in range(1, 8)]
    put_ids("night-1", ids, s3)

    with step_log_lines() as lines:
        result = handler(query_result("night-1", len(ids)))

    assert result == {
        "run_id": "night-1",
        "dry_run": False,
        "batches_key": "runs/night-1/batches.json",
        "batch_count": 3,
        "ids_count": 7,
    }
    stored = storage.get_json("pipeline-bucket", "runs/night-1/batches.json", s3)
    assert stored == [
        {"batch_id": "000001", "url": built_url(ids[0:3], BASE), "ids": ids[0:3]},
        {"batch_id": "000002", "url": built_url(ids[3:6], BASE), "ids": ids[3:6]},
        {"batch_id": "000003", "url": built_url(ids[6:], BASE), "ids": ids[6:]},
    ]
    assert logged_counts("\n".join(lines))["batches_built"] == 3


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b'["tt0000001", "tt0000002"]\n', 1),  # the old JSON array format
        (b'"tt0000001"\n{"id": "tt0000002"}\n', 2),
        (b'"tt0000001"\n\n"tt0000002"\n', 2),
        (b'"tt0000001"\n"tt\xff"\n', 2),  # not UTF-8
        (b'"tt0000001"\ntt0000002\n', 2),  # not JSON
    ],
)
def test_handler_refuses_an_ids_file_that_is_not_one_id_string_per_line(s3, body, line):
    s3.put_object(Bucket="pipeline-bucket", Key=storage.ids_key("night-2"), Body=body)
    with pytest.raises(InvalidInputError, match=f"line {line} is not a JSON string"):
        handler(query_result("night-2", 2))


def test_ids_stream_across_read_chunks(s3, monkeypatch):
    # A 5-byte read size cuts every line and multi-byte character somewhere.
    monkeypatch.setattr(batches, "READ_CHUNK_BYTES", 5)
    ids = [f"tt{n:07d}" for n in range(1, 40)] + ["é ü", "a\nb", ""]
    put_ids("night-4", ids, s3)
    assert list(batches.stream_ids("pipeline-bucket", storage.ids_key("night-4"), s3)) == ids


def test_ids_file_may_end_without_newline_and_use_crlf(s3):
    key = storage.ids_key("night-5")
    s3.put_object(Bucket="pipeline-bucket", Key=key, Body=b'"tt0000001"\r\n"tt0000002"')
    assert list(batches.stream_ids("pipeline-bucket", key, s3)) == ["tt0000001", "tt0000002"]


def test_handler_without_base_url_is_a_configuration_error(s3, monkeypatch):
    monkeypatch.delenv("ENRICH_BASE_URL")
    put_ids("night-3", ["tt0000001"], s3)
    with pytest.raises(ConfigurationError, match="ENRICH_BASE_URL"):
        handler(query_result("night-3", 1))


def failed_record(run_id: str, batch_id: str, ids: list[str]) -> dict:
    return {
        "batch_id": batch_id,
        "url": built_url(ids, BASE),
        "ids": ids,
        "run_id": run_id,
        "error": {"Error": "RetryableEnrichError", "Cause": "HTTP 503"},
    }


def retry_event(run_id: str, retry_of: str) -> dict:
    return {
        "input": {"run_id": run_id, "trigger": "retry", "retry_of_run_id": retry_of},
        "execution_id": f"arn:aws:states:us-east-1:123456789012:execution:sm:{uuid.uuid4()}",
        "execution_name": run_id,
    }


def test_retry_mode_rebuilds_exactly_the_failed_batches(s3):
    records = [
        failed_record("night-1", "000007", ["tt0000013", "tt0000014"]),
        failed_record("night-1", "000002", ["tt0000003"]),
    ]
    for record in records:
        key = f"{storage.failed_prefix('night-1')}{record['batch_id']}.json"
        s3.put_object(Bucket="pipeline-bucket", Key=key, Body=json.dumps(record))
    # Neither another run's failures nor the run's own batches file are picked up.
    other = failed_record("night-0", "000001", ["tt0000099"])
    s3.put_object(
        Bucket="pipeline-bucket", Key="runs/night-0/failed/000001.json", Body=json.dumps(other)
    )
    storage.put_json("pipeline-bucket", "runs/night-1/batches.json", [], s3)

    with step_log_lines() as lines:
        result = handler(retry_event("night-1-retry", "night-1"))

    assert result == {
        "run_id": "night-1-retry",
        "dry_run": False,
        "batches_key": "runs/night-1-retry/batches.json",
        "batch_count": 2,
        "ids_count": 3,
    }
    stored = storage.get_json("pipeline-bucket", result["batches_key"], s3)
    assert stored == [
        {k: records[1][k] for k in ("batch_id", "url", "ids")},
        {k: records[0][k] for k in ("batch_id", "url", "ids")},
    ]
    assert logged_counts("\n".join(lines))["batches_built"] == 2


def test_retry_listing_follows_every_page(s3):
    for n in range(1, 6):
        record = failed_record("night-5", f"{n:06d}", [f"tt{n:07d}"])
        s3.put_object(
            Bucket="pipeline-bucket",
            Key=f"runs/night-5/failed/{n:06d}.json",
            Body=json.dumps(record),
        )
    batches = failed_batches("pipeline-bucket", "night-5", s3, page_size=2)
    assert [b.batch_id for b in batches] == ["000001", "000002", "000003", "000004", "000005"]


def test_retry_with_nothing_failed_says_so(s3):
    with pytest.raises(InvalidInputError, match=r"no failed batches .* nothing to retry"):
        handler(retry_event("night-9-retry", "night-9"))


def test_retry_of_itself_is_refused(s3):
    with pytest.raises(InvalidInputError, match="needs a new run_id"):
        handler(retry_event("night-1", "night-1"))


def test_run_request_without_retry_of_is_refused(s3):
    event = retry_event("night-1", "night-0")
    del event["input"]["retry_of_run_id"]
    with pytest.raises(InvalidInputError, match="without retry_of_run_id"):
        handler(event)
