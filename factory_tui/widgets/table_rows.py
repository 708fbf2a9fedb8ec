"""Filling a DataTable from a tick's rows without losing the user's place in it.

Views refresh their tables every tick. Rebuilding a table moves its cursor back to the top,
so `fill_table` updates changed cells in place when the rows are the same ones in the same
order, and otherwise rebuilds it with the cursor put back on the row it was on.

Newest-first lists (the event log, recent alerts) are live while the user has not moved: the
newest rows stay in sight with the cursor on the first. Once the user has moved down (or scrolled
away) the rows in sight hold still, and `fill_table` says how many newer rows arrived above them.

It also widens the columns for the new cells at once. DataTable measures them only when it is
next idle, and does not redraw what it drew before that: a screen refresh in between (a table
sized to its rows shows just its header until then) left the header with the old widths, out
of line with the rows under it, until the table next changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Row = tuple[str, Sequence[Text]]
"""A row's key and its cells (rich Text: data is never parsed as markup)."""


def fill_table(
    table: DataTable[Text],
    rows: Sequence[Row],
    *,
    elastic: Sequence[int] = (),
    newest_first: bool = False,
) -> int:
    """Show `rows` in `table`, keeping the cursor on the same row key where it still exists;
    the `elastic` columns are cut to fit the table's width (see `fit_width`).

    With `newest_first`, a table whose cursor is on its first row and not scrolled stays live
    (cursor and view on the newest row); otherwise the view holds still. Returns the number of
    rows that arrived above a held view (0 when live)."""
    if elastic:
        rows = fit_width(table, rows, elastic)
    keys = [key for key, _ in rows]
    ordered = [row.key.value for row in table.ordered_rows]
    columns = [column.key for column in table.ordered_columns]
    _widen(table, rows)
    if ordered == keys:
        for key, cells in rows:
            old = table.get_row(key)
            for column_key, new, before in zip(columns, cells, old, strict=False):
                if new != before:
                    table.update_cell(key, column_key, new, update_width=True)
        return 0
    cursor_key: str | None = None
    cursor_row = table.cursor_row
    if table.row_count and 0 <= cursor_row < table.row_count:
        cursor_key = table.ordered_rows[cursor_row].key.value
    scroll_y = table.scroll_y
    live = newest_first and cursor_row <= 0 and scroll_y <= 0
    arrived = 0
    if newest_first and not live:
        shown = set(ordered)
        while arrived < len(keys) and keys[arrived] not in shown:
            arrived += 1
        scroll_y += arrived  # rows are one line high: the same rows stay in sight
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if not keys:
        return arrived
    if live:
        target = 0
    elif cursor_key in keys:
        target = keys.index(cursor_key)
    else:
        target = min(cursor_row + arrived, len(keys) - 1)
    table.move_cursor(row=max(0, target), animate=False, scroll=False)
    table.scroll_to(y=scroll_y, animate=False, immediate=True)
    if newest_first:
        # Moving the cursor scrolls it into view once the new rows are measured; put the view
        # back where it belongs after that (before, it followed the old rows down: a frozen log).
        table.call_after_refresh(table.scroll_to, y=scroll_y, animate=False, immediate=True)
    return arrived


def fit_width(
    table: DataTable[Text], rows: Sequence[Row], elastic: Sequence[int]
) -> list[tuple[str, list[Text]]]:
    """`rows` with the cells of the `elastic` columns (free text first: details, a raw line)
    cut with an ellipsis so that the table fits its width: no sideways scroll at 80 columns.

    Columns are narrowed in the order given, each at most down to its heading; the others keep
    their full width."""
    width = table.scrollable_content_region.width or table.app.size.width - 2
    columns = table.ordered_columns
    padding = 2 * table.cell_padding
    widths = []
    for index, column in enumerate(columns):
        widest = max((cells[index].cell_len for _, cells in rows if index < len(cells)), default=0)
        kept = 0 if index in elastic else column.content_width  # `_widen` never narrows
        widths.append(max(column.label.cell_len, widest, kept))
    fitted = [(key, list(cells)) for key, cells in rows]
    excess = sum(widths) + padding * len(columns) - width
    for index in elastic:
        if excess <= 0 or index >= len(columns):
            break
        room = max(columns[index].label.cell_len, widths[index] - excess)
        excess -= widths[index] - room
        widths[index] = room
        for _, cells in fitted:
            if index < len(cells) and cells[index].cell_len > room:
                cut = cells[index].copy()
                cut.truncate(room, overflow="ellipsis")
                cells[index] = cut
        # After a resize to fewer columns the column must shrink too, not keep its old width.
        columns[index].content_width = room
    return fitted


def _widen(table: DataTable[Text], rows: Sequence[Row]) -> None:
    """Make each auto-width column as wide as its widest new cell now (see the module doc)."""
    for index, column in enumerate(table.ordered_columns):
        if not column.auto_width:
            continue
        widest = max((cells[index].cell_len for _, cells in rows if index < len(cells)), default=0)
        column.content_width = max(column.content_width, widest)


def cell(text: str, style: str = "", *, justify: str = "left") -> Text:
    """A plain cell (never markup), optionally styled and justified."""
    return Text(text, style=style, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]


def number(text: str, style: str = "") -> Text:
    """A right-aligned cell for figures."""
    return cell(text, style, justify="right")
