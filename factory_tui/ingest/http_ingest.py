"""HTTP ingest: `POST /api/events` and `GET /healthz` on `[ingest.http] port`, beside the TCP port.

Events arrive as one JSON object, a JSON array of objects, or JSON lines, and go through the
running `Listener.submit`: the same batches, writer thread, validation and dedup as a TCP line,
so an event's status is exactly the reply a TCP line would get, and the response is written
only after the batch holding its events has committed. HTTP/1.1 is spoken with h11 (sans-IO)
inside the listener's event loop: no framework, no second loop, no thread.

Response codes of `POST /api/events` (the body lists each event's status, in order):

- 200: every event is stored (`accepted`) or was already (`duplicate`);
- 207: some were rejected, the others stored;
- 422: every event was rejected (nothing stored; sending the same body again will not help);
- 400: the body is not events at all (not JSON, empty, a bare number...);
- 401: a token is configured and the request lacks `Authorization: Bearer <token>`;
- 413: the body is over `max_body_bytes`; 415: a content type that is not JSON;
- 404 / 405: another path or method; 408: the request was not received within `timeout_s`;
- 503: the batch could not be stored, or the listener is stopping: nothing of the request was
  acknowledged, send it again (duplicates are detected).

Memory is bounded: one request at a time per connection (pipelined requests wait unread), a
body of at most `max_body_bytes`, at most `max_connections` connections.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import logging
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, Final, Literal

import h11
import msgspec

from factory_tui.config import Settings, is_loopback
from factory_tui.ingest.access import AllowList
from factory_tui.ingest.listener import Listener, ListenerError
from factory_tui.ingest.protocol import NOT_ALLOWED

log = logging.getLogger("factory_tui.ingest")

EVENTS_PATH: Final = "/api/events"
HEALTH_PATH: Final = "/healthz"
MAX_HEADER_BYTES: Final = 16 << 10
"""Request line plus headers; more is answered 431 (h11's bound on an incomplete event)."""
LINGER_S: Final = 1.0
"""After a response that closes the connection, what the client still sends is read and
dropped this long: closing with unread input sends a reset, which can destroy the response."""
STOP_TIMEOUT_S: Final = 5.0
WRITE_HIGH_WATER: Final = 256 << 10

NDJSON_TYPES: Final = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
        "application/json-lines",
    }
)
# curl -d sends application/x-www-form-urlencoded unless told otherwise; a missing or plain-text
# type is read as JSON too, so a camera that forgets the header still gets its events stored.
JSON_TYPES: Final = frozenset(
    {"application/json", "text/json", "text/plain", "application/x-www-form-urlencoded", ""}
)

BodyKind = Literal["json", "lines"]


class HttpIngestError(Exception):
    """The HTTP ingest cannot start; the message is one sentence saying why."""


class BodyError(ValueError):
    """A request body that is not events at all (answered 400)."""


def body_kind(content_type: str) -> BodyKind | None:
    """How to read a body of this Content-Type: JSON, JSON lines, or None (unsupported)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        return "lines"
    if media in JSON_TYPES or media.endswith("+json"):
        return "json"
    return None


def split_events(body: bytes, kind: BodyKind) -> list[bytes]:
    """The body's events as wire lines, in order, for `Listener.submit` to validate.

    JSON: one object (the body itself), an array (each element's own bytes, not re-encoded),
    or, when the body is not one JSON value, JSON lines. Lines: each non-blank line. Nothing
    is validated here beyond the framing: a bad event is the writer's to reject, with the
    message a TCP line would get. Raises BodyError when the body holds no events at all.
    """
    if kind == "json":
        try:
            whole = msgspec.json.decode(body, type=msgspec.Raw)
        except msgspec.DecodeError as error:
            lines = _json_lines(body)
            if len(lines) > 1:
                return lines
            if not lines:
                raise BodyError(
                    "body: empty (send an event object, an array or JSON lines)"
                ) from None
            raise BodyError(f"body: not valid JSON ({error})") from None
        text = bytes(whole)
        if text.startswith(b"["):
            elements = msgspec.json.decode(text, type=list[msgspec.Raw])
            return [bytes(element) for element in elements]
        if text.startswith(b"{"):
            return [text]
        raise BodyError("body: must be an event object, an array of events, or JSON lines")
    lines = _json_lines(body)
    if not lines:
        raise BodyError("body: empty (send one event object per line)")
    return lines


def _json_lines(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line.strip()]


def batch_status(replies: Sequence[dict[str, Any]]) -> int:
    """The response code for these event statuses (see the module's docstring)."""
    rejected = sum(1 for reply in replies if reply.get("status") == "rejected")
    if rejected == 0:
        return 200
    return 422 if rejected == len(replies) else 207


def batch_body(replies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON response of a POST: counts, then every event's status in order."""
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for reply in replies:
        status = reply.get("status")
        if status in counts:
            counts[status] += 1
    return {**counts, "events": list(replies)}


class HttpIngest:
    """The HTTP endpoint of a running listener: start it after the listener, stop it before."""

    def __init__(self, settings: Settings, listener: Listener) -> None:
        self.settings = settings.ingest.http
        self.listener = listener
        self.token = settings.ingest.http.token or settings.ingest.token
        """The bearer token a POST must carry (empty: none)."""
        self._allow = AllowList(settings.ingest.allow)  # the TCP port's allow-list, here too
        self._server: asyncio.Server | None = None
        self._connections: set[HttpConnection] = set()
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self.stopping = False
        self.port = 0
        """The bound port (useful with port 0)."""

    @property
    def host(self) -> str:
        """The address the endpoint binds."""
        return self.settings.host

    async def start(self) -> None:
        """Bind the port; raises HttpIngestError with one sentence when it cannot."""
        http = self.settings
        if not is_loopback(http.host) and not self.token:
            raise HttpIngestError(
                f"refusing to serve HTTP ingest on {http.host} without a token: set "
                "ingest.http.token or ingest.token, or use host 127.0.0.1"
            )
        host = "127.0.0.1" if http.host == "localhost" else http.host
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: HttpConnection(self), host, http.port or 0, backlog=256
            )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                why = "the port is already in use; choose another [ingest.http] port"
            else:
                why = str(error.strerror or error)
            raise HttpIngestError(
                f"cannot serve HTTP ingest on {http.host}:{http.port}: {why}"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("HTTP ingest on %s:%d (POST %s)", http.host, self.port, EVENTS_PATH)

    async def stop(self) -> None:
        """Stop accepting, answer the requests already received, close every connection."""
        if self._server is None or self.stopping:
            return
        self.stopping = True
        self._server.close()
        for conn in list(self._connections):
            conn.shut_down()
        try:
            await asyncio.wait_for(self._all_closed.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            for conn in list(self._connections):
                conn.abort()
        await self._server.wait_closed()

    async def __aenter__(self) -> HttpIngest:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- what connections ask of the endpoint -------------------------------------------------

    def register(self, conn: HttpConnection) -> bool:
        """Count a new connection; False when it is one too many (it stays counted)."""
        self._connections.add(conn)
        self._all_closed.clear()
        return len(self._connections) <= self.settings.max_connections and not self.stopping

    def not_allowed(self, address: str, peer: str) -> str | None:
        """The refusal of an address outside `[ingest] allow` (audited), or None."""
        if self._allow.allows(address):
            return None
        refusal = f"{NOT_ALLOWED}: {address} is not in [ingest] allow"
        self.listener.audit.record("peer_refused", peer, refusal)
        return refusal

    def unregister(self, conn: HttpConnection) -> None:
        """The connection has closed."""
        self._connections.discard(conn)
        if not self._connections:
            self._all_closed.set()

    def authorized(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        """True when no token is configured or the request carries it as a bearer token."""
        if not self.token:
            return True
        expected = self.token.encode()
        for name, value in headers:
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), expected):
                    return True
        return False

    def note_refused(self, peer: str, error: str) -> None:
        """Count a refused request as the TCP port counts a refused connection."""
        self.listener.note_rejection(peer, f"POST {EVENTS_PATH}".encode(), error)

    def health(self) -> tuple[int, dict[str, Any]]:
        """`GET /healthz`: 200 while the listener runs and its store commits, else 503."""
        listener = self.listener
        running = listener.running and not self.stopping
        failing = listener.last_commit_failed
        last = listener.last_commit_at
        ok = running and not failing
        return (200 if ok else 503), {
            "status": "ok" if ok else "unavailable",
            "listener": "running" if running else "stopped",
            "store": "failing" if failing else "ok",
            "last_commit_age_s": None if last is None else round(time.monotonic() - last, 3),
            "pending_lines": listener.stats().pending,
        }


TimerKind = Literal["idle", "request"]


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 client connection: h11 parses, one request at a time, keep-alive."""

    def __init__(self, host: HttpIngest) -> None:
        self._host = host
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._transport: asyncio.Transport | None = None
        self.peer = "http ?"
        self._request: h11.Request | None = None
        self._path = ""
        self._body = bytearray()
        self._busy = False  # a request is being stored; the next one waits
        self._finishing = False  # the last response is written; input is dropped
        self._closed = False
        self._write_paused = False
        self._read_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind: TimerKind | None = None
        self._task: asyncio.Task[None] | None = None

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"http {peer[0]}:{peer[1]}" if isinstance(peer, tuple) else f"http {peer}"
        refusal = self._host.not_allowed(
            str(peer[0] if isinstance(peer, tuple) else peer), self.peer
        )
        if refusal is not None:
            self._close_with(403, {"error": refusal})  # before a byte of the request is read
            return
        if not self._host.register(self):
            self._close_with(503, {"error": "connection: too many connections; try again later"})
            return
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._arm("idle")

    def data_received(self, data: bytes) -> None:
        if self._finishing or self._closed:
            return
        if self._timer_kind == "idle":
            # The clock of a request runs from its first byte, not its last (slow clients).
            self._arm("request")
        self._h11.receive_data(data)
        self._advance()

    def eof_received(self) -> bool:
        if self._finishing or self._closed:
            return False
        self._h11.receive_data(b"")
        self._advance()
        # Keep our half open while a request the client sent before its EOF is answered.
        return self._busy

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_timer()
        self._host.unregister(self)

    def pause_writing(self) -> None:
        # The client is not reading its responses: take no new request until it does.
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._advance()

    # control from the endpoint

    def shut_down(self) -> None:
        """Close when idle; else answer the request in progress, then close."""
        if not self._busy and self._request is None and not self._finishing:
            self._close_quietly()

    def abort(self) -> None:
        """Drop the connection now."""
        if self._transport is not None:
            self._transport.abort()

    # requests in

    def _advance(self) -> None:
        """Handle what h11 has parsed, up to the next request that must wait for a commit."""
        while not (self._busy or self._finishing or self._closed or self._write_paused):
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as error:
                status = error.error_status_hint
                self._close_with(status, {"error": f"http: {error}"})
                return
            if event is h11.NEED_DATA:
                self._set_reading(True)
                return
            if event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._on_request(event)
            elif isinstance(event, h11.Data):
                self._on_data(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._on_end()
            elif isinstance(event, h11.ConnectionClosed):
                self._close_quietly()
                return

    def _on_request(self, request: h11.Request) -> None:
        path = request.target.split(b"?", 1)[0].decode("latin-1")
        method = request.method
        host = self._host
        if path == HEALTH_PATH:
            if method not in (b"GET", b"HEAD"):
                self._close_with(405, {"error": f"{HEALTH_PATH}: use GET"}, allow="GET, HEAD")
                return
        elif path == EVENTS_PATH:
            if method != b"POST":
                self._close_with(405, {"error": f"{EVENTS_PATH}: use POST"}, allow="POST")
                return
            if not host.authorized(request.headers):
                error = "auth: missing or wrong bearer token (Authorization: Bearer <token>)"
                host.note_refused(self.peer, error)
                self._close_with(401, {"error": error}, bearer=True)
                return
            length = _header(request.headers, b"content-length")
            limit = host.settings.max_body_bytes
            if length is not None and int(length) > limit:
                self._close_with(413, {"error": f"body: larger than {limit} bytes"})
                return
            if body_kind(_header(request.headers, b"content-type") or "") is None:
                self._close_with(
                    415,
                    {"error": "body: send application/json or application/x-ndjson"},
                )
                return
        else:
            self._close_with(
                404, {"error": f"no such path (POST {EVENTS_PATH}, GET {HEALTH_PATH})"}
            )
            return
        self._request = request
        self._path = path
        self._body = bytearray()
        if self._h11.they_are_waiting_for_100_continue:
            self._write(self._h11.send(h11.InformationalResponse(status_code=100, headers=[])))

    def _on_data(self, data: bytes) -> None:
        limit = self._host.settings.max_body_bytes
        if len(self._body) + len(data) > limit:  # a chunked body has no length to check first
            self._close_with(413, {"error": f"body: larger than {limit} bytes"})
            return
        self._body += data

    def _on_end(self) -> None:
        self._cancel_timer()
        request = self._request
        assert request is not None
        if self._path == HEALTH_PATH:
            status, payload = self._host.health()
            self._respond(status, payload, head=request.method == b"HEAD")
            return
        self._busy = True
        self._set_reading(False)
        body, self._body = bytes(self._body), bytearray()
        kind = body_kind(_header(request.headers, b"content-type") or "")
        assert kind is not None  # checked when the headers came
        self._task = asyncio.get_running_loop().create_task(self._store(body, kind))

    async def _store(self, body: bytes, kind: BodyKind) -> None:
        """Split the body into events, store them through the listener, answer."""
        try:
            try:
                lines = split_events(body, kind)
            except BodyError as error:
                self._respond(400, {"error": str(error)})
                return
            if not lines:
                self._respond(200, batch_body([]))
                return
            try:
                replies = await self._host.listener.submit(lines, self.peer)
            except ListenerError as error:
                self._close_with(
                    503, {"error": f"not stored, send again: {error}"}, retry_after=True
                )
                return
            self._respond(batch_status(replies), batch_body(replies))
        except Exception:
            log.exception("HTTP ingest: answering %s failed", self.peer)
            self._close_with(500, {"error": "internal error; nothing of this request was lost"})

    # responses out

    def _respond(self, status: int, payload: dict[str, Any], *, head: bool = False) -> None:
        """Answer the current request through h11 and go on to the next one (keep-alive)."""
        self._request = None
        self._busy = False
        if self._closed:
            return
        closing = self._host.stopping
        body = _json(payload)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *([("Connection", "close")] if closing else []),
        ]
        reason = HTTPStatus(status).phrase.encode()
        out = self._h11.send(h11.Response(status_code=status, headers=headers, reason=reason))
        if not head:
            out += self._h11.send(h11.Data(data=body))
        out += self._h11.send(h11.EndOfMessage())
        self._write(out)
        if self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is not h11.DONE:
            self._finish()
            return
        self._h11.start_next_cycle()
        self._arm("idle")
        # Requests the client pipelined behind this one are already in h11's buffer.
        asyncio.get_running_loop().call_soon(self._advance)

    def _close_with(
        self,
        status: int,
        payload: dict[str, Any],
        *,
        allow: str | None = None,
        bearer: bool = False,
        retry_after: bool = False,
    ) -> None:
        """Answer with an error and close: the rest of the request is not read."""
        self._request = None
        self._busy = False
        if self._closed or self._finishing:
            return
        body = _json(payload)
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if allow is not None:
            lines.append(f"Allow: {allow}")
        if bearer:
            lines.append('WWW-Authenticate: Bearer realm="factory-tui"')
        if retry_after:
            lines.append("Retry-After: 1")
        self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self._finish()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(data)

    def _finish(self) -> None:
        """The last response is written: half-close, drop further input, close soon."""
        transport = self._transport
        if self._finishing or self._closed or transport is None:
            return
        self._finishing = True
        self._cancel_timer()
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()  # sent once the response before it is flushed
        self._set_reading(True)
        self._timer = asyncio.get_running_loop().call_later(LINGER_S, transport.close)

    def _close_quietly(self) -> None:
        self._finishing = True
        self._cancel_timer()
        if self._transport is not None:
            self._transport.close()

    # reading and the slow-client clock

    def _set_reading(self, on: bool) -> None:
        transport = self._transport
        if transport is None or self._closed or on != self._read_paused:
            return
        self._read_paused = not on
        if on:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _arm(self, kind: TimerKind) -> None:
        self._cancel_timer()
        self._timer_kind = kind
        timeout = self._host.settings.timeout_s
        self._timer = asyncio.get_running_loop().call_later(timeout, self._expired)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_kind = None

    def _expired(self) -> None:
        kind, self._timer, self._timer_kind = self._timer_kind, None, None
        if kind == "idle":
            self._close_quietly()  # an idle keep-alive connection: nothing to answer
            return
        timeout = self._host.settings.timeout_s
        self._close_with(408, {"error": f"request: not received within {timeout:g} s"})


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"
