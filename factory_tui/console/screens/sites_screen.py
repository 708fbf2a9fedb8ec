"""The fleet view (`0`, and the first screen of a database holding several sites): one row per
site with its workers by state, units, units/h, average utilization, alerts and how far behind
its newest data is, each over that site's own shift so far, in its own time zone.

`/` filters (every word must appear in a row), `s` cycles the sort, `enter` opens the site's
floor with all of its views; `0` comes back here from anywhere.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar, Final, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, Static

from factory_tui.console.screens.filtered_view import FilteredView
from factory_tui.console.screens.sorted_table import SortedTableView
from factory_tui.view_models import SiteRow, ViewData, natural_key
from factory_tui.widgets.formatting import MISSING, matches, percent, rate
from factory_tui.widgets.headings import wrap_parts
from factory_tui.widgets.table_rows import cell, fill_table, number

SiteSort = Literal["site", "utilization", "units", "throughput", "alerts", "behind"]
SITE_SORTS: Final[tuple[SiteSort, ...]] = (
    "site",
    "utilization",
    "units",
    "throughput",
    "alerts",
    "behind",
)
SITE_SORT_LABELS: Final[dict[SiteSort, str]] = {
    "site": "site",
    "utilization": "avg util ↓",
    "units": "units ↓",
    "throughput": "units/h ↓",
    "alerts": "alerts ↓",
    "behind": "data age ↓",
}
COLUMNS: Final[tuple[tuple[str, SiteSort], ...]] = (
    ("Site", "site"),
    ("Name", "site"),
    ("Shift", "site"),
    ("W I A U", "utilization"),
    ("Units", "units"),
    ("Units/h", "throughput"),
    ("Util", "utilization"),
    ("Alerts", "alerts"),
    ("Age", "behind"),
)
"""Column headings and the sort a click on each one picks."""
LEGEND: Final = "W I A U: workers working, idle, absent, unobserved now · Age: since last event"
"""Under the heading: what the packed column and the age mean (one line at 80 columns)."""


def sort_sites(rows: tuple[SiteRow, ...], key: SiteSort) -> list[SiteRow]:
    """Sites in display order: by id, or by a figure (highest first, ties by id)."""
    ordered = sorted(rows, key=lambda row: natural_key(row.site_id))
    if key == "utilization":
        ordered.sort(key=lambda row: row.avg_utilization or 0.0, reverse=True)
    elif key == "units":
        ordered.sort(key=lambda row: row.units, reverse=True)
    elif key == "throughput":
        ordered.sort(key=lambda row: row.throughput_uph or 0.0, reverse=True)
    elif key == "alerts":
        ordered.sort(key=lambda row: row.alerts, reverse=True)
    elif key == "behind":
        ordered.sort(key=lambda row: -1.0 if row.behind_s is None else row.behind_s, reverse=True)
    return ordered


def data_age(seconds: float | None) -> str:
    """How old a site's newest event is: `12s`, `4m`, `3h05m`, or a dash with no data."""
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class SitesScreen(FilteredView, SortedTableView[SiteSort]):
    """Every site of the database in one table."""

    VIEW = "sites"
    COLUMNS = COLUMNS
    SORTS = SITE_SORTS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Floor"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "cycle_sort", "Sort"),
    ]
    HELP_KEYS: ClassVar = (
        ("↑ ↓", "Move between sites"),
        ("enter", "Open the site's floor (and every view of it)"),
        ("/", "Filter sites: every word must appear in the row"),
        ("s", "Cycle sort: " + ", ".join(SITE_SORT_LABELS.values())),
        ("0", "Back to this list from any view"),
        ("esc", "Clear the filter, or back to the site's floor"),
    )
    HELP_NOTES: ClassVar = (
        "W I A U: workers working, idle, absent and unobserved now (one column, so the "
        "table fits 80 columns). Each site's figures cover its own running shift so far, in "
        "its own time zone; its alerts are evaluated by this console. Age: how long ago the "
        "site's newest event happened (a box that stopped forwarding, or cameras gone dark). "
        "Util: the average utilization of its workers.",
    )

    DEFAULT_CSS = """
    SitesScreen #sites-heading {
        height: auto;
        padding: 0 1;
    }
    SitesScreen #sites-legend {
        padding: 0 1;
        color: $text-muted;
    }
    SitesScreen #sites-filter {
        display: none;
        padding: 0 1;  /* a side margin would narrow the table while the filter is open */
    }
    SitesScreen #sites-table {
        height: 1fr;
    }
    """

    class SiteSelected(Message):
        """The user asked for a site's floor."""

        def __init__(self, site_id: str) -> None:
            self.site_id = site_id
            super().__init__()

    def __init__(self, *, zone: tzinfo) -> None:
        super().__init__(zone=zone)
        self.sort_key: SiteSort = "site"
        """How the rows are ordered."""

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        yield Static("Sites: loading…", id="sites-heading")
        yield Static(LEGEND, id="sites-legend")
        yield Input(
            placeholder="filter: site, name, shift or zone", id="sites-filter", compact=True
        )
        yield DataTable(id="sites-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sites-filter", Input).cursor_blink = self.app.animation_level != "none"
        self.add_columns()

    def render_data(self, data: ViewData) -> None:
        sites = data.fleet or ()
        words = self.filter_text.lower().split()
        shown = [
            row
            for row in sort_sites(sites, self.sort_key)
            if matches(words, row.site_id, row.name, row.window_title, row.timezone)
        ]
        heading = Text(no_wrap=True)
        heading.append("Sites", "bold")
        alerts = sum(row.alerts for row in sites)
        heading.append(
            f" · {len(sites)} sites · {sum(row.units for row in sites):,} units"
            f" · {alerts} alert{'' if alerts == 1 else 's'}"
            f" · sort {SITE_SORT_LABELS[self.sort_key]}",
            "dim",
        )
        if self.filter_text:
            heading.append(f" · filter “{self.filter_text}” {len(shown)}/{len(sites)}", "bold")
        # Wrapped between its parts at 80 columns, never inside one.
        self.query_one("#sites-heading", Static).update(wrap_parts(heading, self.size.width - 2))
        fill_table(
            self.query_one(DataTable),
            [
                (
                    row.site_id,
                    [
                        cell(row.site_id, "bold"),
                        cell(row.name),
                        cell(row.window_title),
                        number(f"{row.working} {row.idle} {row.absent} {row.unobserved}"),
                        number(f"{row.units:,}"),
                        number(rate(row.throughput_uph)),
                        number(percent(row.avg_utilization)),
                        number(str(row.alerts), "bold" if row.alerts else ""),
                        number(data_age(row.behind_s)),
                    ],
                )
                for row in shown
            ],
        )

    def open_row(self, key: str) -> None:
        self.post_message(self.SiteSelected(key))
