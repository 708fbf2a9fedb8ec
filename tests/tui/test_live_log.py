"""Newest-first lists stay live: the event log (and the alerts view's recent alerts) keep the
newest rows in sight while the cursor is on the first row, hold still (saying how many newer
rows arrived) once the user has moved down, and go live again on `Home` or when the filter is
cleared."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import timedelta

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from factory_tui.console.app import FactoryApp
from factory_tui.console.screens.alerts_screen import AlertsScreen
from factory_tui.console.screens.event_log_screen import EventLogScreen
from factory_tui.records import AlertRecord
from factory_tui.widgets.table_rows import cell, fill_table
from tests.tui.conftest import ConsoleFactory
from tests.tui.floor import AT, line
from tests.tui.test_drilldown import SIZE, drawn, open_view, settle, table_keys

TICKS = 50
"""Ticks to wait at most for submitted events to be stored and read back."""


SECONDS = itertools.count(1)
"""Each new event a second later than the last: the same line twice is a duplicate."""


def top_key(table: DataTable[object]) -> str:
    """The key of the first row in sight (rows are one line high)."""
    return table_keys(table)[int(table.scroll_y)]


async def arrive(app: FactoryApp, pilot: Pilot[None], *workers: str) -> None:
    """New events from `workers` stored by the console's own listener and read back by the
    event log (the writer stores them in the background: a few ticks at most)."""
    screen = app.screen
    assert isinstance(screen, EventLogScreen)
    assert screen.data is not None
    assert screen.data.events
    newest = screen.data.events[0].id
    assert app.listener is not None
    lines = [line(AT + timedelta(seconds=next(SECONDS)), w, "S6", "idle") for w in workers]
    replies = await app.listener.submit(lines)
    assert {reply["status"] for reply in replies} == {"accepted"}
    for _ in range(TICKS):
        await settle(app, pilot)
        await pilot.pause()
        if screen.data.events[0].id >= newest + len(workers):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(workers)} new events never reached the event log")


async def test_the_event_log_stays_live_holds_when_moved_and_home_goes_live(
    console: ConsoleFactory,
) -> None:
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "3", EventLogScreen)
        table = screen.query_one("#log-accepted", DataTable)
        title = screen.query_one("#accepted-title", Static)

        # Untouched: each new event shows on top, the cursor with it.
        await arrive(app, pilot, "W6")
        assert top_key(table) == str(screen.shown_accepted[0])
        assert table.cursor_row == 0

        # One row down: the rows in sight hold still, the title counts what arrived above.
        await pilot.press("down")
        await pilot.pause()
        held_top = top_key(table)
        held_cursor = table_keys(table)[table.cursor_row]
        await arrive(app, pilot, "W6", "W6", "W6")
        assert top_key(table) == held_top
        assert table_keys(table)[table.cursor_row] == held_cursor
        assert "3 newer — Home to go live" in drawn(title)
        await arrive(app, pilot, "W6")
        assert "4 newer" in drawn(title)

        # Home: back on the newest row at once, and live for the next ones.
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0
        assert table.scroll_y == 0
        assert "newer" not in drawn(title)
        await arrive(app, pilot, "W6")
        assert top_key(table) == str(screen.shown_accepted[0])

        # With a filter: the newest match on top; moved down it holds; esc goes live again.
        # ("w" is in every worker's id: more matches than the table shows, so it can scroll.)
        await pilot.press("slash", "w", "enter")
        await arrive(app, pilot, "W1")
        assert top_key(table) == str(screen.shown_accepted[0])
        await pilot.press("down", "down")
        await pilot.pause()
        held_top = top_key(table)
        held_cursor = table_keys(table)[table.cursor_row]
        await arrive(app, pilot, "W1", "W1")
        assert top_key(table) == held_top
        assert table_keys(table)[table.cursor_row] == held_cursor
        assert "2 newer" in drawn(title)
        await pilot.press("escape")
        await pilot.pause()
        assert screen.filter_text == ""
        assert table.cursor_row == 0
        await arrive(app, pilot, "W6")
        assert top_key(table) == str(screen.shown_accepted[0])
        assert table.scroll_y == 0
        assert "newer" not in drawn(title)


class Log(App[None]):
    """One newest-first table shorter than its rows."""

    CSS = "DataTable { height: 6; }"

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row")


def rows(newest: int, count: int = 20) -> list[tuple[str, list[object]]]:
    return [(str(key), [cell(str(key))]) for key in range(newest, newest - count, -1)]


async def test_fill_table_newest_first_counts_rows_that_arrive_above_a_held_view() -> None:
    app = Log()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(DataTable)
        table.add_column("Id", key="id")
        assert fill_table(table, rows(100), newest_first=True) == 0
        await pilot.pause()
        # Live: newer rows come in on top and the cursor stays on the first row.
        assert fill_table(table, rows(102), newest_first=True) == 0
        await pilot.pause()
        assert (table.cursor_row, table.scroll_y) == (0, 0)
        table.move_cursor(row=8)
        await pilot.pause()
        held_top = top_key(table)
        assert fill_table(table, rows(105), newest_first=True) == 3
        await pilot.pause()
        assert table_keys(table)[table.cursor_row] == "94"
        assert top_key(table) == held_top
        # Rows in the same order are updated in place: nothing arrived.
        assert fill_table(table, rows(105), newest_first=True) == 0


async def test_recent_alerts_hold_when_moved_and_home_goes_live(console: ConsoleFactory) -> None:
    """The alerts view's recent alerts, newest first: a new alert (one more row in the list
    the tick hands down) joins on top; moved down, the cursor keeps its alert and the title
    counts the newer one; Home goes back to the newest."""
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "4", AlertsScreen)
        data = screen.data
        assert data is not None
        assert data.alerts.history is not None
        history = data.alerts.history
        assert len(history) >= 2
        table = screen.query_one("#alerts-history", DataTable)
        title = screen.query_one("#history-title", Static)
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        held = table_keys(table)[table.cursor_row]
        newest = max(alert.id for alert in history) + 1
        raised = AlertRecord(newest, "idle_too_long", "W5", "W5: idle", data.snapshot.at_us, None)
        alerts = replace(data.alerts, history=(raised, *history))
        screen.show(replace(data, alerts=alerts))
        await pilot.pause()
        assert table_keys(table)[0] == str(newest)
        assert table_keys(table)[table.cursor_row] == held
        assert "1 newer — Home to go live" in drawn(title)
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0
        assert "newer" not in drawn(title)
