"""A station's timeline (`enter` in the stations view): when it was occupied, and by whom.

The bar shows occupied (someone working there) against unoccupied stretches over the shift (a
worker idle there does not occupy it); the table lists every worker with counted time or units
at the station. `esc` goes back.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from factory_tui.console.screens.stations_screen import present_now
from factory_tui.console.screens.view_screen import ViewScreen
from factory_tui.view_models import StationDetail, ViewData, ViewNeeds
from factory_tui.widgets.formatting import hours_minutes, percent, rate
from factory_tui.widgets.table_rows import cell, fill_table, number
from factory_tui.widgets.timeline_bar import TimelineBar, TimelineData

WORKER_COLUMNS = ("Worker", "Name", "Working", "Idle", "Absent", "Units", "Now")


class StationDetailScreen(ViewScreen):
    """One station: occupancy over the shift and the workers who were there."""

    VIEW = "station"
    HELP_KEYS: ClassVar = (
        ("esc", "Back to the stations"),
        ("↑ ↓", "Move between workers"),
        ("enter", "Open the worker's detail"),
    )
    HELP_NOTES: ClassVar = (
        "Occupied: at least one worker's counted time is working here. A worker's time here is "
        "counted as in the worker detail (sighting to sighting, gaps capped at max_gap).",
    )

    DEFAULT_CSS = """
    StationDetailScreen #station-heading {
        height: auto;
        padding: 0 1;
    }
    /* Padding, not side margins: a side margin on one child narrows every child of the
       screen, the table included. */
    StationDetailScreen TimelineBar {
        margin-top: 1;
        padding: 0 1;
    }
    StationDetailScreen .section-title {
        margin-top: 1;
        padding: 0 1;
    }
    StationDetailScreen #station-workers {
        height: 1fr;
    }
    """

    def __init__(self, station_id: str, *, zone: tzinfo) -> None:
        super().__init__(zone=zone)
        self.station_id = station_id
        """The station shown."""

    @property
    def needs(self) -> ViewNeeds:
        """The station's timeline and workers."""
        return ViewNeeds(station_id=self.station_id)

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        yield Static(f"{self.station_id}: loading…", id="station-heading")
        yield TimelineBar()
        yield Static("Workers at this station, most working time first", classes="section-title")
        yield DataTable(id="station-workers", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in WORKER_COLUMNS:
            table.add_column(name, key=name)
        table.focus()

    def render_data(self, data: ViewData) -> None:
        detail = data.station
        if detail is None or detail.station.workstation_id != self.station_id:
            if data.snapshot.station(self.station_id) is None:
                self.query_one("#station-heading", Static).update(
                    f"{self.station_id} is not in this window."
                )
            return
        self.query_one("#station-heading", Static).update(self._heading(data, detail))
        shift = data.shift
        self.query_one(TimelineBar).data = TimelineData(
            shift.from_us,
            shift.to_us,
            data.snapshot.at_us,
            detail.segments,
            self.zone,
            labels={"working": "occupied", "unobserved": "not occupied"},
            show_stations=False,
        )
        fill_table(
            self.query_one(DataTable),
            [
                (
                    worker.worker_id,
                    [
                        cell(worker.worker_id, "bold"),
                        cell(worker.name),
                        number(hours_minutes(worker.working_s)),
                        number(hours_minutes(worker.idle_s)),
                        number(hours_minutes(worker.absent_s)),
                        number(f"{worker.units:,}"),
                        cell("here" if worker.present else "—"),
                    ],
                )
                for worker in detail.workers
            ],
        )

    def _heading(self, data: ViewData, detail: StationDetail) -> Text:
        station = detail.station
        heading = Text(no_wrap=False)
        title = station.workstation_id
        if station.name != station.workstation_id:
            title += f" {station.name}"
        heading.append(title, "bold")
        heading.append(f" · {data.window_title} so far, as of {self.clock(data.snapshot.at_us)}\n")
        names = {worker.worker_id: worker.name for worker in data.snapshot.workers}
        present = present_now(station.workers_present, names) or "nobody"
        heading.append(
            f"occupied {hours_minutes(station.occupancy_s)} ({percent(station.utilization)})"
            f" · {station.units:,} units · {rate(station.throughput_uph)} units/h"
            f" · present now: {present}",
            "dim",
        )
        return heading

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from factory_tui.widgets.worker_grid import WorkerGrid

        if event.row_key.value is not None:
            # The same message as a tile's `enter`: the app opens the worker's detail.
            self.post_message(WorkerGrid.WorkerSelected(event.row_key.value))
