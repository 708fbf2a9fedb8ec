"""One camera connection of the ingest listener, on the event loop.

A `Connection` frames the peer's bytes into lines, checks the auth line, hands the lines to
its listener and writes the replies it gets back, in order. Everything here runs in the event
loop thread; it only frames lines and writes replies, and never blocks.

Memory stays bounded whatever the peer does: the framer holds at most one line plus one read
chunk, and the connection stops being read while its unacknowledged input costs more than
`conn_pending_bytes` (a line costs its bytes plus `LINE_OVERHEAD_BYTES`, so a flood of tiny
lines pauses as early as a flood of big ones), or while the listener's total is over its bound
and this connection holds more than `FAIR_SHARE_BYTES` of it (a flood never locks out a camera
sending a few lines). While its replies pile up unread (the transport's write buffer passes
`WRITE_HIGH_WATER`) it is not read either, but a peer that reads none of them for
`ONE_WAY_AFTER_S` is one-way (a log shipper: rsyslog, fluent-bit, `socat -u`): from then on its
replies are dropped and counted, and it is read as fast as its lines are stored. A peer that
trickles an unfinished line is cut after `idle_timeout_s` (the slowloris guard). Once every
line has its reply the connection half-closes and lingers, so a reset cannot destroy replies
the peer has received but not read yet.

A connection knows its listener only as a `ConnectionHost`, the few methods below, so this
module does not import the listener; the listener calls `end`, `abort`, `update_reading`,
`deliver` and `fail`, and nothing else of it.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import time
from collections.abc import Sequence
from typing import Final, Protocol

from factory_tui.config import Settings
from factory_tui.ingest.access import HeldLines, security_of, tls_subject
from factory_tui.ingest.protocol import (
    AUTH_MISSING,
    AUTH_WRONG,
    AUTHENTICATED,
    EXCERPT_CHARS,
    NOT_ALLOWED,
    TOO_MANY_CONNECTIONS,
    Line,
    LineFramer,
    Refused,
    read_auth,
    rejected,
)

WRITE_HIGH_WATER: Final = 256 << 10
# After its last reply a connection is half-closed and what the peer still sends is read and
# dropped for up to this long: closing a socket with unread input sends a reset, which can
# destroy replies the peer has received but not read yet.
LINGER_S: Final = 1.0
# What a pending line costs beyond its own bytes, in Python objects, from framing to reply
# (measured with tracemalloc by `benchmarks/flood.py --cost`): about 40 B while queued (a bytes
# object's header and a list slot), then while its batch commits some 110 B more for a short
# garbage line (its rejection record; replies are shared) or 760 B for an event (its row).
# One figure between the two: a mebibyte of 2-byte garbage lines counts as 200 MiB (it costs
# some 60 MiB), no longer as one mebibyte.
LINE_OVERHEAD_BYTES: Final = 400
# Under this much pending input a connection is read even while the total is over its bound:
# a camera sending a few lines is never stuck behind another peer's flood.
FAIR_SHARE_BYTES: Final = 256 << 10
# A peer whose replies pile up with none of them read for this long is one-way: it is read on
# and its replies are dropped.
ONE_WAY_AFTER_S: Final = 2.0
TCP_CLOSE: Final = 7  # tcp_info.tcpi_state of a connection the peer has reset (Linux)


def pending_cost(nbytes: int, lines: int) -> int:
    """What `lines` lines of `nbytes` bytes cost while pending, for the memory budgets."""
    return nbytes + LINE_OVERHEAD_BYTES * lines


class ReplySink(Protocol):
    """Where the replies of some queued lines go: a TCP connection or a `submit` call."""

    peer: str

    def deliver(self, replies: list[bytes], count: int, nbytes: int) -> None:
        """Replies for `count` of this sink's lines (in order), `nbytes` of input (its cost)."""

    def fail(self, message: str, count: int, nbytes: int) -> None:
        """The batch holding `count` of this sink's lines could not be stored."""


class ConnectionHost(Protocol):
    """What a connection needs from its listener. Every method runs in the event loop."""

    @property
    def settings(self) -> Settings:
        """The ingest settings: line limit, token, connection limit, idle timeout."""

    @property
    def conn_pending_bytes(self) -> int:
        """Unacknowledged input (its `pending_cost`) past which a connection stops being read."""

    @property
    def linger_s(self) -> float:
        """How long a finished connection reads and drops input before it closes."""

    @property
    def one_way_after_s(self) -> float:
        """How long replies may pile up with none read before the peer counts as one-way."""

    def register(self, conn: Connection) -> str | None:
        """Count a new connection; why it is refused (it stays counted until it closes), or None."""

    def unregister(self, conn: Connection) -> None:
        """The connection has closed."""

    def enqueue(self, sink: ReplySink, items: Sequence[Line], nbytes: int) -> None:
        """Queue lines for a batch; their replies go to `sink.deliver` once it commits."""

    def note_rejection(self, peer: str, line: bytes, error: str) -> None:
        """Count a line the connection answered itself (the auth refusal)."""

    def over_total_budget(self) -> bool:
        """True while the pending input of all connections together is over its bound."""

    def watch_paused(self, conn: Connection, paused: bool) -> None:
        """While `paused`, call `conn.update_reading()` after every commit."""

    def note_one_way(self, conn: Connection) -> None:
        """The peer reads none of its replies: from now on they are dropped."""

    def note_replies_dropped(self, count: int) -> None:
        """`count` replies of a one-way connection were dropped."""


class Connection(asyncio.Protocol):
    """One camera connection: frames lines, queues them, writes replies in order."""

    def __init__(self, host: ConnectionHost, *, one_way_port: bool = False) -> None:
        self._host = host
        # Accepted on the one-way port: one-way from the start, and nothing is ever written.
        self._silent = one_way_port
        self._framer = LineFramer(host.settings.ingest.max_line_bytes)
        self._transport: asyncio.Transport | None = None
        self.peer = "?"
        self._authenticated = not host.settings.ingest.token
        self._lines_seen = 0
        self._unacked_lines = 0
        self._unacked_cost = 0
        self._read_paused = False
        self._write_paused = False
        self._one_way = one_way_port  # reads no replies: they are dropped, it is read on
        self._reply_bytes = 0  # reply bytes handed to the transport
        self._reply_mark = 0  # of those, gone to the peer when the one-way watch started
        self._reply_watch: asyncio.TimerHandle | None = None
        self._ending = False  # no more input wanted: close once every line is answered
        self._finishing = False  # every line answered, our side half-closed, input dropped
        self._peer_eof = False
        self._closed = False
        self._linger: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        # [ingest] max_events_per_s: lines past the rate are held, and reading stops, until
        # the bucket lets them through (the timer runs while any are held).
        self._held = HeldLines.per_connection(
            host.settings.ingest.max_events_per_s, time.monotonic()
        )
        self._throttle: asyncio.TimerHandle | None = None
        self.tls_subject = ""
        """The subject of the peer's TLS client certificate ('' without one)."""
        self.security = "plain TCP"
        """How the connection is secured: plain TCP, TLS, TLS with a client certificate."""

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.tls_subject = tls_subject(transport)
        # Read now: a closed TLS transport no longer answers get_extra_info.
        self.security = security_of(transport, self.tls_subject)
        why = self._host.register(self)
        if why is not None:
            refusal = (
                why
                if why.startswith(NOT_ALLOWED)
                else f"{TOO_MANY_CONNECTIONS} ({why}); try again later"
            )
            transport.write(rejected(refusal))
            self._ending = True
            self._finish()
            return
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        if self._ending:
            return  # answered what we wanted; the rest is dropped
        items = self._framer.feed(data)
        self._watch_idle(bool(items))
        if items:
            self._take(items, len(data))

    def eof_received(self) -> bool:
        self._peer_eof = True
        if self._finishing:
            return False  # the peer has our last reply and is done too: close
        if not self._ending:
            items = self._framer.finish()
            if items:
                self._take(items, sum(len(item) for item in items if isinstance(item, bytes)))
            self.end()
        # True keeps our half open so the last replies can still be written.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._ending = True
        self._cancel_idle()
        if self._throttle is not None:
            self._throttle.cancel()
        if self._linger is not None:
            self._linger.cancel()
        self._cancel_reply_watch()
        self._host.unregister(self)

    def pause_writing(self) -> None:
        # Replies are piling up unread: stop reading until the peer catches up, or until it
        # shows that it never will (one-way).
        self._write_paused = True
        self._watch_replies()
        self.update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._cancel_reply_watch()
        self.update_reading()

    # lines in

    def _take(self, items: list[Line], nbytes: int) -> None:
        first = self._lines_seen == 0
        self._lines_seen += len(items)
        if first:
            items = self._check_auth(items)
            if not items:
                return
        self._unacked_lines += len(items)
        if self._held is not None:
            self._held.hold(items, nbytes)
            self._release_held()
            return
        self._queue(items, nbytes)
        self.update_reading()

    def _queue(self, items: list[Line], nbytes: int) -> None:
        cost = pending_cost(nbytes, len(items))
        self._unacked_cost += cost
        self._host.enqueue(self, items, cost)

    def _release_held(self, *, everything: bool = False) -> None:
        """Queue the held lines the rate lets through now; wait for the rest."""
        assert self._held is not None
        if self._throttle is not None:
            self._throttle.cancel()
            self._throttle = None
        if self._closed:
            return
        items, nbytes = self._held.release(time.monotonic(), everything=everything)
        if items:
            self._queue(items, nbytes)
        if len(self._held):
            loop = asyncio.get_running_loop()
            self._throttle = loop.call_later(self._held.wait_s(), self._release_held)
        self.update_reading()

    def _check_auth(self, items: list[Line]) -> list[Line]:
        """Handle the connection's first line: the auth line, or a refusal when one is due."""
        assert self._transport is not None
        head = items[0]
        token = read_auth(head) if isinstance(head, bytes) else None
        expected = self._host.settings.ingest.token
        if token is not None and (
            not expected or hmac.compare_digest(token.encode(), expected.encode())
        ):
            # Without a configured token an auth line is harmless: answer it, go on.
            self._authenticated = True
            if not self._silent:
                self._transport.write(AUTHENTICATED)
            return items[1:]
        if self._authenticated:
            return items
        error = AUTH_WRONG if token is not None else AUTH_MISSING
        line = head.head if isinstance(head, Refused) else head
        self._host.note_rejection(self.peer, line, error)
        self._transport.write(rejected(error))
        self._ending = True
        self._finish()
        return []

    # what the audit trail says of this connection

    def summary(self) -> str:
        """Lines received and how the peer authenticated, for the audit trail on close."""
        if self._host.settings.ingest.token:
            auth = "token" if self._authenticated else "no token"
        else:
            auth = "client certificate" if self.tls_subject else "none needed"
        lines = f"{self._lines_seen} line{'' if self._lines_seen == 1 else 's'}"
        return f"{lines}; auth {auth}; {self.security}"

    # flow control

    def update_reading(self) -> None:
        """Pause or resume reading from the peer as the limits now say."""
        if self._transport is None or self._closed:
            return
        host = self._host
        if self._finishing:
            return  # reading on, to drop what the peer still sends
        want_pause = (
            self._ending
            or (self._write_paused and not self._one_way)
            or self._throttle is not None
            or self._unacked_cost > host.conn_pending_bytes
            or (self._unacked_cost > FAIR_SHARE_BYTES and host.over_total_budget())
        )
        if want_pause and not self._read_paused:
            self._read_paused = True
            self._transport.pause_reading()
            if not self._ending:
                host.watch_paused(self, True)
        elif not want_pause and self._read_paused:
            self._read_paused = False
            self._transport.resume_reading()
            host.watch_paused(self, False)

    # one-way peers

    @property
    def one_way(self) -> bool:
        """True once the peer has shown that it reads none of its replies."""
        return self._one_way

    @property
    def stored_after_close(self) -> bool:
        """Whether its lines still queued when it closes are stored all the same.

        A peer that ended its stream (EOF) or reads no replies cannot learn what arrived and
        will not send it again; one that vanished mid-stream had none of them acknowledged and
        will send them again, so they are dropped unread (a stop then takes seconds, not minutes).
        """
        return self._peer_eof or self._one_way

    def vanished(self) -> bool:
        """True when the peer reset the connection while it was not being read.

        Not reading, the loop would notice only when reading resumed, after the lines queued
        for a peer that is gone had been validated and stored for nothing; the socket's TCP
        state says so at once (Linux; elsewhere this is always False).
        """
        if not self._read_paused or self._closed or self._transport is None:
            return False
        sock = self._transport.get_extra_info("socket")
        try:
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        except (AttributeError, OSError):
            return False
        return bool(state == TCP_CLOSE)

    def _watch_replies(self) -> None:
        if self._one_way or self._reply_watch is not None or self._transport is None:
            return
        self._reply_mark = self._replies_sent()
        loop = asyncio.get_running_loop()
        self._reply_watch = loop.call_later(self._host.one_way_after_s, self._replies_checked)

    def _cancel_reply_watch(self) -> None:
        if self._reply_watch is not None:
            self._reply_watch.cancel()
            self._reply_watch = None

    def _replies_sent(self) -> int:
        """Reply bytes the kernel has taken (it takes more only as the peer reads)."""
        assert self._transport is not None
        return self._reply_bytes - self._transport.get_write_buffer_size()

    def _replies_checked(self) -> None:
        self._reply_watch = None
        if not self._write_paused or self._closed or self._transport is None:
            return
        if self._replies_sent() > self._reply_mark:
            self._watch_replies()  # it reads, if slowly: keep waiting for it
            return
        self._one_way = True
        self._host.note_one_way(self)
        self.update_reading()

    # the slowloris guard

    def _watch_idle(self, completed_lines: bool) -> None:
        # The clock runs from the start of the current unfinished line, not from its last byte:
        # a peer trickling one byte a minute must not hold the connection forever.
        if completed_lines or not self._framer.holds_partial_line:
            self._cancel_idle()
        if self._framer.holds_partial_line and self._idle_timer is None:
            loop = asyncio.get_running_loop()
            timeout = self._host.settings.ingest.idle_timeout_s
            self._idle_timer = loop.call_later(timeout, self._idle_expired)

    def _cancel_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if self._ending or not self._framer.holds_partial_line:
            return
        if self._read_paused:
            # We stopped reading, so the unfinished line is our doing: give it another period.
            self._watch_idle(False)
            return
        timeout = self._host.settings.ingest.idle_timeout_s
        unfinished = self._framer.finish()
        head = unfinished[0] if unfinished and isinstance(unfinished[0], bytes) else b""
        error = f"line: not finished within {timeout:g} s; closing the connection"
        self._take([Refused(head[:EXCERPT_CHARS], error)], 0)
        self.end()

    # replies out

    def end(self) -> None:
        """Read no more; close once every line received so far has its reply."""
        self._ending = True
        self._cancel_idle()
        if self._held is not None and len(self._held):
            self._release_held(everything=True)  # no more to slow down: store them now
        self.update_reading()
        if self._unacked_lines == 0:
            self._finish()

    def abort(self) -> None:
        """Drop the connection now, whatever is still unanswered or unsent."""
        if self._transport is not None:
            self._transport.abort()

    def _finish(self) -> None:
        """Every line is answered: half-close, drop further input, close when the peer does."""
        transport = self._transport
        if self._finishing or self._closed or transport is None:
            return
        self._finishing = True
        self._cancel_idle()
        self._host.watch_paused(self, False)
        if self._one_way and transport.get_write_buffer_size():
            transport.abort()  # its unread replies would hold the socket open for nothing
            return
        if self._peer_eof or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()  # sent once the replies before it are flushed
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self._linger = asyncio.get_running_loop().call_later(self._host.linger_s, self._linger_over)

    def _linger_over(self) -> None:
        self._linger = None
        if self._transport is None or self._closed:
            return
        if self._transport.get_write_buffer_size():
            # The peer is not even reading its replies: it had its chance.
            self._transport.abort()
        else:
            self._transport.close()

    def deliver(self, replies: list[bytes], count: int, nbytes: int) -> None:
        """Write the replies of `count` of this connection's lines (`nbytes` of input)."""
        self._unacked_lines -= count
        self._unacked_cost -= nbytes
        if self._closed or self._transport is None:
            return
        if self._one_way:
            # Nothing reads them. Dropping every reply from here on keeps the ones written an
            # in-order prefix, never a stream with a gap in it.
            if not self._silent:
                self._host.note_replies_dropped(len(replies))
        else:
            data = b"".join(replies)
            self._reply_bytes += len(data)
            self._transport.write(data)
        if self._ending and self._unacked_lines == 0:
            self._finish()
        else:
            self.update_reading()

    def fail(self, message: str, count: int, nbytes: int) -> None:
        """The batch holding `count` of this connection's lines was not stored: drop it."""
        # Nothing of the batch is acknowledged; dropping the connection tells the camera to
        # send again (safe: duplicates are detected).
        self._unacked_lines -= count
        self._unacked_cost -= nbytes
        if self._transport is not None and not self._closed:
            self._ending = True
            self._transport.abort()
