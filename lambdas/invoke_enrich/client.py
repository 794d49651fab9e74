"""Send one batch's GET to the enrichment API and classify the answer.

2xx is success. 429, 5xx, timeouts and connection failures are `RetryableEnrichError`;
other answers (4xx, and 3xx because redirects are not followed) are `RejectedEnrichError`.
The client never retries by itself: the state machine owns retries (backoff, jitter,
attempt count), so one invocation is exactly one request. Every request carries
`Idempotency-Key: <run_id>/<batch_id>`: Express children are at-least-once on AWS, so the
API may see a batch twice and can use the key to ignore the repeat.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from enrich_shared.errors import (
    ConfigurationError,
    InvalidInputError,
    RejectedEnrichError,
    RetryableEnrichError,
)
from enrich_shared.models import Batch, EnrichResult
from enrich_shared.observability import logger
from enrich_shared.secret_store import get_secret_string
from enrich_shared.settings import env_float, env_optional, env_str

DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 30.0
DEFAULT_API_KEY_HEADER = "x-api-key"
#: Characters of a response body quoted in an error message.
BODY_EXCERPT_CHARS = 500
#: Seconds kept free before the Lambda's own deadline, so our timeout fires first and the
#: error is classified (a Lambda timeout would be an opaque `States.Timeout`).
DEADLINE_MARGIN_S = 2.0
USER_AGENT = "imdb-enrichment/0.1 (+invoke_enrich)"
IDEMPOTENCY_HEADER = "Idempotency-Key"

# One pool per warm Lambda container: keep-alive connections are reused across batches.
# retries=False: no retries and no redirects (a 3xx is returned to us, not followed).
HTTP = urllib3.PoolManager(num_pools=4, maxsize=2, retries=False)


@dataclass(frozen=True)
class ClientSettings:
    """What the client reads from the environment (see docs/steps.md)."""

    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    api_key_secret_name: str | None = None
    api_key_header: str = DEFAULT_API_KEY_HEADER

    @classmethod
    def from_env(cls) -> ClientSettings:
        """Read HTTP_CONNECT_TIMEOUT_S, HTTP_READ_TIMEOUT_S, API_KEY_SECRET_NAME, API_KEY_HEADER."""
        return cls(
            connect_timeout_s=env_float("HTTP_CONNECT_TIMEOUT_S", DEFAULT_CONNECT_TIMEOUT_S),
            read_timeout_s=env_float("HTTP_READ_TIMEOUT_S", DEFAULT_READ_TIMEOUT_S),
            api_key_secret_name=env_optional("API_KEY_SECRET_NAME"),
            api_key_header=env_str("API_KEY_HEADER", DEFAULT_API_KEY_HEADER),
        )


def read_api_key(secret_name: str) -> str:
    """Return the API key stored in `secret_name` (cached by Powertools Parameters).

    The secret is either the bare key or a JSON object with an `api_key` field (what the
    console's key/value editor produces).
    """
    value = get_secret_string(secret_name).strip()
    if value.startswith("{"):
        try:
            value = json.loads(value).get("api_key", "")
        except (ValueError, AttributeError):
            value = ""
        if not isinstance(value, str):
            value = ""
    if not value:
        raise ConfigurationError(
            f"secret {secret_name!r} holds no API key: store the key itself or "
            '{"api_key": "<key>"}'
        )
    return value


def _excerpt(body: bytes, secret: str | None) -> str:
    text = body[: BODY_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:BODY_EXCERPT_CHARS]
    if secret:
        # An API that echoes request headers must not leak the key into our errors.
        text = text.replace(secret, "***")
    return text


def _where(url: str) -> str:
    """Scheme, host and path of `url`: enough to locate the API, without the ID list."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


@dataclass(frozen=True, repr=False)
class Answer:
    """A 2xx answer: the step's result plus the raw body, which the handler stores."""

    result: EnrichResult
    data: bytes


def idempotency_key(batch: Batch) -> str:
    """`<run_id>/<batch_id>`: the same for every attempt and every duplicate of a batch."""
    return f"{batch.run_id}/{batch.batch_id}" if batch.run_id else batch.batch_id


def enrich_batch(
    batch: Batch,
    settings: ClientSettings,
    remaining_s: float | None = None,
    http: urllib3.PoolManager = HTTP,
) -> Answer:
    """GET `batch.url` once and return the 2xx `Answer`, or raise a classified error.

    `remaining_s` is the time the Lambda has left; when given, the whole request is capped
    below it so a slow API surfaces as `RetryableEnrichError`, not as a Lambda timeout.
    """
    headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        IDEMPOTENCY_HEADER: idempotency_key(batch),
    }
    api_key = None
    if settings.api_key_secret_name:
        api_key = read_api_key(settings.api_key_secret_name)
        headers[settings.api_key_header] = api_key

    total = None
    if remaining_s is not None:
        total = max(0.5, remaining_s - DEADLINE_MARGIN_S)
    timeout = urllib3.Timeout(
        connect=settings.connect_timeout_s, read=settings.read_timeout_s, total=total
    )
    where = _where(batch.url)
    started = time.monotonic()
    try:
        response = http.request(
            "GET", batch.url, headers=headers, timeout=timeout, redirect=False, retries=False
        )
    except LocationValueError as error:
        raise InvalidInputError(
            f"batch {batch.batch_id}: URL is not usable ({error}); rebuild the batches"
        ) from None
    except NewConnectionError as error:
        # Checked before timeouts: urllib3 derives it from ConnectTimeoutError.
        raise RetryableEnrichError(
            f"batch {batch.batch_id}: could not connect to {where} ({error})"
        ) from None
    except Urllib3TimeoutError as error:
        raise RetryableEnrichError(
            f"batch {batch.batch_id}: {where} timed out ({type(error).__name__}: connect "
            f"{settings.connect_timeout_s}s, read {settings.read_timeout_s}s"
            + (f", total {total:.1f}s before the Lambda deadline)" if total else ")")
        ) from None
    except ProtocolError as error:
        raise RetryableEnrichError(
            f"batch {batch.batch_id}: connection to {where} broke mid-request ({error})"
        ) from None
    except HTTPError as error:
        # NewConnectionError (refused, DNS), SSL errors and the like.
        raise RetryableEnrichError(
            f"batch {batch.batch_id}: could not reach {where} ({type(error).__name__}: {error})"
        ) from None
    elapsed_ms = int((time.monotonic() - started) * 1000)
    status = response.status

    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        logger.warning(
            "enrichment API sent Retry-After",
            extra={"http_status": status, "retry_after": retry_after[:64]},
        )

    if 200 <= status < 300:
        result = EnrichResult(batch.batch_id, status, len(batch.ids), elapsed_ms)
        data = response.data or b""
        if api_key and api_key.encode() in data:
            # An API that echoes request headers must not put the key into stored answers.
            data = data.replace(api_key.encode(), b"***")
        return Answer(result, data)

    body = _excerpt(response.data or b"", api_key)
    detail = f"batch {batch.batch_id}: {where} answered HTTP {status}"
    if status == 429 or status >= 500:
        raise RetryableEnrichError(f"{detail} (will be retried); body: {body!r}")
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        raise RejectedEnrichError(
            f"{detail}, a redirect to {_where(location) if location else 'nowhere'!r} that is "
            f"not followed; set enrichment.baseUrl in cdk.json to the final address and deploy "
            f"again; body: {body!r}"
        )
    raise RejectedEnrichError(
        f"{detail} (not retried: the request itself is refused); body: {body!r}"
    )
