"""The event log at 80 columns with a long rejection: the rejected list is cut to the width (no
sideways scroll), and the highlighted line's whole error and text show under it once the list
has focus."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from factory_tui.console.screens.event_log_screen import EventLogScreen
from tests.tui.conftest import ConsoleFactory
from tests.tui.floor import AT, line
from tests.tui.test_drilldown import drawn, listener_port, open_view, row_text, send, settle
from tests.tui.test_small_terminal import SIZE, assert_fits


async def test_a_long_error_is_cut_to_80_columns_and_shown_whole_under_the_list(
    console: ConsoleFactory,
) -> None:
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "3", EventLogScreen)
        long_model = b'"model_version": "' + b"m" * 90 + b'"'
        bad = line(AT, "W1", "S1", "working").replace(b'"model_version": "yolo-v8.2"', long_model)
        (reply,) = await send(listener_port(app), [bad])
        error = str(reply["error"])
        assert reply["status"] == "rejected"
        assert len(error) > 80
        await settle(app, pilot)
        assert_fits(app, "event log")
        table = screen.query_one("#log-rejected", DataTable)
        (key,) = [row.key.value for row in table.ordered_rows]
        shown_error = row_text(table, str(key))[2]
        assert shown_error.endswith("…")
        assert error.startswith(shown_error[:-1])
        detail = screen.query_one("#rejected-detail", Static)
        assert not detail.display  # only while the list has focus
        table.focus()
        await pilot.pause()
        assert detail.display
        assert " ".join(error.split()) in " ".join(drawn(detail).split())
        assert_fits(app, "event log, rejected list focused")
        screen.query_one("#log-accepted", DataTable).focus()
        await pilot.pause()
        assert not detail.display
