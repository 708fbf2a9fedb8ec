"""The worker detail (`enter` on a tile): why a tile reads as it does.

Top to bottom: the worker, state and station; output per hour over the shift above the shift
timeline (working / idle / absent / unobserved) on one time axis; the metrics with their
definitions beside the stations visited; the worker's last 50 events. The whole screen scrolls
(a small terminal still reaches everything); `esc` goes back to the tiles.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar, Final

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Footer, Header, Static

from factory_tui.console.screens.view_screen import SHIFT_REPORT_KEY, ViewScreen
from factory_tui.engine.snapshot import US_PER_S
from factory_tui.view_models import DETAIL_EVENTS, ViewData, ViewNeeds, WorkerDetail
from factory_tui.widgets.formatting import (
    MISSING,
    STATE_WORDS,
    age,
    confidence,
    hours_minutes,
    minutes_text,
    percent,
    rate,
)
from factory_tui.widgets.headings import pack_content
from factory_tui.widgets.output_chart import OutputChart, OutputChartData
from factory_tui.widgets.table_rows import cell, fill_table, number
from factory_tui.widgets.timeline_bar import TimelineBar, TimelineData

STATE_MARKUP: Final = {
    "working": "b $text on $success",
    "idle": "b $text on $warning",
    "absent": "b $text on $error",
    "unobserved": "b $foreground on $foreground 20%",
}
"""The state badge's look, matching the tiles (the word is always there too)."""

EVENT_COLUMNS: Final = ("Time", "Event", "Station", "Count", "Conf", "Model", "Camera")


def state_badge(state: str) -> Content:
    """The state as a coloured word."""
    return Content.from_markup(
        f"[{STATE_MARKUP[state]}] $word [/]",
        word=STATE_WORDS[state],  # type: ignore[index]
    )


class WorkerDetailScreen(ViewScreen):
    """One worker: output and timeline over the shift, metrics, stations, last events."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("h", "shift_report", "Report")]
    VIEW = "worker"
    HELP_KEYS: ClassVar = (
        ("esc", "Back to the tiles"),
        ("↑ ↓ pgup pgdn", "Scroll"),
        SHIFT_REPORT_KEY,
    )
    HELP_NOTES: ClassVar = (
        "Output: units per hour of shift time per bucket (not per working hour: that is UPH).",
        "Timeline: the state holding most of each cell's time; blank after now.",
    )

    DEFAULT_CSS = """
    WorkerDetailScreen #detail-heading {
        height: auto;
        padding: 0 1;
    }
    WorkerDetailScreen #detail-body {
        height: 1fr;
        padding: 0 1;
    }
    WorkerDetailScreen OutputChart, WorkerDetailScreen TimelineBar {
        margin-top: 1;
    }
    WorkerDetailScreen #detail-panels {
        height: auto;
        margin-top: 1;
    }
    WorkerDetailScreen.-narrow #detail-panels {
        layout: vertical;
    }
    WorkerDetailScreen #detail-metrics {
        width: 1fr;
        height: auto;
    }
    WorkerDetailScreen #detail-stations {
        width: 1fr;
        height: auto;
    }
    WorkerDetailScreen.-wide #detail-stations {
        margin-left: 2;
    }
    WorkerDetailScreen.-narrow #detail-stations {
        margin-top: 1;
    }
    WorkerDetailScreen .section-title {
        margin-top: 1;
    }
    WorkerDetailScreen #detail-events {
        height: auto;
        /* DataTable caps itself at its container's height; here the page scrolls, so every
           row must be part of it (the table takes no focus and could not be scrolled). */
        max-height: initial;
    }
    """

    def __init__(self, worker_id: str, *, zone: tzinfo) -> None:
        super().__init__(zone=zone)
        self.worker_id = worker_id
        """The worker shown."""

    @property
    def needs(self) -> ViewNeeds:
        """The worker's detail."""
        return ViewNeeds(worker_id=self.worker_id)

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        yield Static(f"{self.worker_id}: loading…", id="detail-heading")
        with VerticalScroll(id="detail-body"):
            yield OutputChart(id="detail-output")
            yield TimelineBar(id="detail-timeline")
            with Horizontal(id="detail-panels"):
                yield Static(id="detail-metrics")
                yield Static(id="detail-stations")
            yield Static(f"Last {DETAIL_EVENTS} events, newest first", classes="section-title")
            table: DataTable[Text] = DataTable(
                id="detail-events", cursor_type="none", zebra_stripes=True
            )
            # The page scrolls as a whole; the table is a listing, not a second scroll area.
            table.can_focus = False
            yield table
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#detail-events", DataTable)
        for name in EVENT_COLUMNS:
            table.add_column(name, key=name)
        self.query_one("#detail-body").focus()

    def render_data(self, data: ViewData) -> None:
        detail = data.worker
        if detail is None or detail.worker.worker_id != self.worker_id:
            if data.snapshot.worker(self.worker_id) is None:
                self.query_one("#detail-heading", Static).update(
                    f"{self.worker_id} is not in this window."
                )
            return  # a tick computed for the previous view: the next one is ours
        self._heading(data, detail)
        shift = data.shift
        at_us = data.snapshot.at_us
        self.query_one(OutputChart).data = OutputChartData(
            shift.from_us, shift.to_us, at_us, detail.output
        )
        self.query_one(TimelineBar).data = TimelineData(
            shift.from_us, shift.to_us, at_us, detail.segments, self.zone
        )
        self.query_one("#detail-metrics", Static).update(self._metrics(data, detail))
        self.query_one("#detail-stations", Static).update(self._stations(detail))
        self._events(detail)

    def _heading(self, data: ViewData, detail: WorkerDetail) -> None:
        worker = detail.worker
        where = ""
        if worker.station_id is not None:
            name = data.snapshot.station_name(worker.station_id)
            station = (
                worker.station_id if name == worker.station_id else f"{worker.station_id} {name}"
            )
            where = f"last at {station}" if worker.state == "unobserved" else f"at {station}"
        seen = MISSING
        if worker.last_seen_us is not None:
            seen = age(max(0.0, (data.snapshot.at_us - worker.last_seen_us) / US_PER_S))
        who = Content.assemble(
            Content.from_markup("[b]$name[/b]", name=worker.name),
            Content.styled(f"  {worker.worker_id}  ", "$text-muted")
            if worker.name != worker.worker_id
            else Content("  "),
            state_badge(worker.state),
            Content(f" {where}" if where else ""),
        )
        parts = [
            who,
            Content.styled(f"last event {seen}", "$text-muted"),
            Content.styled(
                f"{data.window_title}, as of {self.clock(data.snapshot.at_us)}", "$text-muted"
            ),
        ]
        # At 80 columns the heading wraps between its parts, never inside one.
        heading = pack_content(parts, self.size.width - 2, separator="  · ")
        self.query_one("#detail-heading", Static).update(heading)

    def _metrics(self, data: ViewData, detail: WorkerDetail) -> Table:
        worker = detail.worker
        gap = minutes_text(data.max_gap_s)
        elapsed = data.snapshot.window.seconds
        unobserved = max(0.0, elapsed - worker.active_s - worker.idle_s - worker.absent_s)
        mean_confidence = confidence(worker.mean_confidence)
        table = Table.grid(padding=(0, 1))
        table.title = f"Metrics, {data.window_title} so far"
        table.title_justify = "left"
        table.title_style = "bold"
        table.add_column(no_wrap=True, style="bold")
        table.add_column(no_wrap=True, justify="right")
        table.add_column(style="dim")
        rows = (
            (
                "Active",
                hours_minutes(worker.active_s),
                f"working, each gap capped at {gap}",
            ),
            ("Idle", hours_minutes(worker.idle_s), "idle, counted the same way"),
            ("Absent", hours_minutes(worker.absent_s), "absent, counted the same way"),
            ("Unobserved", hours_minutes(unobserved), f"before first sighting or gap > {gap}"),
            ("Utilization", percent(worker.utilization), "active / (active + idle)"),
            ("Units", f"{worker.units:,}", "sum of product_count counts"),
            ("UPH", rate(worker.uph), "units / active hours"),
            ("Confidence", mean_confidence, "mean over the worker's events"),
            ("Events", f"{worker.events:,}", "events in the window"),
        )
        for name, value, definition in rows:
            table.add_row(name, value, definition)
        return table

    def _stations(self, detail: WorkerDetail) -> Table | Text:
        if not detail.stations:
            return Text("Stations visited: none in this window.", style="dim")
        # Beside the metrics at 120 columns: single spaces between columns, none at the edges.
        table = Table(
            box=None,
            padding=(0, 1),
            pad_edge=False,
            collapse_padding=True,
            title="Stations visited",
            title_justify="left",
        )
        table.title_style = "bold"
        table.add_column("Station", no_wrap=True)
        for heading in ("Working", "Idle", "Absent", "Units"):
            table.add_column(heading, justify="right", no_wrap=True)
        table.add_column("From–to", no_wrap=True, min_width=11)
        for visit in detail.stations:
            name = (
                visit.station_id
                if visit.name == visit.station_id
                else f"{visit.station_id} {visit.name}"
            )
            table.add_row(
                name,
                hours_minutes(visit.working_s),
                hours_minutes(visit.idle_s),
                hours_minutes(visit.absent_s),
                f"{visit.units:,}",
                f"{self.clock(visit.first_us, seconds=False)}–"
                f"{self.clock(visit.last_us, seconds=False)}",
            )
        return table

    def _events(self, detail: WorkerDetail) -> None:
        table: DataTable[Text] = self.query_one("#detail-events", DataTable)
        fill_table(
            table,
            [
                (
                    str(event.id),
                    [
                        cell(self.clock(event.ts_us)),
                        cell(event.event_type),
                        cell(event.workstation_id),
                        number(str(event.count) if event.event_type == "product_count" else ""),
                        number(f"{event.confidence:.2f}"),
                        cell(event.model_version or MISSING),
                        cell(event.camera_id or MISSING),
                    ],
                )
                for event in detail.events
            ],
        )
