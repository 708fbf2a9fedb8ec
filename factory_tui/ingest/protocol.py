"""The wire protocol of the ingest port: line framing, validation, replies and the auth line.

Pure functions and small classes with no I/O, shared by the listener side (listener.py,
connection.py, writer.py) and the camera-side client (client.py). DESIGN.md ("Event", "Reply
protocol") is the reference.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Final

import msgspec

from factory_tui.models import (
    EVENT_TYPES,
    MAX_ID_LENGTH,
    EventError,
    NewEventRow,
    parse_event,
    prepare_row,
    to_utc_us,
)

#: The reply lines, newline included: the listener writes these bytes as they are.
ACCEPTED: Final = b'{"status":"accepted"}\n'
DUPLICATE: Final = b'{"status":"duplicate"}\n'
AUTHENTICATED: Final = b'{"status":"authenticated"}\n'

_KNOWN_REPLIES: Final[dict[bytes, dict[str, Any]]] = {
    ACCEPTED.rstrip(b"\n"): {"status": "accepted"},
    DUPLICATE.rstrip(b"\n"): {"status": "duplicate"},
    AUTHENTICATED.rstrip(b"\n"): {"status": "authenticated"},
}

#: How much of a bad line is kept for the console's list of recent rejections.
EXCERPT_CHARS: Final = 120


def rejected(error: str) -> bytes:
    """The reply line for a rejected line, e.g. `{"status":"rejected","error":"..."}`."""
    return (
        json.dumps({"status": "rejected", "error": error}, separators=(",", ":")).encode() + b"\n"
    )


def decode_reply(line: bytes) -> dict[str, Any]:
    """One reply line as a dict; a line that is not a JSON object raises ValueError."""
    line = line.rstrip(b"\r\n")
    known = _KNOWN_REPLIES.get(line)
    if known is not None:
        # A copy, so a caller mutating its reply cannot corrupt the shared template.
        return dict(known)
    value = json.loads(line)
    if not isinstance(value, dict) or "status" not in value:
        raise ValueError(f"not a reply line: {line[:80]!r}")
    return value


#: The largest count SQLite can store (a signed 64-bit integer).
MAX_COUNT: Final = 2**63 - 1


def parse_row(line: bytes, tz: tzinfo, received_us: int) -> NewEventRow:
    """Validate one received line; the row to store, or EventError with a one-line message.

    Well-formed lines of the usual shape take a fast path (msgspec, about 5 times cheaper
    per event than pydantic plus building the row); everything else, and every error message,
    goes through the pydantic model `WireEvent`, which stays the definition of a valid event.
    The fast path accepts a subset of what pydantic accepts and yields the same row, hash
    included, so dedup does not depend on the path (tests/ingest/test_protocol.py checks it).
    """
    row = _fast_row(line, tz, received_us)
    if row is not None:
        return row
    if not line.strip():
        raise EventError("line: empty (one JSON object per line)")
    event = parse_event(line, tz)
    if event.count > MAX_COUNT:
        raise EventError(f"count: must be at most {MAX_COUNT}, got {event.count}")
    return prepare_row(event, received_us)


class _FastEvent(msgspec.Struct, forbid_unknown_fields=True):
    """The wire event's shape, for msgspec; the rules are checked in `_fast_row`."""

    timestamp: str
    worker_id: str
    workstation_id: str
    event_type: str
    confidence: float
    count: int = 0
    model_version: str | None = None
    camera_id: str | None = None


_decode_fast = msgspec.json.Decoder(_FastEvent).decode
_quote: Final = json.encoder.encode_basestring_ascii
# The usual spellings only: date, "T", time, up to 6 fraction digits, "Z" or +HH:MM or naive,
# ASCII digits. Anything else (7+ digits, "t", a space, basic format...) goes to pydantic.
_PLAIN_TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
_EVENT_TYPES: Final = frozenset(EVENT_TYPES)


def _plain_id(value: str | None) -> bool:
    # ASCII with no surrounding whitespace: pydantic would keep it exactly as it is.
    return value is None or (
        0 < len(value) <= MAX_ID_LENGTH and value.isascii() and value.strip() == value
    )


_QUOTED_CACHE_SIZE: Final = 4_096
_quoted: dict[str | None, str] = {}
"""Plain ids, event types and model versions seen (they repeat from event to event) -> their
JSON text in the canonical form; at most `_QUOTED_CACHE_SIZE`, then emptied."""


def _quoted_plain(value: str | None) -> str | None:
    """`value` as the canonical form writes it (`null` for None) when `_plain_id`, else None."""
    quoted = _quoted.get(value)
    if quoted is None:
        if not _plain_id(value):
            return None
        if len(_quoted) >= _QUOTED_CACHE_SIZE:
            _quoted.clear()
        quoted = _quoted[value] = "null" if value is None else _quote(value)
    return quoted


def _fast_row(line: bytes, tz: tzinfo, received_us: int) -> NewEventRow | None:
    """The row when the line is valid and plainly spelled; None to let pydantic decide."""
    try:
        raw = _decode_fast(line)
    except msgspec.MsgspecError:
        return None
    count = raw.count
    confidence = raw.confidence
    if (
        raw.event_type not in _EVENT_TYPES
        or not 0.0 <= confidence <= 1.0
        or not 0 <= count <= MAX_COUNT
        or (count < 1 if raw.event_type == "product_count" else count != 0)
        or (worker := _quoted_plain(raw.worker_id)) is None
        or (station := _quoted_plain(raw.workstation_id)) is None
        or (model := _quoted_plain(raw.model_version)) is None
        or _quoted_plain(raw.camera_id) is None
        or _PLAIN_TIMESTAMP.fullmatch(raw.timestamp) is None
    ):
        return None
    try:
        moment = datetime.fromisoformat(raw.timestamp)
    except ValueError:
        return None  # e.g. February 30th: pydantic words the error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    if moment.year in (1, 9999):
        return None  # it may leave years 1-9999 in UTC: pydantic words the error
    ts_us = to_utc_us(moment)
    # canonical_form's text, its repeating parts quoted once (tests/ingest/test_protocol.py
    # checks both paths give the same hash); a float's repr needs no JSON escaping.
    canonical = f'[{ts_us},{worker},{station},"{raw.event_type}","{confidence!r}",{count},{model}]'
    return NewEventRow(
        ts_us,
        raw.worker_id,
        raw.workstation_id,
        raw.event_type,
        confidence,
        count,
        raw.model_version,
        raw.camera_id,
        received_us,
        # The same digest as WireEvent.event_hash(), over the same canonical text.
        hashlib.sha256(canonical.encode("ascii")).hexdigest(),
    )


def auth_line(token: str) -> bytes:
    """The first line a client sends when the listener has a token (newline included)."""
    return json.dumps({"auth": token}, separators=(",", ":")).encode() + b"\n"


def read_auth(line: bytes) -> str | None:
    """The token of an auth line `{"auth": "<token>"}`, or None when the line is not one."""
    try:
        value = json.loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("auth"), str):
        token: str = value["auth"]
        return token
    return None


def excerpt(line: bytes, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable rendering of a received line for logs and the console."""
    text = line[: limit * 4].decode("utf-8", errors="replace").rstrip("\r\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class Refused:
    """Stands in the line stream for a line refused before parsing (too long, unfinished).

    It travels through the batch like any line so that its reply keeps its place in order.
    """

    head: bytes
    """The first bytes of the line, kept only to show which line it was."""
    error: str
    """The rejection message."""


#: One framed line on its way to the writer: its bytes, or the `Refused` marker in its place.
Line = bytes | Refused


def too_long_error(limit: int) -> str:
    """The rejection message for a line over `limit` bytes."""
    return f"line: longer than {limit} bytes (discarded)"


#: Start of the one line a connection over `max_connections` receives before it is closed.
TOO_MANY_CONNECTIONS: Final = "connection: too many connections"
#: The line a connection that failed authentication receives before it is closed.
AUTH_WRONG: Final = "auth: wrong token"
AUTH_MISSING: Final = 'auth: first line must be {"auth":"<token>"}'
#: Start of the line a peer outside `[ingest] allow` receives (its address follows).
NOT_ALLOWED: Final = "connection: address not allowed"
#: Errors that refuse the connection rather than answer a line. None can be mistaken for a
#: validation error, which reads `<field>: <why>` with a field of the event schema.
REFUSALS: Final = (TOO_MANY_CONNECTIONS, AUTH_WRONG, AUTH_MISSING, NOT_ALLOWED)


def refusal_of(reply: dict[str, Any]) -> str | None:
    """The error of a reply that refuses the whole connection, else None."""
    if reply.get("status") != "rejected":
        return None
    error = str(reply.get("error", ""))
    return error if error.startswith(REFUSALS) else None


class LineFramer:
    """Splits a byte stream into lines of at most `max_line_bytes` (newline excluded).

    A longer line is never buffered whole: as soon as the buffered part of a line passes the
    limit it is dropped, a `Refused` marker takes its place in the output, and the rest of the
    line is skipped up to its newline. So a framer holds at most `max_line_bytes` plus one
    chunk, whatever a peer sends.
    """

    __slots__ = ("_discarding", "_max", "_partial")

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._partial = b""
        self._discarding = False

    @property
    def holds_partial_line(self) -> bool:
        """True while a line has started but its newline has not arrived."""
        return bool(self._partial) or self._discarding

    def feed(self, data: bytes) -> list[Line]:
        """The lines completed by `data`, in order; the unfinished tail is kept."""
        out: list[Line] = []
        if self._discarding:
            end = data.find(b"\n")
            if end < 0:
                return out
            self._discarding = False
            data = data[end + 1 :]
        elif self._partial:
            data = self._partial + data
            self._partial = b""
        lines = data.split(b"\n")
        tail = lines.pop()
        limit = self._max
        # The common case, no line over the limit, costs one C-level pass.
        if lines and max(map(len, lines)) > limit:
            error = too_long_error(limit)
            out.extend(
                line if len(line) <= limit else Refused(line[:EXCERPT_CHARS], error)
                for line in lines
            )
        else:
            out.extend(lines)
        if len(tail) > limit:
            out.append(Refused(tail[:EXCERPT_CHARS], too_long_error(limit)))
            self._discarding = True
        else:
            self._partial = tail
        return out

    def finish(self) -> list[Line]:
        """At end of stream: the last line when it had no newline (it still gets a reply)."""
        tail, self._partial = self._partial, b""
        self._discarding = False
        return [tail] if tail else []
