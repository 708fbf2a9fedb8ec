"""The `?` screen: every key of the screen below it with what it does, and a few notes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """A modal list of keys (`key`, `what it does`) and notes; any of esc, ?, q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help"),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 72;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 0 1;
    }
    HelpScreen #help-notes {
        margin-top: 1;
    }
    """

    def __init__(self, keys: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> None:
        super().__init__()
        self._keys = tuple(keys)
        self._notes = tuple(notes)

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, style="bold")
        table.add_column()
        for key, description in self._keys:
            table.add_row(key, description)
        with VerticalScroll() as scroll:
            scroll.border_title = "Keys"
            scroll.border_subtitle = "esc / ? / q close"
            yield Static(table, id="help-keys")
            if self._notes:
                yield Static(Text("\n".join(self._notes)), id="help-notes")


def main_screen_keys(
    view_keys: str, sort_labels: Sequence[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """The keys and notes of the tile screen (`view_keys`: the keys that switch views)."""
    keys = [
        ("/", "Filter tiles by id, name, station or state (all words must match)"),
        ("esc", "Clear the filter"),
        ("s", "Cycle sort: " + ", ".join(sort_labels)),
        ("space", "Pause / resume live updates"),
        ("t", "Dark / light theme"),
        ("← ↑ → ↓", "Move between tiles (home / end, page up / down)"),
        ("enter", "Open the worker's detail"),
        (view_keys, VIEWS_TEXT),
        ("?", "These keys"),
        ("q", "Quit"),
    ]
    notes = [
        "Tiles: state (also as a word), station, utilization, units and UPH over the shift "
        "so far, activity over the last hour, time since the last event, mean confidence.",
        "Summary: avg util and avg UPH are means over the workers that have a value.",
    ]
    return keys, notes


def view_screen_keys(own: Sequence[tuple[str, str]], view_keys: str) -> list[tuple[str, str]]:
    """The keys of a view screen: its own, then the ones every screen has."""
    return [
        *own,
        (view_keys, VIEWS_TEXT),
        ("space", "Pause / resume live updates"),
        ("t", "Dark / light theme"),
        ("?", "These keys"),
        ("q", "Quit"),
    ]


VIEWS_TEXT = "Workers, stations, event log, alerts"
