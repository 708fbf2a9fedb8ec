"""A view with a `/` filter field over its table (the event log, the Sites view).

The field stays hidden until `/`; every word typed must appear in a row for it to stay; `enter`
goes back to the table, `esc` clears the filter first and goes back only when there is none.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.widgets import DataTable, Input

from factory_tui.console.screens.view_screen import ViewScreen


class FilteredView(ViewScreen):
    """A view screen whose one `Input` filters what it lists; subclasses render with
    `filter_text` and name the table that has focus after the filter (`FILTER_TABLE`)."""

    FILTER_TABLE: ClassVar[str] = "DataTable"
    """Selector of the table focused when the filter is left."""

    filter_text: str = ""
    """Words every row shown must contain (as typed)."""

    def _table(self) -> DataTable[object]:
        table: DataTable[object] = self.query_one(self.FILTER_TABLE, DataTable)
        return table

    @on(Input.Changed)
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.filter_changed()
        if self.data is not None:
            self.render_data(self.data)

    def filter_changed(self) -> None:
        """Called when the filter text changes, before the rows are shown again."""

    @on(Input.Submitted)
    def _filter_submitted(self) -> None:
        self._table().focus()

    def action_filter(self) -> None:
        """Show the filter field and type into it."""
        field = self.query_one(Input)
        field.display = True
        field.focus()

    def action_back(self) -> None:
        """Clear the filter first; with none, back to the screen below."""
        field = self.query_one(Input)
        if field.value or field.has_focus:
            field.value = ""
            field.display = False
            self._table().focus()
            return
        super().action_back()
