"""fill_table: a tick's rows into a DataTable, the header in line with them whenever drawn."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import DataTable

from factory_tui.widgets.table_rows import cell, fill_table


class OneTable(App[None]):
    """A table sized to its rows, as the alerts view and the worker detail have them."""

    CSS = "DataTable { height: auto; }"

    def compose(self) -> ComposeResult:
        yield DataTable()


def drawn_lines(table: DataTable[object], lines: int) -> list[str]:
    return [strip.text.rstrip() for strip in table.render_lines(Region(0, 0, 60, lines))]


async def test_the_header_drawn_before_the_table_is_idle_keeps_in_line() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(DataTable)
        table.add_column("Kind", key="kind")
        table.add_column("Subject", key="subject")
        await pilot.pause()
        fill_table(table, [("1", [cell("CAMERA DARK"), cell("W4")])])
        # A screen refresh may draw the table before it measures its new rows (when idle).
        drawn_lines(table, 1)
        await pilot.pause()
        header, row = drawn_lines(table, 2)
        assert header.index("Subject") == row.index("W4")
        # Wider cells in the same rows are updated in place, header and all.
        fill_table(table, [("1", [cell("IDLE TOO LONG FOR HOURS"), cell("W4")])])
        drawn_lines(table, 2)
        await pilot.pause()
        header, row = drawn_lines(table, 2)
        assert header.index("Subject") == row.index("W4")


async def test_the_cursor_stays_on_its_row_when_the_order_changes() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(DataTable)
        table.add_column("Id", key="id")
        fill_table(table, [(key, [cell(key)]) for key in ("a", "b", "c")])
        table.move_cursor(row=1)
        await pilot.pause()
        fill_table(table, [(key, [cell(key)]) for key in ("c", "b", "a", "d")])
        assert table.cursor_row == 1
        fill_table(table, [(key, [cell(key)]) for key in ("b", "a")])
        assert table.cursor_row == 0
        # The row it was on is gone: the cursor stays at that place, within the rows left.
        fill_table(table, [(key, [cell(key)]) for key in ("x",)])
        assert table.cursor_row == 0
