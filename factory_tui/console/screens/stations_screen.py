"""The stations view (`2`): every workstation's figures in a sortable table.

`s` cycles the sort order (a click on a column heading sorts by that column); `enter` opens the
station's timeline; `1` or `esc` goes back to the worker tiles.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar, Final, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from factory_tui.console.screens.sorted_table import SortedTableView
from factory_tui.engine.snapshot import StationMetrics
from factory_tui.view_models import ViewData, natural_key
from factory_tui.widgets.formatting import hours_minutes, percent, rate
from factory_tui.widgets.headings import wrap_parts
from factory_tui.widgets.table_rows import cell, fill_table, number

StationSort = Literal["name", "utilization", "units", "throughput", "present"]
STATION_SORTS: Final[tuple[StationSort, ...]] = (
    "name",
    "utilization",
    "units",
    "throughput",
    "present",
)
STATION_SORT_LABELS: Final[dict[StationSort, str]] = {
    "name": "station",
    "utilization": "utilization ↓",
    "units": "units ↓",
    "throughput": "units/h ↓",
    "present": "workers present ↓",
}
COLUMNS: Final[tuple[tuple[str, StationSort], ...]] = (
    ("Station", "name"),
    ("Name", "name"),
    ("Occupied", "utilization"),
    ("Util", "utilization"),
    ("Units", "units"),
    ("Units/h", "throughput"),
    ("Present", "present"),
)
"""Column headings and the sort a click on each one picks."""


def present_now(workers_present: tuple[str, ...], names: dict[str, str]) -> str:
    """Who is at a station now, by name as the tiles order them (W7 before W13); "" for
    nobody."""
    people = sorted(
        ((names.get(w, w), w) for w in workers_present),
        key=lambda person: (natural_key(person[0]), natural_key(person[1])),
    )
    return ", ".join(name for name, _ in people)


def sort_stations(stations: tuple[StationMetrics, ...], key: StationSort) -> list[StationMetrics]:
    """Stations in display order: by id, or by a figure (highest first, ties by id)."""
    ordered = sorted(stations, key=lambda station: natural_key(station.workstation_id))
    if key == "utilization":
        ordered.sort(key=lambda station: station.occupancy_s, reverse=True)
    elif key == "units":
        ordered.sort(key=lambda station: station.units, reverse=True)
    elif key == "throughput":
        ordered.sort(key=lambda station: station.throughput_uph or 0.0, reverse=True)
    elif key == "present":
        ordered.sort(key=lambda station: len(station.workers_present), reverse=True)
    return ordered


class StationsScreen(SortedTableView[StationSort]):
    """Every station's occupancy, utilization, units, throughput and who is there now."""

    VIEW = "stations"
    COLUMNS = COLUMNS
    SORTS = STATION_SORTS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Workers"),
        Binding("s", "cycle_sort", "Sort"),
    ]
    HELP_KEYS: ClassVar = (
        ("↑ ↓", "Move between stations"),
        ("enter", "Open the station's timeline"),
        ("s", "Cycle sort: " + ", ".join(STATION_SORT_LABELS.values())),
        ("1 / esc", "Back to the worker tiles"),
    )
    HELP_NOTES: ClassVar = (
        "Occupied: time during which at least one worker was working at the station (the "
        "union over workers, not their sum). Util: occupied / time so far. Units/h: units / "
        "hours so far. Present: workers working or idle there now.",
    )

    DEFAULT_CSS = """
    StationsScreen #stations-heading {
        height: auto;
        padding: 0 1;
    }
    StationsScreen #stations-table {
        height: 1fr;
    }
    """

    class StationSelected(Message):
        """The user asked for a station's timeline."""

        def __init__(self, station_id: str) -> None:
            self.station_id = station_id
            super().__init__()

    def __init__(self, *, zone: tzinfo) -> None:
        super().__init__(zone=zone)
        self.sort_key: StationSort = "name"
        """How the rows are ordered."""

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        yield Static("Stations: loading…", id="stations-heading")
        yield DataTable(id="stations-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.add_columns()

    def render_data(self, data: ViewData) -> None:
        snapshot = data.snapshot
        heading = Text(no_wrap=True)
        heading.append(f"Stations · {data.window_title} so far", "bold")
        heading.append(
            f" · {len(snapshot.stations)} stations · as of {self.clock(snapshot.at_us)}"
            f" · sort {STATION_SORT_LABELS[self.sort_key]}",
            "dim",
        )
        # Wrapped between its parts at 80 columns, never inside one.
        self.query_one("#stations-heading", Static).update(wrap_parts(heading, self.size.width - 2))
        names = {worker.worker_id: worker.name for worker in snapshot.workers}
        rows = []
        for station in sort_stations(snapshot.stations, self.sort_key):
            present = present_now(station.workers_present, names)
            rows.append(
                (
                    station.workstation_id,
                    [
                        cell(station.workstation_id, "bold"),
                        cell(station.name),
                        number(hours_minutes(station.occupancy_s)),
                        number(percent(station.utilization)),
                        number(f"{station.units:,}"),
                        number(rate(station.throughput_uph)),
                        cell(present or "—"),
                    ],
                )
            )
        fill_table(self.query_one(DataTable), rows)

    def open_row(self, key: str) -> None:
        self.post_message(self.StationSelected(key))
