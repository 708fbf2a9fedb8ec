"""The skeleton of a view that lists rows in one sortable table (the Stations and Sites views).

The screen names its columns (each with the sort key a click on its heading selects) and its
sort keys in `s` order; this adds the columns, keeps the sort key, re-renders on a change of
sort, and hands `enter` on a row to `open_row`.
"""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from textual.widgets import DataTable

from factory_tui.console.screens.view_screen import ViewScreen

SortKey = TypeVar("SortKey", bound=str)


class SortedTableView(ViewScreen, Generic[SortKey]):
    """A view screen whose one `DataTable` is sorted by `sort_key`."""

    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(heading, sort key of a click on it) for each column, in order."""
    SORTS: ClassVar[tuple[str, ...]] = ()
    """The sort keys in the order `s` cycles through them."""

    sort_key: SortKey
    """How the rows are ordered."""

    def add_columns(self) -> None:
        """Add the columns to the table and focus it (call from `on_mount`)."""
        table = self._sorted_table()
        for index, (heading, _) in enumerate(self.COLUMNS):
            table.add_column(heading, key=str(index))
        table.focus()

    @property
    def shown_ids(self) -> tuple[str, ...]:
        """Row keys in display order."""
        return tuple(row.key.value or "" for row in self._sorted_table().ordered_rows)

    def open_row(self, key: str) -> None:
        """`enter` on the row `key` (posts the screen's message)."""
        raise NotImplementedError

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.open_row(event.row_key.value)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self._sort(self.COLUMNS[event.column_index][1])

    def action_cycle_sort(self) -> None:
        """Next sort order."""
        self._sort(self.SORTS[(self.SORTS.index(self.sort_key) + 1) % len(self.SORTS)])

    def _sort(self, key: str) -> None:
        self.sort_key = key  # type: ignore[assignment]  # one of SORTS, which are SortKeys
        if self.data is not None:
            self.render_data(self.data)

    def _sorted_table(self) -> DataTable[object]:
        table: DataTable[object] = self.query_one(DataTable)
        return table
