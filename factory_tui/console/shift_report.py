"""The shift report of what a console shows, written from a worker thread (no Textual here).

The same page as `report --html` (`reports.shift.gather` and `reports.html.render`), read from
the console's own store between two ticks, for the window and instant on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from factory_tui.console.fleet import FleetPipeline
from factory_tui.console.pipeline import TickPipeline
from factory_tui.engine.snapshot import Snapshot
from factory_tui.models import now_us
from factory_tui.reports.html import render
from factory_tui.reports.shift import file_name, gather


@dataclass(frozen=True, slots=True)
class ShiftReportPage:
    """A rendered report and the file name it is offered under."""

    name: str
    title: str
    html: str


def shift_report_page(
    pipeline: TickPipeline | FleetPipeline, snapshot: Snapshot
) -> ShiftReportPage | None:
    """The report of the Snapshot's window at its instant (None once the console closed).

    Raises StoreError when the database cannot be read.
    """
    settings = pipeline.settings
    window, at_us = snapshot.window, snapshot.at_us
    report = pipeline.read(
        lambda store: gather(store, settings, window, at_us, generated_us=now_us())
    )
    if report is None:
        return None
    return ShiftReportPage(file_name(window, settings.tz), report.title, render(report))
