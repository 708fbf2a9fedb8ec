"""The wire protocol of the ingest port: line framing, replies and the auth line.

Pure functions and small classes with no I/O, shared by the listener (server.py) and the
camera-side client (client.py). DESIGN.md, "Reply protocol", is the reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final

from factory_tui.models import EventError, WireEvent, parse_event

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


def parse_line(line: bytes, tz: tzinfo) -> WireEvent:
    """Validate one received line as an event; raise EventError with a one-line message."""
    if not line.strip():
        raise EventError("line: empty (one JSON object per line)")
    return parse_event(line, tz)


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


def too_long_error(limit: int) -> str:
    """The rejection message for a line over `limit` bytes."""
    return f"line: longer than {limit} bytes (discarded)"


#: Start of the one line a connection over `max_connections` receives before it is closed.
TOO_MANY_CONNECTIONS: Final = "connection: too many connections"
#: The line a connection that failed authentication receives before it is closed.
AUTH_WRONG: Final = "auth: wrong token"
AUTH_MISSING: Final = 'auth: first line must be {"auth":"<token>"}'
#: Errors that refuse the connection rather than answer a line. None can be mistaken for a
#: validation error, which reads `<field>: <why>` with a field of the event schema.
REFUSALS: Final = (TOO_MANY_CONNECTIONS, AUTH_WRONG, AUTH_MISSING)


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

    def feed(self, data: bytes) -> list[bytes | Refused]:
        """The lines completed by `data`, in order; the unfinished tail is kept."""
        out: list[bytes | Refused] = []
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

    def finish(self) -> list[bytes | Refused]:
        """At end of stream: the last line when it had no newline (it still gets a reply)."""
        tail, self._partial = self._partial, b""
        self._discarding = False
        return [tail] if tail else []
