"""The ingest listener: cameras' JSON lines in, one reply per line out, batched SQLite commits.

The listener is split by where code runs. This module and `connection.py` run on the event loop
and never block: the listener accepts connections (one `Connection` per peer, which only frames
lines and writes replies), batches their lines, and hands each batch to a parse thread, which
validates and hashes it, then to the writer thread, which stores it in its own `Store`
(`writer.py`), so the console can run the listener inside Textual's loop without its commits
blocking the screen; the next batch is validated while the one before it is stored. Lines wait
in one queue per connection (and per `submit` call); a batch is due `batch_delay_s` after its
first line or once `batch_max_lines` wait, and is then built by taking an equal share from each
queue in turn, so one peer's backlog never starves another's. A line's reply is written only
after the batch holding it has committed, and replies keep each connection's order because
batches are validated and commit one at a time, in order. Lines that arrive while a commit is
running go together into the batch after the one being validated (up to `merge_max_lines`), and
a checkpoint thread checkpoints the WAL after each commit, beside the writer rather than inside
its commits.

Memory stays bounded whatever the peers do: each connection bounds its own input and replies
(see `connection.py`), and connections stop being read while the total pending input passes
`total_pending_bytes` (each line counted as its bytes plus a fixed per-line cost in Python
objects, `connection.LINE_OVERHEAD_BYTES`). The lines still queued for a connection that
vanished mid-stream are dropped unread: nothing of theirs was acknowledged. A connection
reaches its listener only through the `ConnectionHost` methods (`register`, `unregister`,
`enqueue`, `note_rejection`, `over_total_budget`, `watch_paused`, `note_one_way`,
`note_replies_dropped`); the listener reaches a connection only through `end`, `abort`,
`update_reading`, `deliver`, `fail` and `stored_after_close`.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import errno
import logging
import os
import ssl
import time
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from factory_tui.config import Settings
from factory_tui.engine.rate import RateMeter
from factory_tui.ingest.access import (
    AccessError,
    AllowList,
    PeerCounts,
    TlsHandshake,
    describe_tls,
    server_tls_context,
)
from factory_tui.ingest.audit import AuditTrail
from factory_tui.ingest.connection import (
    LINGER_S,
    ONE_WAY_AFTER_S,
    Connection,
    ReplySink,
    pending_cost,
)
from factory_tui.ingest.protocol import (
    EXCERPT_CHARS,
    NOT_ALLOWED,
    TOO_MANY_CONNECTIONS,
    Line,
    Refused,
    decode_reply,
    excerpt,
    too_long_error,
)
from factory_tui.ingest.writer import BatchOutcome, BatchWriter, Checkpointer, Prepared
from factory_tui.models import now_us
from factory_tui.records import (
    AuditEntry,
    CommitLatency,
    IngestStats,
    Rejection,
    rejection_reason,
)
from factory_tui.storage import StoreError

log = logging.getLogger("factory_tui.ingest")

BATCH_MAX_LINES: Final = 5_000
BATCH_DELAY_S: Final = 0.05
# When the writer falls behind, the batches cut meanwhile commit together, up to this many
# lines: with a random (hash) unique index, a transaction costs roughly one page write per
# page it touches, so fewer, larger transactions under load cost far less per event.
MERGE_MAX_LINES: Final = 50_000
# Yet a batch takes no more lines than commit in about this long at the rate measured: a camera
# whose line arrives during a flood waits for at most about two such commits. (Shorter costs
# throughput: smaller transactions rewrite the same index pages more often; at 0.25 s the WAL
# of 400,000 events grew to 90-113 MiB against 43 MiB with batches of up to 50,000 lines.)
COMMIT_TARGET_S: Final = 0.5
# Pending input is counted as `connection.pending_cost`: bytes plus a fixed cost per line.
CONN_PENDING_BYTES: Final = 8 << 20
TOTAL_PENDING_BYTES: Final = 32 << 20
# A batch takes at most this many lines from one queue per turn, then serves the next queue.
TURN_MIN_LINES: Final = 256
RECENT_REJECTIONS: Final = 100
RATE_WINDOW_S: Final = 5.0
CLOSE_TIMEOUT_S: Final = 5.0
COMMIT_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Bucket bounds of the batch commit latency histogram (`commit_latency`)."""


class ListenerError(Exception):
    """The listener cannot run as configured; the message is one sentence saying why."""


class PortInUseError(ListenerError):
    """The port is taken, typically by the process that owns this database already.

    A console that gets this can open the database read-only as a viewer instead.
    """


class _Batch:
    """Lines queued for one transaction, with run-length owners to route the replies."""

    __slots__ = ("lines", "nbytes", "owners")

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.owners: list[list[Any]] = []  # [sink, count, nbytes], consecutive lines per sink
        self.nbytes = 0

    def add(self, sink: ReplySink, lines: Sequence[Line], nbytes: int) -> None:
        self.lines.extend(lines)
        self.nbytes += nbytes
        if self.owners and self.owners[-1][0] is sink:
            self.owners[-1][1] += len(lines)
            self.owners[-1][2] += nbytes
        else:
            self.owners.append([sink, len(lines), nbytes])


class _Queue:
    """One sink's lines waiting for a batch, in order, as (lines, cost) chunks."""

    __slots__ = ("chunks", "cost", "lines")

    def __init__(self) -> None:
        self.chunks: deque[tuple[list[Line], int]] = deque()
        self.lines = 0
        self.cost = 0

    def add(self, lines: list[Line], cost: int) -> None:
        self.chunks.append((lines, cost))
        self.lines += len(lines)
        self.cost += cost

    def take(self, most: int, batch: _Batch, sink: ReplySink) -> int:
        """Move up to `most` lines, oldest first, into `batch`; how many moved."""
        moved = 0
        while self.chunks and moved < most:
            lines, cost = self.chunks[0]
            if len(lines) <= most - moved:
                self.chunks.popleft()
            else:
                # Split the chunk; its cost goes with its lines pro rata (the parts add up).
                keep = len(lines) - (most - moved)
                rest_cost = cost * keep // len(lines)
                self.chunks[0] = (lines[-keep:], rest_cost)
                lines, cost = lines[:-keep], cost - rest_cost
            batch.add(sink, lines, cost)
            moved += len(lines)
            self.lines -= len(lines)
            self.cost -= cost
        return moved


class _SubmitSink:
    """The `ReplySink` of one `Listener.submit` call: collects its replies."""

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


class Listener:
    """The ingest listener: start it in a running event loop, stop it before the loop ends."""

    def __init__(
        self,
        settings: Settings,
        store_path: Path | str | None = None,
        *,
        batch_max_lines: int = BATCH_MAX_LINES,
        batch_delay_s: float = BATCH_DELAY_S,
        merge_max_lines: int = MERGE_MAX_LINES,
        conn_pending_bytes: int = CONN_PENDING_BYTES,
        total_pending_bytes: int = TOTAL_PENDING_BYTES,
        recent_rejections: int = RECENT_REJECTIONS,
        linger_s: float = LINGER_S,
        one_way_after_s: float = ONE_WAY_AFTER_S,
    ) -> None:
        self.settings = settings
        self.store_path = store_path if store_path is not None else settings.store.location
        self.batch_max_lines = batch_max_lines
        self.batch_delay_s = batch_delay_s
        self.merge_max_lines = merge_max_lines
        self.linger_s = linger_s
        self.one_way_after_s = one_way_after_s
        self.conn_pending_bytes = conn_pending_bytes
        self.total_pending_bytes = total_pending_bytes
        self._writer = BatchWriter(
            self.store_path,
            settings.store.durability,
            settings.tz,
            auto_register=settings.ingest.auto_register,
            site=settings.site.id,
        )
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._parse_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._checkpointer = Checkpointer(self.store_path, settings.store.durability)
        self._checkpoint_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._checkpoint_running: asyncio.Future[None] | None = None
        self._server: asyncio.Server | None = None
        self._one_way_server: asyncio.Server | None = None
        self._one_way_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[Connection] = set()
        self._paused: set[Connection] = set()
        self._closed_event = asyncio.Event()
        self._queues: dict[ReplySink, _Queue] = {}
        self._turns: deque[ReplySink] = deque()  # sinks with queued lines, next to serve first
        self._queued_lines = 0  # in queues, not yet in a batch
        self._due = False  # a batch is due: its delay ran out or enough lines wait
        self._parsing: _Batch | None = None  # being validated (the parse thread)
        self._parsed: tuple[_Batch, Prepared] | None = None  # validated, waiting for the writer
        self._in_flight: _Batch | None = None  # being stored (the writer thread)
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
        self._accepted = 0
        self._duplicates = 0
        self._rejected = 0
        self._rejected_by_reason: Counter[str] = Counter()
        self._one_way = 0  # connections found to read none of their replies
        self._replies_dropped = 0  # replies of one-way connections, dropped unwritten
        self._dropped_unread = 0  # lines of connections gone mid-stream, dropped unvalidated
        self._rate = RateMeter(RATE_WINDOW_S)  # accepted events; restarted by `start`
        self._recent: deque[Rejection] = deque(maxlen=recent_rejections)
        self._commit_counts = [0] * (len(COMMIT_BUCKETS_S) + 1)
        self._commit_sum_s = 0.0
        self._line_s = 0.0  # commit seconds per line, a moving average (0: none measured yet)
        # Access rules (access.py) and the audit trail (audit.py).
        self._allow = AllowList(settings.ingest.allow)
        self._per_address = PeerCounts()
        self._address_of: dict[Connection, str] = {}  # connections counted per address
        self._admitted: set[Connection] = set()
        self._handshakes: set[asyncio.Task[None]] = set()
        self.audit = AuditTrail(self._write_audit)
        self._last_commit_at: float | None = None
        self._last_commit_failed = False

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from a successful `start` until `stop` begins (for health checks)."""
        return self._running and not self._stopping

    @property
    def last_commit_at(self) -> float | None:
        """`time.monotonic()` when a batch last committed (None: none yet)."""
        return self._last_commit_at

    @property
    def last_commit_failed(self) -> bool:
        """True while the latest batch could not be stored (the store is failing)."""
        return self._last_commit_failed

    @property
    def port(self) -> int:
        """The bound TCP port (useful with port 0)."""
        return self._port

    @property
    def one_way_port(self) -> int | None:
        """The bound one-way port (`[ingest] one_way_port`), None when there is none."""
        return self._one_way_port

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
        if not ingest.is_loopback and not ingest.token and ingest.tls_client_ca is None:
            raise ListenerError(
                f"refusing to listen on {ingest.host} without an ingest token: set ingest.token "
                "(or FACTORY_TUI_TOKEN) or ingest.tls_client_ca, or listen on 127.0.0.1"
            )
        tls = None
        if ingest.tls_cert is not None and ingest.tls_key is not None:
            try:
                tls = server_tls_context(ingest.tls_cert, ingest.tls_key, ingest.tls_client_ca)
            except AccessError as error:
                raise ListenerError(str(error)) from None
        if self._running or self._stopping:
            raise RuntimeError("a Listener runs once: make a new one to listen again")
        loop = asyncio.get_running_loop()
        self._loop = loop
        # "localhost" can resolve to both ::1 and 127.0.0.1, which with port 0 would get two
        # different ports; one address keeps `port` meaningful.
        host = "127.0.0.1" if ingest.host == "localhost" else ingest.host
        try:
            server = await loop.create_server(
                (lambda: Connection(self))
                if tls is None
                else (
                    lambda: TlsHandshake(
                        self, tls, lambda: Connection(self), min(ingest.idle_timeout_s, 30.0)
                    )
                ),
                host,
                ingest.port,
                backlog=1024,
                start_serving=False,
            )
        except OSError as error:
            kind = PortInUseError if error.errno == errno.EADDRINUSE else ListenerError
            raise kind(_bind_error(ingest.host, ingest.port, error)) from None
        one_way_server = None
        if ingest.one_way_port is not None:
            try:
                one_way_server = await self._bind_one_way(host, ingest.one_way_port, tls)
            except OSError as error:
                server.close()
                kind = PortInUseError if error.errno == errno.EADDRINUSE else ListenerError
                raise kind(_bind_error(ingest.host, ingest.one_way_port, error)) from None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ingest-writer"
        )
        self._parse_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ingest-parse"
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
                self.settings.site.label,
                self.settings.site_description(),
            )
            await loop.run_in_executor(self._checkpoint_executor, self._checkpointer.open)
            self._port = server.sockets[0].getsockname()[1]
            await loop.run_in_executor(
                self._executor, self._writer.set_owner, os.getpid(), ingest.host, self._port
            )
        except StoreError as error:
            server.close()
            if one_way_server is not None:
                one_way_server.close()
            await self._shutdown_writer()
            raise ListenerError(str(error)) from None
        self._server = server
        await server.start_serving()
        if one_way_server is not None:
            self._one_way_server = one_way_server
            self._one_way_port = one_way_server.sockets[0].getsockname()[1]
            await one_way_server.start_serving()
        # The rate divides by the listener's age until it is older than the window.
        self._rate = RateMeter(RATE_WINDOW_S, started_s=time.monotonic())
        self._running = True
        log.info("listening on %s:%d (%s)", ingest.host, self._port, describe_tls(ingest))
        if self._one_way_port is not None:
            log.info(
                "one-way port (no replies, for log shippers) on %s:%d", host, self._one_way_port
            )

    async def stop(self) -> None:
        """Stop accepting, commit and answer every line already received, then close."""
        if not self._running or self._stopping:
            return
        self._stopping = True
        assert self._server is not None
        self._server.close()
        if self._one_way_server is not None:
            self._one_way_server.close()
        for conn in list(self._connections):
            conn.end()
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
            conn.abort()
        for task in list(self._handshakes):
            task.cancel()
        await self._server.wait_closed()
        if self._one_way_server is not None:
            await self._one_way_server.wait_closed()
        await self.audit.drain()
        await self._shutdown_writer()
        self._running = False
        log.info("stopped: %s", format_stats(self.stats()))

    async def _bind_one_way(
        self, host: str, port: int, tls: ssl.SSLContext | None
    ) -> asyncio.Server:
        """The one-way port's server: its connections are read and never written to."""
        handshake_s = min(self.settings.ingest.idle_timeout_s, 30.0)

        def accept() -> asyncio.Protocol:
            if tls is None:
                return Connection(self, one_way_port=True)
            return TlsHandshake(self, tls, lambda: Connection(self, one_way_port=True), handshake_s)

        loop = asyncio.get_running_loop()
        return await loop.create_server(accept, host, port, backlog=1024, start_serving=False)

    async def _shutdown_writer(self) -> None:
        loop = asyncio.get_running_loop()
        if self._checkpoint_executor is not None:
            if self._checkpoint_running is not None:
                await asyncio.wait([self._checkpoint_running])
            await loop.run_in_executor(self._checkpoint_executor, self._checkpointer.close)
            self._checkpoint_executor.shutdown(wait=True)
            self._checkpoint_executor = None
        if self._parse_executor is not None:
            self._parse_executor.shutdown(wait=True)
            self._parse_executor = None
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
        cost = pending_cost(sum(len(line) for line in lines), len(items))
        self.enqueue(_SubmitSink(peer, len(items), future), items, cost)
        replies = await future
        return [decode_reply(reply) for reply in replies]

    # --- what connections ask of their listener (connection.ConnectionHost) -----------------

    def register(self, conn: Connection) -> str | None:
        """Count a new connection; why it is refused (it stays counted until it closes), or None.

        A reason starting with `NOT_ALLOWED` is the whole refusal; any other is a limit."""
        self._connections.add(conn)
        why = self._limit_reached(conn)
        if why is not None:
            self.audit.record("peer_refused", conn.peer, why)
            return why
        self._admitted.add(conn)
        self.audit.record("connection_opened", conn.peer, conn.security)
        return None

    def _limit_reached(self, conn: Connection) -> str | None:
        address = conn.peer.rpartition(":")[0]
        refusal = self._not_allowed(address)
        if refusal is not None:
            return refusal
        ingest = self.settings.ingest
        if ingest.max_connections_per_ip is not None:
            self._address_of[conn] = address
            if self._per_address.add(address) > ingest.max_connections_per_ip:
                return f"limit {ingest.max_connections_per_ip} from {address}"
        limit = ingest.max_connections
        if len(self._connections) > limit or self._stopping:
            return "the listener is shutting down" if self._stopping else f"limit {limit}"
        return None

    def _not_allowed(self, address: str) -> str | None:
        if self._allow.allows(address):
            return None
        return f"{NOT_ALLOWED}: {address} is not in [ingest] allow"

    def screen(self, address: str, peer: str) -> str | None:
        """The refusal of a peer before its TLS handshake (its address is not allowed, or
        `max_connections` handshakes are running already), or None."""
        refusal = self._not_allowed(address)
        limit = self.settings.ingest.max_connections
        if refusal is None and len(self._handshakes) >= limit:
            # Handshakes count against the limit too: connections that never finish theirs
            # must not pile up for want of a Connection to count them.
            refusal = f"{TOO_MANY_CONNECTIONS} (limit {limit} TLS handshakes); try again later"
        if refusal is not None:
            self.audit.record("peer_refused", peer, refusal)
        return refusal

    def handshake_failed(self, peer: str, reason: str) -> None:
        """A TLS handshake failed: the peer never became a connection."""
        self.audit.record("tls_failed", peer, reason)

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a TLS handshake task until it ends (`stop` cancels those still running)."""
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    def _write_audit(self, entries: list[AuditEntry]) -> asyncio.Future[None]:
        assert self._loop is not None
        if self._executor is None:  # a connection closed after the writer stopped
            done: asyncio.Future[None] = self._loop.create_future()
            done.set_exception(ListenerError("the listener had stopped"))
            return done
        return self._loop.run_in_executor(self._executor, self._writer.record_audit, entries)

    def unregister(self, conn: Connection) -> None:
        """The connection has closed."""
        if conn in self._admitted:
            self._admitted.discard(conn)
            self.audit.record("connection_closed", conn.peer, conn.summary())
        address = self._address_of.pop(conn, None)
        if address is not None:
            self._per_address.remove(address)
        self._connections.discard(conn)
        self._paused.discard(conn)
        if not conn.stored_after_close:
            self._drop_queue(conn)
            self._pump()
        self._closed_event.set()

    def note_one_way(self, conn: Connection) -> None:
        """The peer reads none of its replies: say so once; they are dropped from now on."""
        self._one_way += 1
        log.warning(
            "%s reads none of its replies: one-way from now on (its lines are still stored, "
            "its replies dropped)",
            conn.peer,
        )

    def note_replies_dropped(self, count: int) -> None:
        """Count replies of a one-way connection that were dropped unwritten."""
        self._replies_dropped += count

    def note_rejection(self, peer: str, line: bytes, error: str) -> None:
        """Count a line answered by the loop itself (the auth refusal)."""
        self._rejected += 1
        self._rejected_by_reason[rejection_reason(error)] += 1
        self.audit.record("auth_failed", peer, error)
        self._recent.append(Rejection(now_us(), peer, excerpt(line), error))

    def over_total_budget(self) -> bool:
        """True while the pending input of all connections together is over its bound."""
        return self._pending_bytes > self.total_pending_bytes

    def watch_paused(self, conn: Connection, paused: bool) -> None:
        """While `paused`, call `conn.update_reading()` after every commit."""
        if paused:
            self._paused.add(conn)
        else:
            self._paused.discard(conn)

    # --- batching -----------------------------------------------------------------------------

    def enqueue(self, sink: ReplySink, items: Sequence[Line], nbytes: int) -> None:
        """Queue lines for a batch; their replies go to `sink.deliver` once it commits.

        `nbytes` is what the lines cost while pending (`connection.pending_cost`)."""
        queue = self._queues.get(sink)
        if queue is None:
            queue = self._queues[sink] = _Queue()
            self._turns.append(sink)
        queue.add(items if isinstance(items, list) else list(items), nbytes)
        self._queued_lines += len(items)
        self._pending_bytes += nbytes
        self._pending_lines += len(items)
        self._idle.clear()
        if self._pending_bytes > self.total_pending_bytes:
            self._space.clear()
        if self._queued_lines >= self.batch_max_lines:
            self._cut()
        elif self._cut_timer is None and not self._due:
            assert self._loop is not None
            self._cut_timer = self._loop.call_later(self.batch_delay_s, self._cut)

    def _cut(self) -> None:
        if self._cut_timer is not None:
            self._cut_timer.cancel()
            self._cut_timer = None
        self._due = self._queued_lines > 0
        self._pump()

    def _drop_queue(self, sink: ReplySink) -> None:
        """Forget the lines still queued for a sink that can no longer get their replies."""
        queue = self._queues.pop(sink, None)
        if queue is None:
            return
        self._turns.remove(sink)
        self._queued_lines -= queue.lines
        self._pending_lines -= queue.lines
        self._pending_bytes -= queue.cost
        self._dropped_unread += queue.lines
        if queue.lines:
            log.info("%s went away: %d lines it sent were dropped unread", sink.peer, queue.lines)
        self._after_pending_fell()

    def _take_batch(self) -> _Batch:
        """The next batch: an equal share of what fits from each queue in turn, in order."""
        for conn in [sink for sink in self._turns if isinstance(sink, Connection)]:
            if conn.vanished() and not conn.stored_after_close:
                self._drop_queue(conn)
                conn.abort()
        batch = _Batch()
        room = self.merge_max_lines
        if self._line_s > 0:
            room = min(room, max(self.batch_max_lines, int(COMMIT_TARGET_S / self._line_s)))
        turns, queues = self._turns, self._queues
        while turns and room > 0:
            share = max(room // len(turns), TURN_MIN_LINES)
            for _ in range(len(turns)):
                if room <= 0:
                    break
                sink = turns.popleft()
                queue = queues[sink]
                room -= queue.take(min(share, room), batch, sink)
                if queue.lines:
                    turns.append(sink)
                else:
                    del queues[sink]
        self._queued_lines -= len(batch.lines)
        self._due = self._queued_lines > 0
        return batch

    def _pump(self) -> None:
        """Cut the next batch and start validating it, unless the validation stage is busy:
        one batch is validated (`BatchWriter.prepare`, in its own thread) while the one before
        it is stored (`BatchWriter.store_batch`, in the writer's), so the lines that arrive
        during a commit still go together into the batch after it."""
        if self._parsing is not None or self._parsed is not None:
            return
        if not self._due or not self._queued_lines:
            if not self._queued_lines and self._in_flight is None:
                self._idle.set()
            return
        batch = self._take_batch()
        if not batch.lines:  # every queue left belonged to peers that vanished
            if self._in_flight is None:
                self._idle.set()
            return
        self._parsing = batch
        assert self._loop is not None
        assert self._parse_executor is not None
        future = self._loop.run_in_executor(self._parse_executor, self._writer.prepare, batch.lines)
        future.add_done_callback(lambda done: self._prepared(batch, done))

    def _prepared(self, batch: _Batch, done: asyncio.Future[Prepared]) -> None:
        self._parsing = None
        try:
            prepared = done.result()
        except Exception as error:
            self._pending_bytes -= batch.nbytes
            self._pending_lines -= len(batch.lines)
            self._fail(batch, error)
            self._after_pending_fell()
            self._pump()
            return
        self._parsed = (batch, prepared)
        self._store_next()

    def _store_next(self) -> None:
        """Store the validated batch once the writer is free, and validate the next meanwhile."""
        if self._in_flight is not None or self._parsed is None:
            return
        batch, prepared = self._parsed
        self._parsed = None
        self._in_flight = batch
        assert self._loop is not None
        assert self._executor is not None
        started = time.monotonic()
        future = self._loop.run_in_executor(self._executor, self._writer.store_batch, prepared)
        future.add_done_callback(lambda done: self._committed(batch, done, started))
        self._pump()

    def _committed(self, batch: _Batch, done: asyncio.Future[BatchOutcome], started: float) -> None:
        self._in_flight = None
        elapsed = time.monotonic() - started
        self._commit_counts[bisect.bisect_left(COMMIT_BUCKETS_S, elapsed)] += 1
        self._commit_sum_s += elapsed
        per_line = elapsed / len(batch.lines)
        self._line_s = per_line if not self._line_s else 0.7 * self._line_s + 0.3 * per_line
        self._pending_bytes -= batch.nbytes
        self._pending_lines -= len(batch.lines)
        try:
            outcome = done.result()
        except Exception as error:
            self._fail(batch, error)
        else:
            self._last_commit_at = time.monotonic()
            self._last_commit_failed = False
            self._account(batch, outcome)
            start = 0
            replies = outcome.replies
            for sink, count, nbytes in batch.owners:
                sink.deliver(replies[start : start + count], count, nbytes)
                start += count
            self._checkpoint()
        self._after_pending_fell()
        self._store_next()
        self._pump()

    def _fail(self, batch: _Batch, error: Exception) -> None:
        """Answer every line of a batch that could not be stored with why."""
        message = f"could not store a batch of {len(batch.lines)} lines: {error}"
        log.error("%s", message, exc_info=not isinstance(error, StoreError | OSError))
        for sink, count, nbytes in batch.owners:
            sink.fail(message, count, nbytes)
        self._last_commit_failed = True

    def _after_pending_fell(self) -> None:
        if self._pending_bytes <= self.total_pending_bytes:
            self._space.set()
        for conn in list(self._paused):
            conn.update_reading()

    def _account(self, batch: _Batch, outcome: BatchOutcome) -> None:
        self._accepted += outcome.accepted
        self._duplicates += outcome.duplicates
        self._rejected += len(outcome.rejections)
        self._rejected_by_reason.update(
            rejection_reason(error) for _, _, error in outcome.rejections
        )
        self._rate.add(time.monotonic(), outcome.accepted)
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

    # --- counters -----------------------------------------------------------------------------

    def commit_latency(self) -> CommitLatency:
        """How long batch commits have taken since the listener started (as histogram buckets)."""
        return CommitLatency(COMMIT_BUCKETS_S, tuple(self._commit_counts), self._commit_sum_s)

    def stats(self) -> IngestStats:
        """The counters now."""
        return IngestStats(
            accepted=self._accepted,
            duplicates=self._duplicates,
            rejected=self._rejected,
            connections=len(self._connections),
            rate_per_s=self._rate.per_second(time.monotonic()),
            recent_rejections=tuple(self._recent),
            rejected_by_reason=dict(self._rejected_by_reason),
            pending=self._pending_lines,
            one_way=self._one_way,
            replies_dropped=self._replies_dropped,
            dropped_unread=self._dropped_unread,
        )


def format_stats(stats: IngestStats) -> str:
    """One log line of counters."""
    line = (
        f"accepted {stats.accepted}, duplicate {stats.duplicates}, rejected {stats.rejected}, "
        f"connections {stats.connections}, {stats.rate_per_s:,.0f} events/s"
    )
    if stats.one_way:
        line += f", one-way {stats.one_way} ({stats.replies_dropped} replies dropped)"
    if stats.dropped_unread:
        line += f", {stats.dropped_unread} lines of vanished peers dropped unread"
    return line


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
