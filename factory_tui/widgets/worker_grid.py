"""The grid of worker tiles ("CCTV" wall), drawn as one Line-API widget.

Hundreds of small widgets make Textual's layout and focus chain slow (textual#5163), so the
grid is a single `ScrollView` whose `render_line` joins pre-drawn tile strips. Each tile is a
frozen `WorkerTile`; its strips are cached by value, and when a new Snapshot arrives only the
regions of tiles whose value changed are refreshed. Filtering and sorting are view state held
here; the data is only ever the Snapshot handed down by the app.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Final, Literal

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Offset, Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from factory_tui.engine.snapshot import WORKER_STATES, Snapshot, WorkerMetrics
from factory_tui.view_models import natural_key
from factory_tui.widgets.formatting import fit
from factory_tui.widgets.worker_tile import MIN_TILE_WIDTH, TILE_HEIGHT, TilePalette, WorkerTile

SortKey = Literal["name", "utilization", "units", "uph", "last_seen"]
SORT_KEYS: Final[tuple[SortKey, ...]] = ("name", "utilization", "units", "uph", "last_seen")
SORT_LABELS: Final[dict[SortKey, str]] = {
    "name": "name",
    "utilization": "utilization ↓",
    "units": "units ↓",
    "uph": "UPH ↓",
    "last_seen": "last seen (stalest first)",
}
SORT_SHORT_LABELS: Final[dict[SortKey, str]] = {
    "name": "name",
    "utilization": "util ↓",
    "units": "units ↓",
    "uph": "UPH ↓",
    "last_seen": "stalest",
}
"""The sort as a narrow summary bar says it."""
SMALLEST_TILE_WIDTH: Final = 14
"""Below this a terminal is too narrow for a tile; the grid draws what fits rather than fail."""

_NO_VALUE: Final = float("-inf")


@dataclass(frozen=True)
class ListenAddress:
    """Where this console takes camera lines: what the empty floor tells a new user."""

    host: str
    port: int
    token_needed: bool
    """A connection's first line must be {"auth": "<token>"}."""
    auto_register: bool
    """Unknown worker and station ids are added as they arrive (else rejected)."""
    tls: bool = False
    """Cameras must speak TLS (a plain `nc` line would be refused)."""


MessageLine = tuple[str, bool]
"""A line of the empty-grid message and whether it is a command to type."""


class WorkerGrid(ScrollView, can_focus=True):
    """A scrollable grid of worker tiles sized to the terminal, with a tile cursor.

    Arrow keys move the cursor between tiles; `enter` posts `WorkerGrid.WorkerSelected`.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor('up')", "Up", show=False),
        Binding("down", "cursor('down')", "Down", show=False),
        Binding("left", "cursor('left')", "Left", show=False),
        Binding("right", "cursor('right')", "Right", show=False),
        Binding("home", "cursor('first')", "First tile", show=False),
        Binding("end", "cursor('last')", "Last tile", show=False),
        Binding("pageup", "cursor('page_up')", "Page up", show=False),
        Binding("pagedown", "cursor('page_down')", "Page down", show=False),
        Binding("enter", "select", "Detail"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "worker-grid--border",
        "worker-grid--border-selected",
        "worker-grid--title",
        "worker-grid--label",
        "worker-grid--value",
        "worker-grid--bar-filled",
        "worker-grid--bar-empty",
        "worker-grid--spark",
        "worker-grid--working",
        "worker-grid--idle",
        "worker-grid--absent",
        "worker-grid--unobserved",
        "worker-grid--message",
    }

    DEFAULT_CSS = """
    WorkerGrid {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
    }
    """

    sort_key: reactive[SortKey] = reactive[SortKey]("name")
    """How tiles are ordered."""
    filter_text: reactive[str] = reactive("")
    """Words that must all appear in a tile's id, name, station or state (case-insensitive)."""
    listening: reactive[ListenAddress | None] = reactive[ListenAddress | None](None)
    """Where cameras connect, told by an empty floor (None: this console does not listen)."""

    class WorkerSelected(Message):
        """The user asked for a worker's detail (`enter` or a double click on its tile)."""

        def __init__(self, worker_id: str) -> None:
            self.worker_id = worker_id
            super().__init__()

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._snapshot: Snapshot | None = None
        self._metrics: dict[str, WorkerMetrics] = {}
        self._all_tiles: dict[str, WorkerTile] = {}
        self._tiles: list[WorkerTile] = []
        self._selected: str | None = None
        self._columns = 1
        self._column_x: tuple[int, ...] = (0,)
        self._column_width: tuple[int, ...] = (MIN_TILE_WIDTH,)
        self._cache: dict[str, tuple[tuple[WorkerTile, int, bool], list[Strip]]] = {}
        self._rows: dict[int, tuple[object, list[Strip]]] = {}
        """Joined lines per row of tiles (see `_row_lines`)."""
        self._palette: TilePalette | None = None
        self._message: tuple[tuple[object, ...], list[MessageLine]] | None = None
        self.tiles_drawn = 0
        """How many times a tile was drawn (cache misses): the benchmark reports it."""

    # --- reactive watchers --------------------------------------------------------------------

    def watch_sort_key(self) -> None:
        self._arrange(keep_cursor_visible=True)

    def watch_filter_text(self) -> None:
        self._arrange(keep_cursor_visible=True)

    def watch_listening(self) -> None:
        self._arrange(force=True)

    # --- events -------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._arrange(force=True)

    def notify_style_update(self) -> None:
        # A theme switch changes every component colour: drop cached strips and palette.
        super().notify_style_update()
        self._palette = None
        self._cache.clear()
        self._rows.clear()
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        index = self._index_at(event.x, event.y)
        if index is None:
            return
        self._select(self._tiles[index].worker_id)
        if event.chain >= 2:
            self.post_message(self.WorkerSelected(self._tiles[index].worker_id))

    # --- actions ------------------------------------------------------------------------------

    def action_cursor(self, move: str) -> None:
        """Move the tile cursor: up, down, left, right, first, last, page_up, page_down."""
        if not self._tiles:
            return
        current = self.cursor_index if self.cursor_index is not None else 0
        columns = self._columns
        page = max(1, self.scrollable_content_region.height // TILE_HEIGHT) * columns
        target = {
            "up": current - columns if current >= columns else current,
            "down": current + columns if current + columns < len(self._tiles) else current,
            "left": current - 1,
            "right": current + 1,
            "first": 0,
            "last": len(self._tiles) - 1,
            "page_up": current - page,
            "page_down": current + page,
        }[move]
        target = min(len(self._tiles) - 1, max(0, target))
        self._select(self._tiles[target].worker_id)

    def action_select(self) -> None:
        """Open the highlighted worker (posts `WorkerSelected`)."""
        if self.selected_worker is not None:
            self.post_message(self.WorkerSelected(self.selected_worker))

    # --- public API ---------------------------------------------------------------------------

    def show(self, snapshot: Snapshot) -> None:
        """Take a new Snapshot; only tiles whose displayed value changed are redrawn."""
        self._snapshot = snapshot
        station_names = {station.workstation_id: station.name for station in snapshot.stations}
        self._metrics = {worker.worker_id: worker for worker in snapshot.workers}
        self._all_tiles = {
            worker.worker_id: WorkerTile.from_metrics(worker, snapshot.at_us, station_names)
            for worker in snapshot.workers
        }
        self._arrange()

    @property
    def selected_worker(self) -> str | None:
        """The id of the worker under the tile cursor (None when no tile is shown)."""
        return self._selected if self.cursor_index is not None else None

    @property
    def cursor_index(self) -> int | None:
        """Position of the cursor among the shown tiles."""
        for index, tile in enumerate(self._tiles):
            if tile.worker_id == self._selected:
                return index
        return None

    @property
    def shown_ids(self) -> tuple[str, ...]:
        """Ids of the tiles shown, in display order."""
        return tuple(tile.worker_id for tile in self._tiles)

    @property
    def total(self) -> int:
        """Number of workers in the current Snapshot (shown or filtered out)."""
        return len(self._all_tiles)

    @property
    def columns(self) -> int:
        """Tiles per row at the current width."""
        return self._columns

    # --- layout and drawing -------------------------------------------------------------------

    def _ordered(self) -> list[WorkerTile]:
        words = tuple(self.filter_text.lower().split())
        tiles = [tile for tile in self._all_tiles.values() if tile.matches(words)]
        metrics = self._metrics
        key = self.sort_key

        def by_name(tile: WorkerTile) -> tuple[tuple[str | int, ...], tuple[str | int, ...]]:
            return (natural_key(tile.name), natural_key(tile.worker_id))

        tiles.sort(key=by_name)
        # Python's sort is stable: sorting by the figure after sorting by name keeps ties in
        # name order, so equal values never swap places from one tick to the next.
        if key == "utilization":
            tiles.sort(key=lambda tile: _or_low(tile.utilization), reverse=True)
        elif key == "units":
            tiles.sort(key=lambda tile: tile.units, reverse=True)
        elif key == "uph":
            tiles.sort(
                key=lambda tile: _or_low(_rounded(metrics[tile.worker_id].uph)), reverse=True
            )
        elif key == "last_seen":
            tiles.sort(key=lambda tile: _or_low(metrics[tile.worker_id].last_seen_us, -1.0))
        return tiles

    def _arrange(self, *, force: bool = False, keep_cursor_visible: bool = False) -> None:
        """Recompute order and geometry, then refresh what changed."""
        width = self.scrollable_content_region.width
        columns = max(1, width // MIN_TILE_WIDTH)
        # Spread the leftover cells over the first columns so the tiles fill the width.
        base, extra = divmod(width, columns)
        base = max(SMALLEST_TILE_WIDTH, base)
        column_width = tuple(base + (1 if column < extra else 0) for column in range(columns))
        column_x = tuple(sum(column_width[:column]) for column in range(columns))
        old_tiles = self._tiles
        new_tiles = self._ordered()
        geometry_changed = column_width != self._column_width
        self._columns, self._column_x, self._column_width = columns, column_x, column_width
        self._tiles = new_tiles
        if self._selected is None or self.cursor_index is None:
            self._selected = new_tiles[0].worker_id if new_tiles else self._selected
        rows = -(-len(new_tiles) // columns)
        message = self._message
        message_lines = 0 if new_tiles else len(self._message_lines(width)) + 1
        self.virtual_size = Size(width, rows * TILE_HEIGHT or message_lines)
        same_order = len(old_tiles) == len(new_tiles) and all(
            old.worker_id == new.worker_id for old, new in zip(old_tiles, new_tiles, strict=True)
        )
        # An empty grid redraws only when its message changed (its example's minute ticks).
        message_changed = not new_tiles and self._message is not message
        if force or geometry_changed or not same_order or message_changed:
            self.refresh()
        else:
            viewport = self.scrollable_content_region.reset_offset
            scroll = self.scroll_offset
            changed = [
                region
                for index, (old, new) in enumerate(zip(old_tiles, new_tiles, strict=True))
                if old != new
                for region in self._changed_lines(index, old, new, viewport, scroll)
            ]
            if changed:
                self.refresh(*changed)
        if keep_cursor_visible:
            self._scroll_to_cursor()

    def _select(self, worker_id: str) -> None:
        previous = self.cursor_index
        self._selected = worker_id
        current = self.cursor_index
        regions = [self._tile_region(index) for index in (previous, current) if index is not None]
        self.refresh(*regions)
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        index = self.cursor_index
        if index is None:
            return
        row = index // self._columns
        self.scroll_to_region(
            Region(0, row * TILE_HEIGHT, self._column_width[0], TILE_HEIGHT),
            animate=False,
            immediate=True,
        )

    def _changed_lines(
        self, index: int, old: WorkerTile, new: WorkerTile, viewport: Region, scroll: Offset
    ) -> list[Region]:
        """The lines of a changed tile that read differently: Textual redraws whole screen
        lines, so a tile whose only change is its units line costs one line, not six."""
        region = self._tile_region(index, scroll)
        if not region.overlaps(viewport):
            # Off screen: nothing to redraw (a scroll repaints the whole viewport, from the
            # tiles then held); at 120x40, 170 of 200 tiles are off screen.
            return []
        cached = self._cache.get(old.worker_id)
        selected = new.worker_id == self._selected
        if cached is None or cached[0] != (old, region.width, selected):
            return [region]  # not drawn before (or off screen): refresh it whole
        before = cached[1]
        after = self._tile_strips(new, region.width)  # drawn now rather than at the paint
        return [
            Region(region.x, region.y + line, region.width, 1)
            for line, (was, now) in enumerate(zip(before, after, strict=True))
            if was != now
        ]

    def _tile_region(self, index: int, scroll: Offset | None = None) -> Region:
        """The tile's region in widget (viewport) coordinates (`scroll`: the scroll offset,
        when the caller has read it)."""
        row, column = divmod(index, self._columns)
        scroll_x, scroll_y = self.scroll_offset if scroll is None else scroll
        return Region(
            self._column_x[column] - scroll_x,
            row * TILE_HEIGHT - scroll_y,
            self._column_width[column],
            TILE_HEIGHT,
        )

    def _index_at(self, x: int, y: int) -> int | None:
        if x < 0 or y < 0:
            return None
        scroll_x, scroll_y = self.scroll_offset
        x += scroll_x
        columns = [
            column
            for column, (left, width) in enumerate(
                zip(self._column_x, self._column_width, strict=True)
            )
            if left <= x < left + width
        ]
        if not columns:
            return None
        index = (y + scroll_y) // TILE_HEIGHT * self._columns + columns[0]
        return index if index < len(self._tiles) else None

    def _get_palette(self) -> TilePalette:
        if self._palette is None:
            style = self.get_component_rich_style
            self._palette = TilePalette(
                base=self.rich_style,
                border=style("worker-grid--border"),
                border_selected=style("worker-grid--border-selected"),
                title=style("worker-grid--title"),
                label=style("worker-grid--label"),
                value=style("worker-grid--value"),
                bar_filled=style("worker-grid--bar-filled"),
                bar_empty=style("worker-grid--bar-empty"),
                spark=style("worker-grid--spark"),
                states={state: style(f"worker-grid--{state}") for state in WORKER_STATES},
            )
        return self._palette

    def _tile_strips(self, tile: WorkerTile, width: int) -> list[Strip]:
        key = (tile, width, tile.worker_id == self._selected)
        cached = self._cache.get(tile.worker_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        # The worker's previous tile at this width and selection lends its unchanged lines.
        previous = None
        if cached is not None and cached[0][1:] == key[1:]:
            previous = (cached[0][0], cached[1])
        strips = tile.render(width, self._get_palette(), selected=key[2], previous=previous)
        self.tiles_drawn += 1
        self._cache[tile.worker_id] = (key, strips)
        return strips

    def render_line(self, y: int) -> Strip:
        """One screen line: the `y`-th line of a row of tiles, or the empty-grid message."""
        width = self.scrollable_content_region.width
        base = self._get_palette().base  # cached: `rich_style` walks the DOM on every call
        scroll_y = self.scroll_offset.y
        if not self._tiles:
            return self._message_line(y + scroll_y, width, base)
        row, line = divmod(y + scroll_y, TILE_HEIGHT)
        return self._row_lines(row, width, base)[line]

    def _row_lines(self, row: int, width: int, base: Style) -> list[Strip]:
        """The joined lines of one row of tiles, kept until a tile in it changes: Textual asks
        for a refreshed row line by line, and the tiles are compared once per row."""
        start = row * self._columns
        selected = self._selected
        tiles = tuple(
            (
                self._tiles[index],
                self._column_width[index - start],
                self._tiles[index].worker_id == selected,
            )
            for index in range(start, min(start + self._columns, len(self._tiles)))
        )
        key = (tiles, width, base)
        cached = self._rows.get(row)
        if cached is not None and cached[0] == key:
            return cached[1]
        if not tiles:
            lines = [Strip.blank(width, base)] * TILE_HEIGHT
        else:
            columns = [self._tile_strips(tile, tile_width) for tile, tile_width, _ in tiles]
            lines = [
                Strip.join([strips[line] for strips in columns]).adjust_cell_length(width, base)
                for line in range(TILE_HEIGHT)
            ]
        self._rows[row] = (key, lines)
        return lines

    def _message_line(self, y: int, width: int, base: Style) -> Strip:
        lines = self._message_lines(width)
        if not 1 <= y <= len(lines):
            return Strip.blank(width, base)
        text, command = lines[y - 1]
        style = self.get_component_rich_style(
            "worker-grid--value" if command else "worker-grid--message"
        )
        return Strip([Segment(fit(text, width), style)], width)

    def _message_lines(self, width: int) -> list[MessageLine]:
        """The empty grid's message wrapped to `width`, cached until its inputs change."""
        snapshot = self._snapshot
        at_us = snapshot.at_us if snapshot is not None else None
        minute = None if at_us is None else at_us // 60_000_000
        key = (
            width,
            snapshot is None,
            bool(self._all_tiles),
            self.filter_text,
            self.listening,
            minute if self.listening is not None else None,
        )
        if self._message is not None and self._message[0] == key:
            return self._message[1]
        if snapshot is None:
            paragraphs: list[MessageLine] = [("Loading…", False)]
        elif self._all_tiles:
            paragraphs = [
                (f"No worker matches “{self.filter_text}” — esc clears the filter", False)
            ]
        elif self.listening is None or at_us is None:
            paragraphs = [("No workers yet: waiting for camera events", False)]
        else:
            paragraphs = empty_floor_message(self.listening, at_us)
        lines: list[MessageLine] = []
        for text, command in paragraphs:
            if not text:
                lines.append(("", False))
                continue
            if command:
                # Commands come broken where the shell joins them again: never wrapped (a cut
                # inside the JSON string pasted as a broken line), cut at the edge if too narrow.
                lines.append(("    " + text, True))
                continue
            indent = "  "
            wrapped = textwrap.wrap(
                text,
                max(8, width - 1),
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=True,
            )
            lines.extend((line, command) for line in wrapped)
        self._message = (key, lines)
        return lines


def empty_floor_message(address: ListenAddress, at_us: int) -> list[MessageLine]:
    """What a floor with no workers tells a new user: where cameras connect, whether the example
    line would be accepted as things stand (no roster: only with auto_register), the line to try
    (stamped with the current minute, so its worker shows up now), and what to do next."""
    where = f"{address.host}:{address.port}"
    notes = [
        "a token is needed: send reads ingest.token from factory.toml, or give --token"
        if address.token_needed
        else "no token needed"
    ]
    if address.tls:
        notes.append("TLS only: send --tls, plus --cafile <ca.pem> for a private CA")
    lines: list[MessageLine] = [
        ("No workers yet.", False),
        (f"Cameras send one JSON line per event to {where} ({'; '.join(notes)}).", False),
    ]
    if address.auto_register:
        lines.append(
            (
                "Unknown worker and station ids are added as their events arrive "
                "(auto_register is on). Try one line: W1 appears with it.",
                False,
            )
        )
    else:
        lines.append(
            (
                "There is no roster, so events from unknown ids (W1 below too) are rejected. "
                "Restart with --auto-register (or set [ingest] auto_register = true in "
                "factory.toml) and workers appear as their events arrive; or write a roster: "
                "factory-tui init writes a commented factory.toml. Then try one line:",
                False,
            )
        )
    lines += [(command, True) for command in example_command(address, at_us)]
    lines.append(("", False))
    if address.auto_register:
        lines.append(
            ("To name them, write a roster: factory-tui init (a commented factory.toml).", False)
        )
    lines.append(
        ("To look around first: factory-tui demo (simulated cameras, its own database).", False)
    )
    return lines


def example_command(address: ListenAddress, at_us: int) -> list[str]:
    """A shell command sending one event to this listener, in lines of at most 70 characters
    that the shell joins again (a backslash between two quoted halves of the JSON, a trailing
    pipe), so that it pastes whole from an 80-column terminal. `factory-tui send` is installed
    wherever the console is (`nc` may not be), speaks TLS and the token, and prints the reply."""
    stamp = datetime.fromtimestamp(at_us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%MZ")
    host = "127.0.0.1" if address.host in ("", "0.0.0.0", "::") else address.host
    send = "factory-tui send"
    if address.tls:
        send += " --tls"
    if host != "127.0.0.1":
        send += f" --host {host}"
    return [
        f"""echo '{{"timestamp":"{stamp}","worker_id":"W1",'\\""",
        """'"workstation_id":"S1","event_type":"working","confidence":0.9}' |""",
        f"{send} -p {address.port} -",
    ]


def _or_low(value: float | int | None, low: float = _NO_VALUE) -> float:
    """Null metrics sort after every real value (descending) or first (ascending, with -1)."""
    return low if value is None else float(value)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
