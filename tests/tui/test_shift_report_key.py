"""`h` on the alerts and worker views: the shift on screen as the same HTML page as
`report --html`, written by a thread worker, and a notification saying where."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import lxml.html
import pytest
from textual.pilot import Pilot

from factory_tui.console.app import FactoryApp
from factory_tui.console.screens.alerts_screen import AlertsScreen
from factory_tui.console.screens.view_screen import ViewScreen, report_notice, toast_width
from factory_tui.console.screens.worker_detail_screen import WorkerDetailScreen
from tests.tui.conftest import ConsoleFactory
from tests.tui.test_drilldown import SIZE, TICK_TIMEOUT_S, open_view, press_and_tick

NAME = "shift-report-2025-03-04-A.html"
"""Shift A of the fixture day, as the console shows it at 10:30."""


async def write_report(app: FactoryApp, pilot: Pilot[None]) -> lxml.html.HtmlElement:
    """Press `h`, wait for the report worker, return the page it wrote in the current folder."""
    await pilot.press("h")
    await asyncio.wait_for(app.workers.wait_for_complete(), TICK_TIMEOUT_S)
    await pilot.pause()
    assert [path.name for path in Path.cwd().glob("shift-report-*")] == [NAME]
    messages = [notification.message for notification in app._notifications]
    title, name, folder = messages[-1].split("\n")
    assert (title, name) == ("Shift A, 2025-03-04: report written", NAME)
    assert folder == f"in {Path.cwd()}" or folder.startswith("in ~")
    return lxml.html.fromstring((Path.cwd() / NAME).read_bytes())


@pytest.mark.parametrize(("key", "screen"), [("4", AlertsScreen), ("enter", WorkerDetailScreen)])
async def test_h_writes_the_report_of_the_shift_on_screen(
    console: ConsoleFactory, key: str, screen: type[ViewScreen]
) -> None:
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await press_and_tick(app, pilot)
        view = await open_view(app, pilot, key, screen)
        assert view.data is not None
        snapshot = view.data.snapshot
        page = await write_report(app, pilot)
    (window,) = page.xpath('//p[@data-field="window"]')
    assert int(window.get("data-from")) == snapshot.window.from_us
    assert int(window.get("data-at")) == snapshot.at_us
    units = {
        row.get("data-worker-id"): json.loads(
            row.xpath('td[@data-field="units"]')[0].get("data-value")
        )
        for row in page.xpath('//section[@id="workers"]//tr[@data-worker-id]')
    }
    assert units == {worker.worker_id: worker.units for worker in snapshot.workers}


def test_the_notice_at_80_columns_wraps_between_parts_never_inside_the_file_name() -> None:
    """At 80 columns a notification holds 37 cells a line: the path used to wrap mid-name."""
    width = toast_width(80)
    assert width == 37
    deep = Path("/srv/factory/reports/north-plant/line-3/2025/march") / NAME
    lines = report_notice("Shift A, 2025-03-04", deep, width).split("\n")
    assert lines[1] == NAME
    assert all(len(line) <= width for line in lines), lines
    assert lines[2] == "in …/north-plant/line-3/2025/march"
    home = Path.home() / "reports" / NAME
    assert report_notice("Shift A", home, width).split("\n")[2] == "in ~/reports"
