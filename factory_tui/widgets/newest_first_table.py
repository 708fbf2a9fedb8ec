"""A newest-first list that stays live: the event log's lists, the recent alerts.

While its cursor is on the first row (and the user has not scrolled away) new rows come in on
top, in sight. Once the user moves down, the rows in sight hold still and `newer` counts the
rows that arrived above them; `Home` goes back to the newest row and live again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from factory_tui.widgets.table_rows import Row, fill_table


class NewestFirstTable(DataTable[Text]):
    """A DataTable of newest-first rows, live until the user moves away from the top."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "go_live", "Newest", show=False),
    ]

    class WentLive(Message):
        """The user pressed Home: the table is back on its newest row (titles can say so)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.newer = 0
        """Rows that arrived above the rows in sight since the view was held (0 when live)."""

    @property
    def live(self) -> bool:
        """Whether new rows come in on top, in sight."""
        return self.cursor_row <= 0 and self.scroll_y <= 0

    def fill(self, rows: Sequence[Row], *, elastic: Sequence[int] = ()) -> None:
        """Show `rows` (newest first): live, or held with the rows that arrived counted."""
        was_live = self.live
        arrived = fill_table(self, rows, elastic=elastic, newest_first=True)
        self.newer = 0 if was_live else self.newer + arrived

    def newer_note(self) -> str:
        """What a held table's title adds ("" when live)."""
        return f" · {self.newer} newer — Home to go live" if self.newer else ""

    def go_live(self) -> None:
        """Back to the newest row, in sight; new rows come in on top again."""
        self.newer = 0
        self.move_cursor(row=0, animate=False)
        self.scroll_to(y=0, animate=False, immediate=True)

    def action_go_live(self) -> None:
        """`Home`: back to the newest row, and say so."""
        self.go_live()
        self.post_message(self.WentLive())
