"""A local stand-in for the enrichment API (API Gateway + Lambda that enriches IMDB IDs).

It answers `GET <path>?ids=tt1&ids=tt2...` like the real API: 200 with
`{"records": [{"imdb_id": ..., "title": ..., ...}]}` for valid IDs, 400 for a missing or
malformed `ids`, 404 for another path, 403 when an API key is required and not given.
Each 200 writes its records to `<output_dir>/request-<seq>.jsonl` (one JSON record per
line; `seq` is the 1-based request number, zero-padded), when `output_dir` is set.

Failures are scripted so tests and `enrichctl local` can rehearse bad nights:
`latency_ms`, a seeded `fail_rate` answered with `fail_status`, `rules` per ID (a fixed
outcome or a sequence consumed one request at a time), a `rule` callable, a `Retry-After`
header, a slow mode (sleep past the client's read timeout) and a reset mode (headers and
half a body, then the connection is torn down).

It only listens on 127.0.0.1, and stops by itself after `max_lifetime_s`.

    with LocalEnrichApi(output_dir=tmp_path, rules={"tt0000001": [503, 503]}) as api:
        url = api.base_url  # http://127.0.0.1:<port>/lamba-tmdb
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: What the server does with one request: an HTTP status, "slow" or "reset".
Outcome = int | str
SLOW = "slow"
RESET = "reset"
#: Same rule as QueryIds: `tt` + 7 to 10 digits.
IMDB_ID = re.compile(r"^tt\d{7,10}$")
DEFAULT_PATH = "/lamba-tmdb"
#: Statuses that carry Retry-After when `retry_after` is set (as API Gateway does).
RETRY_AFTER_STATUSES = frozenset({429, 503})
_GENRES = ("Drama", "Comedy", "Documentary", "Thriller", "Animation", "Western", "Horror")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it and answered it."""

    seq: int
    path: str
    ids: list[str]
    outcome: Outcome
    status: int | None  # None for "reset" (no complete answer)
    headers: dict[str, str] = field(repr=False)


def fake_record(imdb_id: str) -> dict[str, Any]:
    """Deterministic fake enrichment of one ID (same ID -> same record, every time)."""
    digest = hashlib.sha256(imdb_id.encode()).digest()
    number = int(imdb_id[2:])
    return {
        "imdb_id": imdb_id,
        "tmdb_id": 100_000 + number % 9_000_000,
        "title": f"Local Title {number}",
        "year": 1920 + digest[0] % 105,
        "genre": _GENRES[digest[1] % len(_GENRES)],
        "rating": round(1 + (digest[2] / 255) * 9, 1),
        "source": "enrichctl-local-api",
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: LocalEnrichApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up mid-answer are expected here, not bugs.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like API Gateway
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.server.api._handle(self)

    def do_POST(self) -> None:
        self.server.api._send(self, 405, {"message": "use GET"}, extra={"Allow": "GET"})

    do_PUT = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded in `LocalEnrichApi.requests` instead

    def finish(self) -> None:
        # The socket may already be torn down (reset mode, client gone).
        with contextlib.suppress(OSError, ValueError):
            super().finish()


class LocalEnrichApi:
    """A thread-backed HTTP server that behaves like the enrichment API. See module doc."""

    def __init__(
        self,
        output_dir: str | Path | None = None,
        *,
        port: int = 0,
        path: str = DEFAULT_PATH,
        latency_ms: int = 0,
        fail_rate: float = 0.0,
        fail_status: int = 503,
        seed: int = 0,
        rules: Mapping[str, Outcome | Sequence[Outcome]] | None = None,
        rule: Callable[[RecordedRequest], Outcome | None] | None = None,
        mode: str = "normal",
        retry_after: str | None = None,
        error_body: str | None = None,
        ok_body: str | None = None,
        slow_s: float = 5.0,
        api_key: tuple[str, str] | None = None,
        max_ids: int = 1000,
        max_lifetime_s: float = 600.0,
    ) -> None:
        """Configure the server (nothing listens until `start()`).

        Args:
            output_dir: where 200 answers write `request-<seq>.jsonl`; None writes nothing.
            port: 0 picks a free port (read `port` / `base_url` after `start()`).
            path: the one path served; any other path gets 404.
            latency_ms: delay before every answer.
            fail_rate: share of requests (0..1) answered `fail_status`, drawn from `seed`.
            rules: ID -> outcome. A single outcome applies to every request holding the ID;
                a list is consumed one request at a time, then normal answers resume
                (`{"tt0000001": [503, 503]}` = 503 twice, then 200).
            rule: callable given the request (status/outcome not yet set) returning an
                outcome or None (no opinion). Checked before `rules`; it runs under the
                server's lock, so keep it quick.
            mode: "normal", "slow" (every request sleeps `slow_s`) or "reset" (every
                answer is cut off mid-body).
            retry_after: value of a Retry-After header on 429 and 503 answers.
            error_body: text sent as the body of scripted/failed answers instead of the
                default JSON message (e.g. a long HTML error page, or one echoing a header).
            ok_body: text sent as the body of 200 answers instead of the records JSON (an
                API that writes its results elsewhere and answers only a status, or a
                broken one); the records are still written to `output_dir`.
            api_key: (header, value) required on every request, else 403.
            max_ids: more IDs than this in one request -> 400 (an API limit).
            max_lifetime_s: the server stops by itself after this long.
        """
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError(f"fail_rate={fail_rate} must be between 0 and 1")
        if mode not in ("normal", SLOW, RESET):
            raise ValueError(f"mode={mode!r} must be 'normal', 'slow' or 'reset'")
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.path = path
        self.latency_ms = latency_ms
        self.fail_rate = fail_rate
        self.fail_status = fail_status
        self.rule = rule
        self.mode = mode
        self.retry_after = retry_after
        self.error_body = error_body
        self.ok_body = ok_body
        self.slow_s = slow_s
        self.api_key = api_key
        self.max_ids = max_ids
        self.max_lifetime_s = max_lifetime_s
        self._requested_port = port
        self._random = random.Random(seed)  # noqa: S311 (failure injection, not crypto)
        self._fixed: dict[str, Outcome] = {}
        self._scripts: dict[str, list[Outcome]] = {}
        for imdb_id, outcome in (rules or {}).items():
            if isinstance(outcome, int | str):
                self._fixed[imdb_id] = outcome
            else:
                self._scripts[imdb_id] = list(outcome)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        #: Set once the server has stopped (by `stop()` or at the end of its lifetime).
        self.stopped = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._ids_enriched = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> LocalEnrichApi:
        """Bind 127.0.0.1 and serve in a background thread; return self."""
        if self._server is not None:
            raise RuntimeError("LocalEnrichApi is already started")
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self.stopped.clear()
        server = _Server(("127.0.0.1", self._requested_port), _Handler)
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        # Bounded: a test that forgets stop() does not leave a server behind for long.
        self._timer = threading.Timer(self.max_lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent; sleeping requests are woken)."""
        self._stopping.set()
        server, self._server = self._server, None
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.stopped.set()

    def __enter__(self) -> LocalEnrichApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (after `start()`)."""
        if self._server is None:
            raise RuntimeError("LocalEnrichApi is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port><path>`: what ENRICH_BASE_URL should be."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    # -- what happened ---------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many requests arrived."""
        with self._lock:
            return len(self._requests)

    @property
    def ids_enriched(self) -> int:
        """How many IDs were answered with a record (200 answers only)."""
        with self._lock:
            return self._ids_enriched

    # -- request handling ------------------------------------------------------------
    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        ids = [value for key, value in query if key == "ids"]
        headers = {key.lower(): value for key, value in handler.headers.items()}
        with self._lock:
            seq = len(self._requests) + 1
            draw = self._random.random() if self.fail_rate else 1.0
            probe = RecordedRequest(seq, parts.path, ids, 0, None, headers)
            outcome, body = self._decide(probe, query, draw)
            status = None if outcome == RESET else (200 if outcome == SLOW else int(outcome))
            self._requests.append(RecordedRequest(seq, parts.path, ids, outcome, status, headers))
            if status == 200:
                self._ids_enriched += len(ids)

        if self.latency_ms:
            self._stopping.wait(self.latency_ms / 1000)
        if outcome == SLOW:
            self._stopping.wait(self.slow_s)
        if status == 200:
            records = [fake_record(i) for i in ids]
            self._write(seq, records)
            body = {"records": records} if self.ok_body is None else self.ok_body
        if outcome == RESET:
            self._reset(handler, ids)
            return
        extra = {}
        if self.retry_after is not None and status in RETRY_AFTER_STATUSES:
            extra["Retry-After"] = self.retry_after
        self._send(handler, int(status or 500), body, extra)

    def _decide(
        self, request: RecordedRequest, query: list[tuple[str, str]], draw: float
    ) -> tuple[Outcome, Any]:
        """Pick the outcome of one request (caller holds the lock)."""
        if request.path != self.path:
            return 404, {"message": f"no route for {request.path}; the API serves {self.path}"}
        if self.api_key is not None:
            header, value = self.api_key
            if request.headers.get(header.lower()) != value:
                return 403, {"message": "Forbidden"}
        if not request.ids:
            return 400, {"message": "missing query string parameter 'ids' (ids=tt...&ids=tt...)"}
        bad = [i for i in request.ids if not IMDB_ID.match(i)]
        if bad:
            sample = [b[:40] for b in bad[:5]]
            return 400, {"message": f"invalid IMDB IDs (want tt + 7-10 digits): {sample}"}
        if len(request.ids) > self.max_ids:
            return 400, {
                "message": f"{len(request.ids)} IDs in one request; at most {self.max_ids}"
            }
        # Other query parameters (e.g. from a base URL's own query string) are allowed.
        if self.rule is not None:
            outcome = self.rule(request)
            if outcome is not None:
                return outcome, self._error_body(outcome)
        for imdb_id in request.ids:
            script = self._scripts.get(imdb_id)
            if script:
                outcome = script.pop(0)
                return outcome, self._error_body(outcome)
            if imdb_id in self._fixed:
                outcome = self._fixed[imdb_id]
                return outcome, self._error_body(outcome)
        if draw < self.fail_rate:
            return self.fail_status, self._error_body(self.fail_status)
        if self.mode != "normal":
            return self.mode, None
        return 200, None

    def _error_body(self, outcome: Outcome) -> Any:
        if isinstance(outcome, int) and outcome >= 300:
            if self.error_body is not None:
                return self.error_body
            return {"message": f"scripted failure: HTTP {outcome}"}
        return None

    def _write(self, seq: int, records: list[dict[str, Any]]) -> None:
        if self.output_dir is None:
            return
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        (self.output_dir / f"request-{seq:06d}.jsonl").write_text(lines)

    @staticmethod
    def _send(
        handler: _Handler, status: int, body: Any, extra: dict[str, str] | None = None
    ) -> None:
        if status == 204 or body is None:
            payload, content_type = b"", None
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(body).encode(), "application/json"
        try:
            handler.send_response(status)
            if content_type:
                handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            for key, value in (extra or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(payload)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True  # the client gave up (e.g. read timeout)

    @staticmethod
    def _reset(handler: _Handler, ids: list[str]) -> None:
        """Promise a full body, send half of it, then abort the TCP connection (RST)."""
        payload = json.dumps({"records": [fake_record(i) for i in ids]}).encode()
        handler.close_connection = True
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            # SO_LINGER 0: close() sends RST instead of FIN, like a crashed upstream.
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()
        except OSError:
            pass
