"""Floods over real sockets: one-way shippers, tiny-line floods, fairness, a fast stop.

The first tests run the listener in-process and look at its counters; the last ones run
`factory-tui serve` as a child process, flood it from threads with plain sockets and read its
memory from /proc, as the hardening issue describes the attack.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from factory_tui.ingest import connection
from factory_tui.ingest.connection import Connection
from factory_tui.ingest.listener import Listener, format_stats
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import Peer, ServeProcess, event_at, wait_until

Start = Callable[..., Any]
SOCAT = shutil.which("socat")


class SilentPeer(asyncio.Protocol):
    """A client that writes and never reads a byte of what comes back, as a log shipper does."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._lost = asyncio.Event()

    @classmethod
    async def open(cls, port: int) -> SilentPeer:
        # A small receive buffer: unread replies fill the socket after a few thousand lines.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", port))
        _, peer = await loop.create_connection(cls, sock=sock)
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._can_write.set()
        self._lost.set()

    async def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        await self._can_write.wait()

    @property
    def sockname(self) -> str:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return f"{host}:{port}"

    async def reset(self) -> None:
        """Vanish mid-stream: close with a reset, as a crashed or killed peer does."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()
        await asyncio.wait_for(self._lost.wait(), 10.0)  # the socket is closed by then


def server_side(listener: Listener, peer: SilentPeer) -> Connection:
    """The listener's connection for a client socket."""
    (conn,) = [conn for conn in listener._connections if conn.peer == peer.sockname]
    return conn


def stored_count(listener: Listener) -> int:
    with SqliteStore.open(listener.store_path, read_only=True) as store:
        return store.count_events()


# --- one-way shippers ---------------------------------------------------------------------------


async def test_a_peer_that_reads_no_replies_streams_on_and_all_it_sends_is_stored(
    start_listener: Start,
) -> None:
    listener: Listener = await start_listener(one_way_after_s=0.2, conn_pending_bytes=1 << 20)
    camera = await Peer.open(listener.port)
    shipper = await SilentPeer.open(listener.port)
    events, garbage_per_event = 4_000, 20
    # Each garbage line's rejection is a long reply: unread replies fill the socket quickly.
    padding = b"x\n" * garbage_per_event

    async def ship() -> None:
        for first in range(0, events, 500):
            await shipper.send(
                b"".join(event_at(n) + b"\n" + padding for n in range(first, first + 500))
            )
            # A camera beside it that reads its replies is answered all along.
            await camera.send(event_at(10_000_000 + first) + b"\n")
            assert await camera.replies(1) == [{"status": "accepted"}]

    # Were the shipper held back by its unread replies, this would stall for good.
    await asyncio.wait_for(ship(), 60.0)
    conn = server_side(listener, shipper)
    await wait_until(lambda: conn.one_way, timeout_s=30.0)
    assert conn._transport is not None
    # Its replies stop at the write buffer's mark, plus those of one batch (a rejection's reply
    # is under 128 bytes): bounded by the limits, not by the stream.
    most_replies = connection.WRITE_HIGH_WATER + listener.merge_max_lines * 128
    assert conn._transport.get_write_buffer_size() <= most_replies
    assert shipper.transport is not None
    shipper.transport.write_eof()
    total = events + events // 500
    await wait_until(lambda: listener.stats().accepted == total, timeout_s=60.0)
    stats = listener.stats()
    assert stats.one_way == 1
    assert f"one-way 1 ({stats.replies_dropped} replies dropped)" in format_stats(stats)
    assert stats.rejected == events * garbage_per_event
    assert 0 < stats.replies_dropped <= events * (garbage_per_event + 1)
    assert stored_count(listener) == total
    await camera.close()


@pytest.mark.skipif(SOCAT is None, reason="needs socat (apt-get install socat)")
async def test_socat_u_streams_a_file_to_the_one_way_port_and_every_event_is_stored(
    tmp_path: Path,
) -> None:
    # (benchmarks/flood.py streams a million events this way.)
    events = 60_000
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(event_at(n) + b"\n" for n in range(events)))
    db = tmp_path / "serve.db"
    serve = await ServeProcess.start("--db", str(db), env={"FACTORY_TUI_INGEST_ONE_WAY_PORT": "0"})
    try:
        one_way_port = await read_port(serve, rb"one-way port .* on \S+:(\d+)")
        camera = await Peer.open(serve.port)  # beside it, a camera that reads its replies
        socat = await asyncio.create_subprocess_exec(
            str(SOCAT), "-u", f"FILE:{source}", f"TCP:127.0.0.1:{one_way_port}"
        )
        for n in range(20):
            await camera.send(event_at(events + n) + b"\n")
            assert await camera.replies(1) == [{"status": "accepted"}]
        assert await asyncio.wait_for(socat.wait(), 120.0) == 0
        await camera.close()
        # socat has handed over its last line; SIGTERM stores everything received.
        serve.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(serve.process.wait(), 30.0) == 0
        with SqliteStore.open(db, read_only=True) as store:
            assert store.count_events() == events + 20
    finally:
        await serve.kill()


async def read_port(serve: ServeProcess, pattern: bytes) -> int:
    """The port in the first line of serve's log that matches `pattern` (bounded)."""
    assert serve.process.stderr is not None
    for _ in range(50):
        line = await asyncio.wait_for(serve.process.stderr.readline(), 30.0)
        found = re.search(pattern, line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"serve never logged {pattern!r}")


# --- the memory budget in real terms -------------------------------------------------------------


async def test_tiny_lines_pause_reading_by_their_cost_not_their_bytes(
    start_listener: Start,
) -> None:
    # Nothing commits (a long delay, no size cut), so all that was read stays pending.
    budget = 1 << 20
    listener: Listener = await start_listener(
        batch_delay_s=30.0, batch_max_lines=10**9, conn_pending_bytes=budget
    )
    flooder = await SilentPeer.open(listener.port)
    flood = asyncio.create_task(flooder.send(b"x\n" * 2_000_000))
    await wait_until(lambda: len(listener._connections) == 1)
    conn = server_side(listener, flooder)
    await wait_until(lambda: conn._read_paused)
    pending = listener.stats().pending
    # Counted by wire bytes, a mebibyte of budget would hold 524,288 of these lines; at their
    # real cost it holds 2,608, plus the rest of the read that crossed the limit.
    one_read = (256 << 10) // 2
    assert 0 < pending <= budget // (2 + connection.LINE_OVERHEAD_BYTES) + one_read
    assert conn._unacked_cost > budget
    # Gone while it was not being read: its lines are dropped, not validated, at the stop.
    await flooder.reset()
    flood.cancel()
    await listener.stop()
    assert listener.stats().dropped_unread == pending
    assert stored_count(listener) == 0


# --- fairness -------------------------------------------------------------------------------------


async def test_a_camera_is_answered_ahead_of_the_backlog_of_four_flooders(
    start_listener: Start,
) -> None:
    listener: Listener = await start_listener(
        batch_max_lines=1_000, merge_max_lines=2_000, one_way_after_s=0.2
    )
    flooders = [await SilentPeer.open(listener.port) for _ in range(4)]
    chunk = b"x\n" * 32_768

    async def flood(peer: SilentPeer) -> None:
        for _ in range(60):  # bounded: about 2 million lines each at most
            await peer.send(chunk)

    floods = [asyncio.create_task(flood(peer)) for peer in flooders]
    await wait_until(lambda: listener.stats().pending > 20_000, timeout_s=30.0)
    camera = await Peer.open(listener.port)
    rejected_before, backlog = listener.stats().rejected, listener.stats().pending
    await camera.send(b"".join(event_at(n) + b"\n" for n in range(50)))
    assert await camera.replies(50) == [{"status": "accepted"}] * 50
    # In arrival order the camera would wait for the whole backlog ahead of it; served in turn
    # it waits for a batch or two.
    assert listener.stats().rejected - rejected_before < backlog
    for peer in flooders:
        await peer.reset()
    for task in floods:
        task.cancel()
    await camera.close()


# --- a fast stop ----------------------------------------------------------------------------------


async def test_lines_of_a_peer_gone_mid_stream_are_dropped_unvalidated(
    start_listener: Start,
) -> None:
    listener: Listener = await start_listener(batch_delay_s=30.0)
    vanishing = await SilentPeer.open(listener.port)
    await vanishing.send(b"".join(event_at(n) + b"\n" for n in range(500)))
    await wait_until(lambda: listener.stats().pending == 500)
    await vanishing.reset()
    await wait_until(lambda: listener.stats().pending == 0)
    assert listener.stats().dropped_unread == 500
    await listener.stop()
    assert stored_count(listener) == 0


async def test_lines_of_a_peer_that_ended_its_stream_are_stored_after_it_closes(
    start_listener: Start,
) -> None:
    listener: Listener = await start_listener(batch_delay_s=30.0)
    shipper = await SilentPeer.open(listener.port)
    await shipper.send(b"".join(event_at(n) + b"\n" for n in range(500)))
    assert shipper.transport is not None
    shipper.transport.write_eof()  # done sending: it may never come back for replies
    await wait_until(lambda: listener.stats().pending == 500)
    conn = server_side(listener, shipper)
    await wait_until(lambda: conn._peer_eof)
    await shipper.reset()
    await listener.stop()
    assert listener.stats().dropped_unread == 0
    assert stored_count(listener) == 500


# --- `factory-tui serve` under the floods of the hardening issue ---------------------------------


def memory_kib(pid: int, field: str) -> int:
    """A VmRSS / VmHWM figure of /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class Flooders:
    """Threads that each send `x\\n` lines on one connection and never read a reply."""

    def __init__(self, port: int, count: int, most_bytes: int) -> None:
        self.sent = [0] * count
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._flood, args=(port, index, most_bytes), daemon=True)
            for index in range(count)
        ]

    def _flood(self, port: int, index: int, most_bytes: int) -> None:
        chunk = b"x\n" * 32_768
        with contextlib.suppress(OSError), socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            while not self._stop.is_set() and self.sent[index] < most_bytes:
                sock.sendall(chunk)
                self.sent[index] += len(chunk)

    def __enter__(self) -> Flooders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    async def more_sent(self, nbytes: int) -> None:
        """Wait (bounded) until the flooders together have sent `nbytes` more."""
        goal = sum(self.sent) + nbytes
        for _ in range(3_000):
            if sum(self.sent) >= goal:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the flood stalled: {sum(self.sent)} of {goal} bytes sent")


def camera_round_trip(port: int, first: int, count: int) -> float:
    """Send `count` events on a new connection, read every reply: seconds it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"".join(event_at(n) + b"\n" for n in range(first, first + count)))
        with sock.makefile("rb") as replies:
            for _ in range(count):
                assert replies.readline() == b'{"status":"accepted"}\n'
    return time.monotonic() - started


@pytest.mark.parametrize("flooders", [1, 8])
async def test_serve_under_a_tiny_line_flood_stays_small_answers_a_camera_and_stops_fast(
    tmp_path: Path, flooders: int
) -> None:
    db = tmp_path / "serve.db"
    serve = await ServeProcess.start("--db", str(db))
    pid = serve.process.pid
    try:
        before_kib = memory_kib(pid, "VmRSS")
        with Flooders(serve.port, flooders, most_bytes=400 << 20) as flood:
            # Half a million tiny lines each, far past the total budget, before the camera comes...
            await flood.more_sent(flooders << 20)
            took_s = await asyncio.to_thread(camera_round_trip, serve.port, 0, 50)
            assert took_s < 2.0, f"a camera waited {took_s:.1f} s behind the flood"
            # ... and a million more while memory is measured (beyond the socket buffers).
            await flood.more_sent(2 << 20)
            growth_mib = (memory_kib(pid, "VmHWM") - before_kib) / 1024
            assert growth_mib < 64, f"serve grew by {growth_mib:.0f} MiB under the flood"
            # SIGTERM while the flood goes on.
            started = time.monotonic()
            serve.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(serve.process.wait(), 30.0)
            stop_s = time.monotonic() - started
        assert stop_s < 5.0, f"serve took {stop_s:.1f} s to stop under the flood"
        assert serve.process.returncode == 0
        with SqliteStore.open(db, read_only=True) as store:
            assert store.count_events() == 50  # every event it acknowledged
    finally:
        await serve.kill()
