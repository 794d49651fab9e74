"""Split a night's IMDB IDs into request URLs that respect an ID count and a URL length.

The seed flow built one URL (`base?ids=tt1&ids=tt2...`) capped at ~70 IDs. We keep that
exact URL shape so the enrichment API needs no change, but build as many URLs as needed,
percent-encode every value and refuse to build a URL longer than the API accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import quote, urlsplit

from enrich_shared.errors import ConfigurationError, IdTooLongError
from enrich_shared.models import Batch

#: Query string parameter the enrichment API reads (repeated once per ID).
ID_PARAM = "ids"
DEFAULT_MAX_IDS_PER_REQUEST = 70
#: A conservative limit: API Gateway and CloudFront accept 8 KB request lines.
DEFAULT_MAX_URL_LENGTH = 8192


def batch_id(index: int) -> str:
    """Zero-padded batch ID (1-based) so IDs sort in the order the batches were built."""
    return f"{index:06d}"


def url_prefix(base_url: str) -> str:
    """Return the part every batch URL starts with: `base?` or `base?existing&`.

    The base URL is validated here because it comes from configuration: a bad value is a
    `ConfigurationError`, raised before any ID is looked at.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"ENRICH_BASE_URL={base_url!r} is not an absolute http(s) URL; "
            "set it to the enrichment API endpoint, e.g. https://api.example.com/lamba-tmdb"
        )
    if parts.fragment or base_url.endswith("#"):
        # Anything after '#' is never sent to the server, so IDs appended there would be lost.
        raise ConfigurationError(
            f"ENRICH_BASE_URL={base_url!r} has a '#fragment'; remove it (IDs after it are not sent)"
        )
    if "?" not in base_url:
        return base_url + "?"
    if base_url.endswith(("?", "&")):
        return base_url
    return base_url + "&"


def build_urls(
    base_url: str,
    ids: Iterable[str],
    max_ids_per_request: int = DEFAULT_MAX_IDS_PER_REQUEST,
    max_url_length: int = DEFAULT_MAX_URL_LENGTH,
) -> list[Batch]:
    """Split `ids` into batches whose URLs are `base_url` plus `ids=<id>&ids=<id>...`.

    Every ID lands in exactly one batch, in input order; batches are filled greedily up to
    `max_ids_per_request` IDs and `max_url_length` characters. Values are percent-encoded
    (`quote(id, safe="")`), a query string already on `base_url` is kept, and for plain
    IMDB IDs and a base URL without a query string a URL equals the seed's `built_url`.

    Runs in O(total length of the IDs): the URL length is tracked as a running sum and each
    URL is joined once, when its batch is closed. `iter_batches` is the same, lazily.

    Raises:
        ConfigurationError: `base_url` is not an absolute http(s) URL, or a limit is unusable.
        IdTooLongError: one ID does not fit in a URL even alone.
    """
    return list(iter_batches(base_url, ids, max_ids_per_request, max_url_length))


def iter_batches(
    base_url: str,
    ids: Iterable[str],
    max_ids_per_request: int = DEFAULT_MAX_IDS_PER_REQUEST,
    max_url_length: int = DEFAULT_MAX_URL_LENGTH,
) -> Iterator[Batch]:
    """`build_urls` as a generator: only the open batch is held, whatever the ID count.

    The limits and the base URL are checked on the first `next()`; errors are those of
    `build_urls`.
    """
    if max_ids_per_request < 1:
        raise ConfigurationError(f"MAX_IDS_PER_REQUEST={max_ids_per_request} must be at least 1")
    prefix = url_prefix(base_url)
    prefix_len = len(prefix)
    if prefix_len >= max_url_length:
        raise ConfigurationError(
            f"MAX_URL_LENGTH={max_url_length} leaves no room for IDs after the "
            f"{prefix_len}-character base URL; raise it or shorten ENRICH_BASE_URL"
        )

    count = 0  # batches yielded so far
    parts: list[str] = []  # "ids=<encoded>" of the open batch
    batch_ids: list[str] = []
    length = prefix_len  # length of the open batch's URL

    for position, raw_id in enumerate(ids):
        # ASCII letters and digits are unreserved (quote returns them unchanged); skipping
        # quote for them makes a 1,000,000-ID night about 3x faster.
        encoded = raw_id if raw_id.isascii() and raw_id.isalnum() else quote(raw_id, safe="")
        part = f"{ID_PARAM}={encoded}"
        if prefix_len + len(part) > max_url_length:
            raise IdTooLongError(
                f"ID at position {position} (starts {raw_id[:40]!r}, {len(raw_id)} characters, "
                f"{len(part) - len(ID_PARAM) - 1} encoded) makes a {prefix_len + len(part)}-"
                f"character URL even alone, over MAX_URL_LENGTH={max_url_length}; fix the "
                "source value or raise the limit"
            )
        # "&" separates this part from the previous one; the first part needs none.
        added = len(part) + (1 if parts else 0)
        if parts and (len(parts) >= max_ids_per_request or length + added > max_url_length):
            count += 1
            yield Batch(batch_id(count), prefix + "&".join(parts), batch_ids)
            parts, batch_ids, length = [], [], prefix_len
            added = len(part)
        parts.append(part)
        batch_ids.append(raw_id)
        length += added

    if parts:
        yield Batch(batch_id(count + 1), prefix + "&".join(parts), batch_ids)
