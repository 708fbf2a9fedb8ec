"""The ingest listener: cameras' JSON lines in, one reply per line out, batched SQLite commits.

The event loop only frames lines and writes replies. Everything heavy (validation, hashing,
SQLite) runs in one writer thread that owns its own `Store`, so the console can run the
listener inside Textual's loop without its commits blocking the screen. Lines from every
connection (and from `submit`) go into one shared batch, cut every `batch_delay_s` or
`batch_max_lines`; a line's reply is written only after the batch holding it has committed,
and replies keep each connection's order because batches commit one at a time, in order.
Batches cut while a commit is running are committed together by the next one (up to
`merge_max_lines`), and a second thread checkpoints the WAL after each commit, beside the
writer rather than inside its commits.

Memory stays bounded whatever the peers do: a framer holds at most one line plus one read
chunk; a connection whose unacknowledged input passes `conn_pending_bytes`, or whose replies
pile up unread (the transport's write buffer passes its high-water mark), stops being read;
and all connections stop being read while the total pending input passes `total_pending_bytes`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hmac
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, Final

from factory_tui.config import Settings
from factory_tui.ingest.protocol import (
    ACCEPTED,
    AUTH_MISSING,
    AUTH_WRONG,
    AUTHENTICATED,
    DUPLICATE,
    EXCERPT_CHARS,
    TOO_MANY_CONNECTIONS,
    LineFramer,
    Refused,
    decode_reply,
    excerpt,
    parse_row,
    read_auth,
    rejected,
    too_long_error,
)
from factory_tui.models import EventError, NewEventRow, RosterEntry, now_us
from factory_tui.records import IngestStats, Rejection
from factory_tui.storage import Durability, RowError, Store, StoreError, open_store

log = logging.getLogger("factory_tui.ingest")

BATCH_MAX_LINES: Final = 5_000
BATCH_DELAY_S: Final = 0.05
# When the writer falls behind, the batches cut meanwhile commit together, up to this many
# lines: with a random (hash) unique index, a transaction costs roughly one page write per
# page it touches, so fewer, larger transactions under load cost far less per event.
MERGE_MAX_LINES: Final = 50_000
CONN_PENDING_BYTES: Final = 4 << 20
TOTAL_PENDING_BYTES: Final = 32 << 20
WRITE_HIGH_WATER: Final = 256 << 10
RECENT_REJECTIONS: Final = 100
RATE_WINDOW_S: Final = 5.0
CLOSE_TIMEOUT_S: Final = 5.0
# After its last reply a connection is half-closed and what the peer still sends is read and
# dropped for up to this long: closing a socket with unread input sends a reset, which can
# destroy replies the peer has received but not read yet.
LINGER_S: Final = 1.0

Line = bytes | Refused


class ListenerError(Exception):
    """The listener cannot run as configured; the message is one sentence saying why."""


class PortInUseError(ListenerError):
    """The port is taken, typically by the process that owns this database already.

    A console that gets this can open the database read-only as a viewer instead.
    """


# --- the writer thread ------------------------------------------------------------------------


@dataclass(slots=True)
class _Outcome:
    """What the writer thread hands back for one batch."""

    replies: list[bytes]
    accepted: int
    duplicates: int
    rejections: list[tuple[int, str, str]]
    """(index in the batch, line excerpt, error) of every rejected line."""


class _Writer:
    """Validation, hashing and SQLite writes. Every method runs in the writer thread."""

    def __init__(
        self, path: Path, durability: Durability, tz: tzinfo, *, auto_register: bool
    ) -> None:
        self._path = path
        self._durability = durability
        self._tz = tz
        self._auto_register = auto_register
        self._store: Store | None = None
        self._workers: set[str] = set()
        self._stations: set[str] = set()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the writer's store is not open")
        return self._store

    def open(self, workers: Sequence[RosterEntry], stations: Sequence[RosterEntry]) -> None:
        """Open the store in this thread and make sure the configured roster is in it."""
        self._store = open_store(self._path, durability=self._durability, bulk_writer=True)
        if workers or stations:
            self._store.upsert_roster(workers, stations)
        self._load_roster()

    def _load_roster(self) -> None:
        self._workers = set(self.store.workers())
        self._stations = set(self.store.workstations())

    def set_owner(self, pid: int, host: str, port: int) -> None:
        self.store.set_owner(pid, host, port)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def commit(self, lines: Sequence[Line]) -> _Outcome:
        """Validate and store one batch in one transaction; one reply per line, in order."""
        received = now_us()
        tz = self._tz
        workers, stations = self._workers, self._stations
        replies: list[bytes] = [b""] * len(lines)
        rejections: list[tuple[int, str, str]] = []
        rows: list[NewEventRow] = []
        slots: list[int] = []
        unknown: list[tuple[int, NewEventRow]] = []
        for index, line in enumerate(lines):
            if isinstance(line, Refused):
                rejections.append((index, excerpt(line.head), line.error))
                continue
            try:
                row = parse_row(line, tz, received)
            except EventError as error:
                rejections.append((index, excerpt(line), str(error)))
                continue
            if row[1] in workers and row[2] in stations:
                rows.append(row)
                slots.append(index)
            else:
                unknown.append((index, row))
        if unknown:
            self._settle_unknown(unknown, lines, rows, slots, rejections)
        accepted = duplicates = 0
        if rows:
            statuses = self._insert(rows)
            for slot, status in zip(slots, statuses, strict=True):
                if status == "accepted":
                    replies[slot] = ACCEPTED
                    accepted += 1
                elif status == "duplicate":
                    replies[slot] = DUPLICATE
                    duplicates += 1
                else:
                    line = lines[slot]
                    assert isinstance(line, bytes)
                    rejections.append((slot, excerpt(line), status))
            rejections.sort(key=lambda item: item[0])
        for index, _line, message in rejections:
            replies[index] = rejected(message)
        return _Outcome(replies, accepted, duplicates, rejections)

    def _insert(self, rows: list[NewEventRow]) -> list[str]:
        """insert_rows, with a row SQLite cannot take isolated instead of failing the batch.

        Validation should let no such row through; this keeps one bad row from costing every
        other line of the batch its acknowledgement if one ever does. A status other than
        accepted / duplicate is the rejection message of that row.
        """
        try:
            return list(self.store.insert_rows(rows))
        except RowError:
            log.exception("a batch could not be stored; storing its rows one by one")
        statuses: list[str] = []
        for row in rows:
            try:
                statuses.extend(self.store.insert_rows([row]))
            except RowError as error:
                statuses.append(f"line: cannot be stored ({error})")
        return statuses

    def _settle_unknown(
        self,
        unknown: list[tuple[int, NewEventRow]],
        lines: Sequence[Line],
        rows: list[NewEventRow],
        slots: list[int],
        rejections: list[tuple[int, str, str]],
    ) -> None:
        """Register unknown ids (auto-register) or re-read the roster once, then decide."""
        if self._auto_register:
            new_workers = {row[1] for _, row in unknown} - self._workers
            new_stations = {row[2] for _, row in unknown} - self._stations
            self.store.register_ids(sorted(new_workers), sorted(new_stations))
            self._workers |= new_workers
            self._stations |= new_stations
        else:
            # The roster may have grown since start (a console or a config reload added ids).
            self._load_roster()
        late: list[tuple[int, NewEventRow]] = []
        for index, row in unknown:
            if row[1] not in self._workers:
                error = f"worker_id: {row[1]!r} is not in the roster"
            elif row[2] not in self._stations:
                error = f"workstation_id: {row[2]!r} is not in the roster"
            else:
                late.append((index, row))
                continue
            line = lines[index]
            assert isinstance(line, bytes)
            rejections.append(
                (index, excerpt(line), error + " (add it to the config, or use --auto-register)")
            )
        if late:
            # Keep line order in the insert, so of two copies of one event the first is accepted.
            merged = sorted([*zip(slots, rows, strict=True), *late], key=lambda pair: pair[0])
            slots[:] = [index for index, _ in merged]
            rows[:] = [row for _, row in merged]
        rejections.sort(key=lambda item: item[0])


class _Checkpointer:
    """Passive WAL checkpoints on a connection of its own; every method runs in its thread."""

    def __init__(self, path: Path, durability: Durability) -> None:
        self._path = path
        self._durability = durability
        self._store: Store | None = None

    def open(self) -> None:
        self._store = open_store(self._path, durability=self._durability)

    def run(self) -> None:
        """Copy what is committed into the database file without waiting on the writer."""
        if self._store is not None:
            self._store.checkpoint()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


# --- the event-loop side ----------------------------------------------------------------------


class _Sink:
    """Where the replies of some queued lines go: a TCP connection or a `submit` call."""

    peer: str = ""

    def deliver(self, replies: list[bytes], count: int, nbytes: int) -> None:
        """Replies for `count` of this sink's lines (in order), `nbytes` of input."""
        raise NotImplementedError

    def fail(self, message: str, count: int, nbytes: int) -> None:
        """The batch holding `count` of this sink's lines could not be stored."""
        raise NotImplementedError


class _Batch:
    """Lines queued for one transaction, with run-length owners to route the replies."""

    __slots__ = ("lines", "nbytes", "owners")

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.owners: list[list[Any]] = []  # [sink, count, nbytes], consecutive lines per sink
        self.nbytes = 0

    def add(self, sink: _Sink, lines: Sequence[Line], nbytes: int) -> None:
        self.lines.extend(lines)
        self.nbytes += nbytes
        if self.owners and self.owners[-1][0] is sink:
            self.owners[-1][1] += len(lines)
            self.owners[-1][2] += nbytes
        else:
            self.owners.append([sink, len(lines), nbytes])

    def merge(self, other: _Batch) -> None:
        """Append a later batch (its lines stay after ours, so every order is kept)."""
        self.lines.extend(other.lines)
        self.nbytes += other.nbytes
        owners = other.owners
        if self.owners and owners and self.owners[-1][0] is owners[0][0]:
            self.owners[-1][1] += owners[0][1]
            self.owners[-1][2] += owners[0][2]
            owners = owners[1:]
        self.owners.extend(owners)


class _SubmitSink(_Sink):
    """Collects the replies of one `Listener.submit` call."""

    def __init__(self, peer: str, expected: int, future: asyncio.Future[list[bytes]]) -> None:
        self.peer = peer
        self._expected = expected
        self._replies: list[bytes] = []
        self._future = future

    def deliver(self, replies: list[bytes], count: int, nbytes: int) -> None:
        self._replies.extend(replies)
        if len(self._replies) >= self._expected and not self._future.done():
            self._future.set_result(self._replies)

    def fail(self, message: str, count: int, nbytes: int) -> None:
        if not self._future.done():
            self._future.set_exception(ListenerError(message))


class _Connection(asyncio.Protocol, _Sink):
    """One camera connection: frames lines, queues them, writes replies in order."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._framer = LineFramer(listener.settings.ingest.max_line_bytes)
        self._transport: asyncio.Transport | None = None
        self.peer = "?"
        self._authenticated = not listener.settings.ingest.token
        self._lines_seen = 0
        self._unacked_lines = 0
        self._unacked_bytes = 0
        self._read_paused = False
        self._write_paused = False
        self._ending = False  # no more input wanted: close once every line is answered
        self._finishing = False  # every line answered, our side half-closed, input dropped
        self._peer_eof = False
        self._closed = False
        self._linger: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        listener = self._listener
        limit = listener.settings.ingest.max_connections
        listener._connections.add(self)
        if len(listener._connections) > limit or listener._stopping:
            why = "the listener is shutting down" if listener._stopping else f"limit {limit}"
            transport.write(rejected(f"{TOO_MANY_CONNECTIONS} ({why}); try again later"))
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
            self._end()
        # True keeps our half open so the last replies can still be written.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._ending = True
        self._cancel_idle()
        if self._linger is not None:
            self._linger.cancel()
        self._listener._connections.discard(self)
        self._listener._paused.discard(self)
        self._listener._closed_event.set()

    def pause_writing(self) -> None:
        # Replies are piling up unread: stop reading until the peer catches up.
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    # lines in

    def _take(self, items: list[Line], nbytes: int) -> None:
        first = self._lines_seen == 0
        self._lines_seen += len(items)
        if first:
            items = self._check_auth(items)
            if not items:
                return
        self._unacked_lines += len(items)
        self._unacked_bytes += nbytes
        self._listener._enqueue(self, items, nbytes)
        self._update_reading()

    def _check_auth(self, items: list[Line]) -> list[Line]:
        """Handle the connection's first line: the auth line, or a refusal when one is due."""
        assert self._transport is not None
        head = items[0]
        token = read_auth(head) if isinstance(head, bytes) else None
        expected = self._listener.settings.ingest.token
        if token is not None and (
            not expected or hmac.compare_digest(token.encode(), expected.encode())
        ):
            # Without a configured token an auth line is harmless: answer it, go on.
            self._authenticated = True
            self._transport.write(AUTHENTICATED)
            return items[1:]
        if self._authenticated:
            return items
        error = AUTH_WRONG if token is not None else AUTH_MISSING
        line = head.head if isinstance(head, Refused) else head
        self._listener._note_rejection(self.peer, line, error)
        self._transport.write(rejected(error))
        self._ending = True
        self._finish()
        return []

    # flow control

    def _update_reading(self) -> None:
        if self._transport is None or self._closed:
            return
        listener = self._listener
        if self._finishing:
            return  # reading on, to drop what the peer still sends
        want_pause = (
            self._ending
            or self._write_paused
            or self._unacked_bytes > listener.conn_pending_bytes
            or listener._pending_bytes > listener.total_pending_bytes
        )
        if want_pause and not self._read_paused:
            self._read_paused = True
            self._transport.pause_reading()
            if not self._ending:
                listener._paused.add(self)
        elif not want_pause and self._read_paused:
            self._read_paused = False
            self._transport.resume_reading()
            listener._paused.discard(self)

    # the slowloris guard

    def _watch_idle(self, completed_lines: bool) -> None:
        # The clock runs from the start of the current unfinished line, not from its last byte:
        # a peer trickling one byte a minute must not hold the connection forever.
        if completed_lines or not self._framer.holds_partial_line:
            self._cancel_idle()
        if self._framer.holds_partial_line and self._idle_timer is None:
            loop = asyncio.get_running_loop()
            timeout = self._listener.settings.ingest.idle_timeout_s
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
        timeout = self._listener.settings.ingest.idle_timeout_s
        unfinished = self._framer.finish()
        head = unfinished[0] if unfinished and isinstance(unfinished[0], bytes) else b""
        error = f"line: not finished within {timeout:g} s; closing the connection"
        self._take([Refused(head[:EXCERPT_CHARS], error)], 0)
        self._end()

    # replies out

    def _end(self) -> None:
        """Read no more; close once every line received so far has its reply."""
        self._ending = True
        self._cancel_idle()
        self._update_reading()
        if self._unacked_lines == 0:
            self._finish()

    def _finish(self) -> None:
        """Every line is answered: half-close, drop further input, close when the peer does."""
        transport = self._transport
        if self._finishing or self._closed or transport is None:
            return
        self._finishing = True
        self._cancel_idle()
        self._listener._paused.discard(self)
        if self._peer_eof or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()  # sent once the replies before it are flushed
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self._linger = asyncio.get_running_loop().call_later(
            self._listener.linger_s, self._linger_over
        )

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
        self._unacked_lines -= count
        self._unacked_bytes -= nbytes
        if self._closed or self._transport is None:
            return
        self._transport.write(b"".join(replies))
        if self._ending and self._unacked_lines == 0:
            self._finish()
        else:
            self._update_reading()

    def fail(self, message: str, count: int, nbytes: int) -> None:
        # Nothing of the batch is acknowledged; dropping the connection tells the camera to
        # send again (safe: duplicates are detected).
        self._unacked_lines -= count
        self._unacked_bytes -= nbytes
        if self._transport is not None and not self._closed:
            self._ending = True
            self._transport.abort()


class Listener:
    """The ingest listener: start it in a running event loop, stop it before the loop ends."""

    def __init__(
        self,
        settings: Settings,
        store_path: Path | None = None,
        *,
        batch_max_lines: int = BATCH_MAX_LINES,
        batch_delay_s: float = BATCH_DELAY_S,
        merge_max_lines: int = MERGE_MAX_LINES,
        conn_pending_bytes: int = CONN_PENDING_BYTES,
        total_pending_bytes: int = TOTAL_PENDING_BYTES,
        recent_rejections: int = RECENT_REJECTIONS,
        linger_s: float = LINGER_S,
    ) -> None:
        self.settings = settings
        self.store_path = store_path if store_path is not None else settings.store.path
        self.batch_max_lines = batch_max_lines
        self.batch_delay_s = batch_delay_s
        self.merge_max_lines = merge_max_lines
        self.linger_s = linger_s
        self.conn_pending_bytes = conn_pending_bytes
        self.total_pending_bytes = total_pending_bytes
        self._writer = _Writer(
            self.store_path,
            settings.store.durability,
            settings.tz,
            auto_register=settings.ingest.auto_register,
        )
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._checkpointer = _Checkpointer(self.store_path, settings.store.durability)
        self._checkpoint_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._checkpoint_running: asyncio.Future[None] | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_Connection] = set()
        self._paused: set[_Connection] = set()
        self._closed_event = asyncio.Event()
        self._batch = _Batch()
        self._ready: deque[_Batch] = deque()
        self._in_flight: _Batch | None = None
        self._cut_timer: asyncio.TimerHandle | None = None
        self._pending_bytes = 0
        self._pending_lines = 0
        self._idle = asyncio.Event()  # nothing queued or in flight
        self._idle.set()
        self._space = asyncio.Event()  # pending input under the total bound
        self._space.set()
        self._stopping = False
        self._running = False
        self._port = 0
        self._started = 0.0
        self._accepted = 0
        self._duplicates = 0
        self._rejected = 0
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._recent: deque[Rejection] = deque(maxlen=recent_rejections)

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (useful with port 0)."""
        return self._port

    @property
    def host(self) -> str:
        """The address the listener binds."""
        return self.settings.ingest.host

    async def start(self) -> None:
        """Bind the port, open the store, record this process as the database's listener.

        Raises ListenerError (PortInUseError when the port is taken) with one sentence. The
        port is bound before the database is touched, so a second console that finds the
        port taken has written nothing.
        """
        ingest = self.settings.ingest
        if not ingest.is_loopback and not ingest.token:
            raise ListenerError(
                f"refusing to listen on {ingest.host} without an ingest token: set ingest.token "
                "(or FACTORY_TUI_TOKEN), or listen on 127.0.0.1"
            )
        if self._running or self._stopping:
            raise RuntimeError("a Listener runs once: make a new one to listen again")
        loop = asyncio.get_running_loop()
        self._loop = loop
        # "localhost" can resolve to both ::1 and 127.0.0.1, which with port 0 would get two
        # different ports; one address keeps `port` meaningful.
        host = "127.0.0.1" if ingest.host == "localhost" else ingest.host
        try:
            server = await loop.create_server(
                lambda: _Connection(self), host, ingest.port, backlog=1024, start_serving=False
            )
        except OSError as error:
            kind = PortInUseError if error.errno == errno.EADDRINUSE else ListenerError
            raise kind(_bind_error(ingest.host, ingest.port, error)) from None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ingest-writer"
        )
        self._checkpoint_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ingest-checkpoint"
        )
        try:
            await loop.run_in_executor(
                self._executor,
                self._writer.open,
                self.settings.roster_workers(),
                self.settings.roster_workstations(),
            )
            await loop.run_in_executor(self._checkpoint_executor, self._checkpointer.open)
            self._port = server.sockets[0].getsockname()[1]
            await loop.run_in_executor(
                self._executor, self._writer.set_owner, os.getpid(), ingest.host, self._port
            )
        except StoreError as error:
            server.close()
            await self._shutdown_writer()
            raise ListenerError(str(error)) from None
        self._server = server
        await server.start_serving()
        self._started = time.monotonic()
        self._running = True
        log.info("listening on %s:%d", ingest.host, self._port)

    async def stop(self) -> None:
        """Stop accepting, commit and answer every line already received, then close."""
        if not self._running or self._stopping:
            return
        self._stopping = True
        assert self._server is not None
        self._server.close()
        for conn in list(self._connections):
            conn._end()
        self._cut()
        await self._idle.wait()
        # Connections close themselves once answered; give slow readers a moment, then cut.
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while self._connections and time.monotonic() < deadline:
            self._closed_event.clear()
            try:
                await asyncio.wait_for(self._closed_event.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        for conn in list(self._connections):
            if conn._transport is not None:
                conn._transport.abort()
        await self._server.wait_closed()
        await self._shutdown_writer()
        self._running = False
        log.info("stopped: %s", format_stats(self.stats()))

    async def _shutdown_writer(self) -> None:
        loop = asyncio.get_running_loop()
        if self._checkpoint_executor is not None:
            if self._checkpoint_running is not None:
                await asyncio.wait([self._checkpoint_running])
            await loop.run_in_executor(self._checkpoint_executor, self._checkpointer.close)
            self._checkpoint_executor.shutdown(wait=True)
            self._checkpoint_executor = None
        if self._executor is not None:
            await loop.run_in_executor(self._executor, self._writer.close)
            self._executor.shutdown(wait=True)
            self._executor = None

    def _checkpoint(self) -> None:
        """Start a background checkpoint unless one is running."""
        if self._checkpoint_running is not None or self._checkpoint_executor is None:
            return
        assert self._loop is not None
        running = self._loop.run_in_executor(self._checkpoint_executor, self._checkpointer.run)
        self._checkpoint_running = running
        running.add_done_callback(self._checkpointed)

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpoint_running = None
        if not done.cancelled() and done.exception() is not None:
            # Not fatal: the writer's own backstop checkpoint still bounds the WAL.
            log.warning("background checkpoint failed: %s", done.exception())

    async def __aenter__(self) -> Listener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- in-process submission ----------------------------------------------------------------

    async def submit(
        self, lines: Sequence[bytes], peer: str = "in-process"
    ) -> list[dict[str, Any]]:
        """Validate, store and answer lines exactly as if they had come over TCP."""
        if not self._running or self._stopping:
            raise ListenerError("the listener is not running")
        if not lines:
            return []
        limit = self.settings.ingest.max_line_bytes
        error = too_long_error(limit)
        items: list[Line] = [
            line if len(line) <= limit else Refused(line[:EXCERPT_CHARS], error) for line in lines
        ]
        await self._space.wait()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bytes]] = loop.create_future()
        nbytes = sum(len(line) for line in lines)
        self._enqueue(_SubmitSink(peer, len(items), future), items, nbytes)
        replies = await future
        return [decode_reply(reply) for reply in replies]

    # --- batching -----------------------------------------------------------------------------

    def _enqueue(self, sink: _Sink, items: Sequence[Line], nbytes: int) -> None:
        self._batch.add(sink, items, nbytes)
        self._pending_bytes += nbytes
        self._pending_lines += len(items)
        self._idle.clear()
        if self._pending_bytes > self.total_pending_bytes:
            self._space.clear()
        if len(self._batch.lines) >= self.batch_max_lines:
            self._cut()
        elif self._cut_timer is None:
            assert self._loop is not None
            self._cut_timer = self._loop.call_later(self.batch_delay_s, self._cut)

    def _cut(self) -> None:
        if self._cut_timer is not None:
            self._cut_timer.cancel()
            self._cut_timer = None
        if self._batch.lines:
            self._ready.append(self._batch)
            self._batch = _Batch()
        self._pump()

    def _pump(self) -> None:
        if self._in_flight is not None:
            return
        if not self._ready:
            if not self._batch.lines:
                self._idle.set()
            return
        batch = self._ready.popleft()
        while self._ready and len(batch.lines) + len(self._ready[0].lines) <= self.merge_max_lines:
            batch.merge(self._ready.popleft())
        self._in_flight = batch
        assert self._loop is not None
        assert self._executor is not None
        future = self._loop.run_in_executor(self._executor, self._writer.commit, batch.lines)
        future.add_done_callback(lambda done: self._committed(batch, done))

    def _committed(self, batch: _Batch, done: asyncio.Future[_Outcome]) -> None:
        self._in_flight = None
        self._pending_bytes -= batch.nbytes
        self._pending_lines -= len(batch.lines)
        try:
            outcome = done.result()
        except Exception as error:
            message = f"could not store a batch of {len(batch.lines)} lines: {error}"
            log.error("%s", message, exc_info=not isinstance(error, StoreError | OSError))
            for sink, count, nbytes in batch.owners:
                sink.fail(message, count, nbytes)
        else:
            self._account(batch, outcome)
            start = 0
            replies = outcome.replies
            for sink, count, nbytes in batch.owners:
                sink.deliver(replies[start : start + count], count, nbytes)
                start += count
            self._checkpoint()
        if self._pending_bytes <= self.total_pending_bytes:
            self._space.set()
        for conn in list(self._paused):
            conn._update_reading()
        self._pump()

    def _account(self, batch: _Batch, outcome: _Outcome) -> None:
        self._accepted += outcome.accepted
        self._duplicates += outcome.duplicates
        self._rejected += len(outcome.rejections)
        self._rate_samples.append((time.monotonic(), outcome.accepted))
        if not outcome.rejections or not self._recent.maxlen:
            return
        # Only the last few can be kept: build records for those alone.
        keep = outcome.rejections[-self._recent.maxlen :]
        bounds: list[tuple[int, str]] = []  # (end index, peer) per owner run
        end = 0
        for sink, count, _ in batch.owners:
            end += count
            bounds.append((end, sink.peer))
        at = now_us()
        run = 0
        for index, line, error in keep:
            while bounds[run][0] <= index:
                run += 1
            self._recent.append(Rejection(at, bounds[run][1], line, error))

    def _note_rejection(self, peer: str, line: bytes, error: str) -> None:
        """Count a line answered by the loop itself (the auth refusal)."""
        self._rejected += 1
        self._recent.append(Rejection(now_us(), peer, excerpt(line), error))

    # --- counters -----------------------------------------------------------------------------

    def stats(self) -> IngestStats:
        """The counters now."""
        now = time.monotonic()
        samples = self._rate_samples
        while samples and samples[0][0] < now - RATE_WINDOW_S:
            samples.popleft()
        span = min(RATE_WINDOW_S, max(now - self._started, 1.0)) if self._started else 1.0
        return IngestStats(
            accepted=self._accepted,
            duplicates=self._duplicates,
            rejected=self._rejected,
            connections=len(self._connections),
            rate_per_s=sum(count for _, count in samples) / span,
            recent_rejections=tuple(self._recent),
            pending=self._pending_lines,
        )


def format_stats(stats: IngestStats) -> str:
    """One log line of counters."""
    return (
        f"accepted {stats.accepted}, duplicate {stats.duplicates}, rejected {stats.rejected}, "
        f"connections {stats.connections}, {stats.rate_per_s:,.0f} events/s"
    )


def _bind_error(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another `factory-tui serve` or console?); "
            "stop it or choose another port with --port"
        )
    if error.errno == errno.EACCES:
        return f"not allowed to listen on {host}:{port} (ports below 1024 need privileges)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: that address is not on this machine"
    return f"cannot listen on {host}:{port}: {error.strerror or error}"
