"""The event log names one-way connections: a peer that reads none of its replies is read on,
and the heading says so (issue 16)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

from textual.widgets import Static

from factory_tui.console.screens.event_log_screen import EventLogScreen
from tests.tui.conftest import ConsoleFactory
from tests.tui.test_drilldown import SIZE, drawn, listener_port, open_view, settle


def flood_without_reading(port: int, stop: threading.Event) -> None:
    """Garbage lines whose long rejections are never read (bounded: 64 MB at most)."""
    chunk = b"x\n" * 32_768
    with contextlib.suppress(OSError), socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        for _ in range(1_000):
            if stop.is_set():
                return
            sock.sendall(chunk)


async def test_the_event_log_heading_counts_one_way_connections(console: ConsoleFactory) -> None:
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "3", EventLogScreen)
        heading = screen.query_one("#log-heading", Static)
        assert "one-way" not in drawn(heading)
        stop = threading.Event()
        flooder = threading.Thread(
            target=flood_without_reading, args=(listener_port(app), stop), daemon=True
        )
        flooder.start()
        try:
            for _ in range(300):  # bounded: found one-way after 2 s of unread replies
                await settle(app, pilot)
                if "one-way" in drawn(heading):
                    break
                await asyncio.sleep(0.05)
            assert "1 one-way (" in drawn(heading)
            assert "replies unread" in drawn(heading)
        finally:
            stop.set()
            await asyncio.to_thread(flooder.join, 30)
