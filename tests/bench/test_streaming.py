"""BuildUrls' streamed batching gives the same batches as the list-based `build_urls`.

The ID reader itself (JSON Lines, at any chunk boundary) is tested in test_build_urls.py.
"""

from build_url.urls import build_urls, iter_batches


def test_iter_batches_equals_build_urls():
    ids = [f"tt{n:07d}" for n in range(1000)] + ["a b", "é"]
    base = "https://api.example.com/lamba-tmdb"
    assert list(iter_batches(base, iter(ids), 70, 8192)) == build_urls(base, ids, 70, 8192)
