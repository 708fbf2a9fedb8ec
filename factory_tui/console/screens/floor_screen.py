"""The main screen: the summary bar, the health badge, the tile filter and the grid of tiles.

The keys that act on the tiles (`/`, `esc`, `s`) stay bindings of the app, so the footer lists
every key in one order; their actions call `open_filter`, `clear_filter` and `cycle_sort` here.
"""

from __future__ import annotations

import asyncio

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from factory_tui.engine.snapshot import Snapshot
from factory_tui.widgets.health_badge import HealthBadge
from factory_tui.widgets.summary_bar import SummaryBar, ViewState
from factory_tui.widgets.worker_grid import SORT_KEYS, SORT_LABELS, SORT_SHORT_LABELS, WorkerGrid


class FloorScreen(Screen[None]):
    """The tiles of every worker under the factory's summary; the app's first screen."""

    def __init__(self, *, animations: bool = True) -> None:
        super().__init__()
        self._animations = animations
        self.summary = SummaryBar(id="summary")
        """The summary bar."""
        self.health_badge = HealthBadge(id="health")
        """The machine-health badge."""
        self.filter_field = Input(
            placeholder="filter: id, name, station or state", id="filter", compact=True
        )
        """The filter field (shown by `/`, hidden again once empty and left)."""
        self.grid = WorkerGrid(id="grid")
        """The tile grid."""
        self.mounted = asyncio.Event()
        """Set once the screen and its widgets are mounted (the app waits for it)."""

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        with Horizontal(id="top"):
            yield self.summary
            yield self.health_badge
        yield self.filter_field
        yield self.grid
        yield Footer()

    def on_mount(self) -> None:
        # Snapshot tests switch animations off; a blinking cursor would make them flaky too.
        self.filter_field.cursor_blink = self._animations
        self.grid.focus()
        self.update_view()
        self.mounted.set()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.grid.filter_text = event.value
        self.update_view()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.grid.focus()
        self._sync_filter_field()

    def on_descendant_blur(self) -> None:
        self._sync_filter_field()

    def _sync_filter_field(self) -> None:
        field = self.filter_field
        if not field.is_attached:
            return  # focus moves as the app shuts down
        field.display = field.has_focus or bool(field.value)

    def show(self, snapshot: Snapshot) -> None:
        """Hand a Snapshot to the tiles (only changed tiles redraw)."""
        self.grid.show(snapshot)
        self.update_view()

    def update_view(self) -> None:
        """Tell the summary bar the sort, the filter and how many tiles it shows."""
        grid = self.grid
        self.summary.view = ViewState(
            SORT_LABELS[grid.sort_key],
            grid.filter_text,
            len(grid.shown_ids),
            grid.total,
            sort_short=SORT_SHORT_LABELS[grid.sort_key],
            sort_default=grid.sort_key == SORT_KEYS[0],
        )

    def open_filter(self) -> None:
        """Show the filter field and type into it."""
        self.filter_field.display = True
        self.filter_field.focus()

    def clear_filter(self) -> None:
        """Clear the filter: in the field, or on the grid when a filter is applied."""
        field = self.filter_field
        if field.has_focus or field.value:
            field.value = ""
            self.grid.filter_text = ""
            self.grid.focus()
            self._sync_filter_field()
            self.update_view()

    def cycle_sort(self) -> None:
        """Next sort order: name, utilization, units, UPH, last seen."""
        grid = self.grid
        grid.sort_key = SORT_KEYS[(SORT_KEYS.index(grid.sort_key) + 1) % len(SORT_KEYS)]
        self.update_view()
