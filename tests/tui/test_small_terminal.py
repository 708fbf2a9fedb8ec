"""Every view fits 80x24, the size a floor laptop's terminal opens at: no table scrolls
sideways, no heading wraps inside one of its parts, and the filter does not reflow the tiles."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Static

from factory_tui.widgets.output_chart import OutputChart
from factory_tui.widgets.table_rows import cell, fill_table
from factory_tui.widgets.table_rows import number as number_cell
from tests.tui.conftest import ConsoleFactory

SIZE = (80, 24)


def assert_fits(app: App[None], view: str) -> None:
    """Nothing on the screen on top is wider than the terminal or scrolls sideways."""
    screen = app.screen
    for widget in screen.query("*"):
        if not widget.display or not widget.size.width:
            continue
        assert widget.region.right <= SIZE[0], f"{view}: {widget!r} at {widget.region}"
    for table in screen.query(DataTable):
        if not table.display or not table.row_count:
            continue
        assert table.virtual_size.width <= table.scrollable_content_region.width, (
            f"{view}: {table.id} is {table.virtual_size.width} wide in "
            f"{table.scrollable_content_region.width} columns"
        )


def heading_lines(static: Static) -> list[str]:
    """The heading's lines as it was given them (before Textual wraps anything)."""
    return str(static.render()).split("\n")


async def test_every_view_fits_80x24(console: ConsoleFactory) -> None:
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await app.tick_now()
        await pilot.pause()
        assert_fits(app, "tiles")
        columns = app.grid.columns
        assert columns == 3

        await pilot.press("slash")
        await pilot.pause()
        assert app.grid.columns == columns, "opening the filter reflowed the tiles"
        assert_fits(app, "filter")
        await pilot.press("escape")
        await pilot.pause()
        assert app.grid.columns == columns

        await pilot.press("enter")  # the first tile: Ana Silva, working
        await app.tick_now()
        await pilot.pause()
        heading = app.screen.query_one("#detail-heading", Static)
        lines = heading_lines(heading)
        assert len(lines) == heading.size.height, "the worker heading wrapped"
        assert all(len(line) <= heading.content_region.width for line in lines)
        assert any("as of 10:30:00" in line for line in lines), lines
        chart = app.screen.query_one(OutputChart)
        caption = chart.render().plain.split("\n")[0]
        assert len(caption) <= chart.content_region.width, caption
        assert "…" not in caption
        assert "still filling" in caption
        assert_fits(app, "worker detail")

        for key, view in (("4", "alerts"), ("2", "stations"), ("3", "event log")):
            await pilot.press(key)
            await app.tick_now()
            await pilot.pause()
            assert_fits(app, view)
            if view == "alerts":
                drift = app.screen.query_one("#alerts-drift", DataTable)
                assert drift.row_count
                assert drift.ordered_columns[-1].label.plain == "State"
            if view == "stations":
                await pilot.press("enter")
                await app.tick_now()
                await pilot.pause()
                assert_fits(app, "station detail")
                await pilot.press("escape")
                await pilot.pause()
        heading = app.screen.query_one("#log-heading", Static)
        assert len(heading_lines(heading)) == heading.size.height, "the event log heading wrapped"

        await pilot.press("question_mark")
        await pilot.pause()
        assert_fits(app, "help")


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable(id="table")


async def test_elastic_columns_give_way_so_the_table_fits() -> None:
    long_state = "DRIFTING: confidence and rate"
    rows = [
        (
            str(number),
            [
                cell(f"yolo-v{number}"),
                number_cell("0.91"),
                number_cell("0.74"),
                number_cell("-0.17"),
                number_cell("117"),
                number_cell("82.0"),
                cell(long_state + " " * number),
            ],
        )
        for number in range(3)
    ]
    headings = ("Model", "Conf baseline", "Conf now", "Change", "Units/h baseline", "Now", "State")
    app = OneTable()
    async with app.run_test(size=SIZE) as pilot:
        table: DataTable[Text] = app.query_one(DataTable)
        for heading in headings:
            table.add_column(heading, key=heading)
        fill_table(table, rows)
        await pilot.pause()
        assert table.virtual_size.width > SIZE[0]  # as it was: a sideways scroll
        fill_table(table, rows, elastic=(6,))
        await pilot.pause()
        assert table.virtual_size.width <= table.scrollable_content_region.width
        state = table.get_row("0")[6]
        assert state.plain.endswith("…")
        assert state.plain[:-1] in long_state
        assert table.get_row("0")[0].plain == "yolo-v0"  # the others keep their full width
