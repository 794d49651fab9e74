"""enrichctl.local_api: the local enrichment API other tests and `enrichctl local` rely on."""

from __future__ import annotations

import json
import threading

import pytest
import urllib3

from enrichctl.local_api import LocalEnrichApi, fake_record

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=5))


def get(api: LocalEnrichApi, query: str, method: str = "GET") -> urllib3.BaseHTTPResponse:
    return HTTP.request(method, f"{api.base_url}?{query}")


def test_valid_ids_get_records_and_a_jsonl_file_per_request(tmp_path):
    with LocalEnrichApi(output_dir=tmp_path / "out") as api:
        first = get(api, "ids=tt0000001&ids=tt12345678")
        second = get(api, "source=nightly&ids=tt0000002")
    assert first.status == second.status == 200
    assert first.json() == {"records": [fake_record("tt0000001"), fake_record("tt12345678")]}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "request-000001.jsonl",
        "request-000002.jsonl",
    ]
    lines = (tmp_path / "out" / "request-000002.jsonl").read_text().splitlines()
    assert [json.loads(line)["imdb_id"] for line in lines] == ["tt0000002"]
    assert (api.request_count, api.ids_enriched) == (2, 3)
    assert fake_record("tt0000001") == fake_record("tt0000001"), "deterministic"


@pytest.mark.parametrize("query", ["", "ids=", "ids=tt0000001&ids=x1", "other=tt0000001"])
def test_missing_or_malformed_ids_get_400(query):
    with LocalEnrichApi() as api:
        response = get(api, query)
    assert response.status == 400
    assert "ids" in response.json()["message"].lower()
    assert api.ids_enriched == 0


def test_other_paths_404_and_other_methods_405():
    with LocalEnrichApi() as api:
        wrong_path = HTTP.request("GET", f"http://127.0.0.1:{api.port}/nope?ids=tt0000001")
        post = get(api, "ids=tt0000001", method="POST")
    assert (wrong_path.status, post.status) == (404, 405)


def test_too_many_ids_in_one_request_get_400():
    with LocalEnrichApi(max_ids=2) as api:
        assert get(api, "ids=tt0000001&ids=tt0000002&ids=tt0000003").status == 400


def test_fail_rate_is_deterministic_for_a_seed():
    def statuses(seed: int) -> list[int]:
        with LocalEnrichApi(fail_rate=0.5, fail_status=502, seed=seed) as api:
            return [get(api, f"ids=tt{n:07d}").status for n in range(30)]

    first, again = statuses(7), statuses(7)
    assert first == again
    assert set(first) == {200, 502}


def test_rule_callable_comes_first_and_sees_the_request():
    seen = []

    def rule(request):
        seen.append((request.seq, request.ids))
        return 500 if request.seq == 1 else None

    with LocalEnrichApi(rule=rule, rules={"tt0000001": 404}) as api:
        assert get(api, "ids=tt0000001").status == 500
        assert get(api, "ids=tt0000001").status == 404
    assert seen == [(1, ["tt0000001"]), (2, ["tt0000001"])]


def test_retry_after_header_on_429_and_503_only():
    with LocalEnrichApi(rules={"tt0000001": 429, "tt0000002": 500}, retry_after="30") as api:
        assert get(api, "ids=tt0000001").headers["Retry-After"] == "30"
        assert "Retry-After" not in get(api, "ids=tt0000002").headers


def test_concurrent_requests_are_all_recorded():
    with LocalEnrichApi() as api:

        def client(worker: int) -> None:
            for n in range(10):
                assert (
                    get(api, f"ids=tt{worker:03d}{n:04d}&ids=tt9{worker:03d}{n:04d}").status == 200
                )

        threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert (api.request_count, api.ids_enriched) == (80, 160)
    assert sorted(r.seq for r in api.requests) == list(range(1, 81))


def test_stops_by_itself_and_stop_is_idempotent():
    api = LocalEnrichApi(max_lifetime_s=0.2).start()
    port = api.port
    assert api.stopped.wait(10), "the server outlived max_lifetime_s"
    with pytest.raises(urllib3.exceptions.NewConnectionError):
        HTTP.request("GET", f"http://127.0.0.1:{port}/lamba-tmdb?ids=tt0000001")
    api.stop()


def test_invalid_options_are_refused():
    with pytest.raises(ValueError, match="fail_rate"):
        LocalEnrichApi(fail_rate=1.5)
    with pytest.raises(ValueError, match="mode"):
        LocalEnrichApi(mode="flaky")
