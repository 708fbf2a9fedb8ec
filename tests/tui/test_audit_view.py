"""The event log's audit trail: the connections the console's own listener saw, from the
`audit` table, under their own heading and found by the filter."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Static

from factory_tui.console.screens.event_log_screen import EventLogScreen
from factory_tui.ingest.client import IngestClient
from tests.tui.conftest import ConsoleFactory
from tests.tui.floor import AT, line
from tests.tui.test_drilldown import (
    SIZE,
    drawn,
    listener_port,
    open_view,
    row_text,
    settle,
    table_keys,
)

TICKS = 50
"""Ticks to wait at most for the audit entries to be written and read back."""


async def test_the_event_log_shows_the_audit_trail(console: ConsoleFactory) -> None:
    """A camera connects, sends a line and leaves: the audit list shows its connection opened
    and closed (newest first) with the line count, and `/` with its port finds both."""
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "3", EventLogScreen)
        client = IngestClient("127.0.0.1", listener_port(app))
        await client.connect()
        assert client._writer is not None
        host, own_port = client._writer.get_extra_info("sockname")[:2]
        await client.send([line(AT, "W1", "S1", "working")])
        await client.close()
        peer = f"{host}:{own_port}"
        table = screen.query_one("#log-audit", DataTable)
        for _ in range(TICKS):
            await settle(app, pilot)
            if len(screen.shown_audit) >= 2:
                break
            await asyncio.sleep(0.1)
        rows = [row_text(table, key) for key in table_keys(table)]
        assert [row[1:] for row in rows[:2]] == [
            ["connection closed", peer, "1 line; auth none needed; plain TCP"],
            ["connection opened", peer, "plain TCP"],
        ]
        title = drawn(screen.query_one("#audit-title", Static))
        assert title.strip() == "Audit trail, newest first (last 2)"
        await pilot.press("slash", *str(own_port))
        await pilot.pause()
        assert len(screen.shown_audit) == 2
        assert screen.shown_accepted == ()
