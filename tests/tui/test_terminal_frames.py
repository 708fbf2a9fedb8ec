"""Only what changed goes to the terminal, and the terminal ends up showing the same screen.

The real console runs headless on the fixture floor; every compositor update it produces (first
paint, ticks, sorting, the filter, a view pushed and popped) is written twice: as Textual writes
it, and through `TerminalShadow`. Both byte streams are played into a small terminal model
(cursor moves, SGR, text), and after every frame the two screens must be identical, cell by cell
and colour by colour.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, CompositorUpdate, LayoutUpdate
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from factory_tui.console.app import FactoryApp
from factory_tui.console.terminal_frames import ASCII, TerminalShadow, plain_terminal
from factory_tui.widgets.formatting import SPARK_LEVELS
from factory_tui.widgets.timeline_bar import GLYPHS
from tests.tui.conftest import ConsoleFactory, SetClock
from tests.tui.terminal import FACTORY_TUI, Terminal

SIZE = (120, 40)
_TOKEN = re.compile(r"\x1b\[(\d+);(\d+)H|\x1b\[([0-9;]*)m|(\n)|([^\x1b\n]+)")
_ON = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "21", "51", "52", "53"}
_OFF = {"22": {"1", "2"}, "23": {"3"}, "24": {"4", "21"}, "25": {"5", "6"}, "27": {"7"}}


class ScreenModel:
    """Just enough of a terminal: absolute moves, line feeds, SGR and printed text."""

    def __init__(self, width: int, height: int) -> None:
        blank = (" ", (frozenset[str](), "", ""))
        self.cells = [[blank] * width for _ in range(height)]
        self.width, self.height = width, height
        self.x = self.y = 0
        self.pen: tuple[frozenset[str], str, str] = (frozenset(), "", "")
        self.rows_written: set[int] = set()

    def feed(self, data: str) -> None:
        position = 0
        while position < len(data):
            match = _TOKEN.match(data, position)
            assert match is not None, f"unknown sequence {data[position : position + 20]!r}"
            position = match.end()
            move, column, sgr, newline, text = match.groups()
            if move is not None:
                self.y, self.x = int(move) - 1, int(column) - 1
            elif sgr is not None:
                self._sgr(sgr)
            elif newline is not None:
                self.y += 1
            else:
                self._print(text)

    def _print(self, text: str) -> None:
        self.rows_written.add(self.y)
        for char in text:
            width = cell_len(char)
            if self.x < self.width and 0 <= self.y < self.height:
                self.cells[self.y][self.x] = (char, self.pen)
                if width == 2 and self.x + 1 < self.width:
                    self.cells[self.y][self.x + 1] = ("", self.pen)
            self.x += width

    def _sgr(self, codes_text: str) -> None:
        attrs, fg, bg = self.pen
        codes = codes_text.split(";") if codes_text else ["0"]
        index = 0
        while index < len(codes):
            code = codes[index]
            if code in ("38", "48"):
                size = 3 if codes[index + 1] == "5" else 5
                colour = ";".join(codes[index : index + size])
                fg, bg = (colour, bg) if code == "38" else (fg, colour)
                index += size
                continue
            if code == "0":
                attrs, fg, bg = frozenset(), "", ""
            elif code in _ON:
                attrs = attrs | {code}
            elif code in _OFF:
                attrs = attrs - _OFF[code]
            elif code == "39":
                fg = ""
            elif code == "49":
                bg = ""
            elif 30 <= int(code) <= 37 or 90 <= int(code) <= 97:
                fg = code
            elif 40 <= int(code) <= 47 or 100 <= int(code) <= 107:
                bg = code
            else:
                raise AssertionError(f"unexpected SGR code {code}")
            index += 1
        self.pen = (attrs, fg, bg)

    def row_text(self, y: int) -> list[Any]:
        return list(self.cells[y])


def frames_of(app: FactoryApp) -> list[CompositorUpdate]:
    """Every compositor update `app` displays from now on, in order (it still displays them)."""
    frames: list[CompositorUpdate] = []
    display = app._display

    def capture(screen: Any, renderable: Any) -> None:
        if isinstance(renderable, ChopsUpdate | LayoutUpdate):
            frames.append(renderable)
        display(screen, renderable)

    app._display = capture  # type: ignore[method-assign]
    return frames


async def test_shadowed_frames_paint_the_same_screen_with_fewer_bytes(
    console: ConsoleFactory, clock: SetClock
) -> None:
    app = console()
    frames = frames_of(app)
    async with app.run_test(size=SIZE) as pilot:
        await app.tick_now()
        await pilot.pause()
        for _ in range(3):  # live ticks: the clock moves, ages and bars change
            clock.advance(60)
            await app.tick_now()
            await pilot.pause()
        for keys in (["s"], ["slash", "a", "n"], ["escape"], ["2"], ["escape"], ["down"]):
            await pilot.press(*keys)
            await pilot.pause()
        # Live ticks on the views with tables (their updates are layout updates) and the
        # worker detail: only what changed goes out there too.
        for keys in (["2"], ["3"], ["4"], ["1", "enter"]):
            await pilot.press(*keys)
            await pilot.pause()
            for _ in range(2):
                clock.advance(60)
                await app.tick_now()
                await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        clock.advance(60)
        await app.tick_now()
        await pilot.pause()
        # The tiles as they read now, drawn afresh: the partial updates must add up to them
        # (a tile line that changed but was not refreshed would differ).
        grid = app.grid
        tiles_now = [
            (grid.region.y + y, grid.region.x, grid.render_line(y).text)
            for y in range(grid.scrollable_content_region.height)
        ]
    assert len(frames) > 8
    assert any(isinstance(frame, ChopsUpdate) for frame in frames)

    terminal = Console(color_system="256", force_terminal=True, width=SIZE[0])
    plain, shadowed = ScreenModel(*SIZE), ScreenModel(*SIZE)
    shadow = TerminalShadow()
    plain_bytes = shadow_bytes = layouts = 0
    for number, frame in enumerate(frames):
        before = [plain.row_text(y) for y in range(SIZE[1])]
        as_textual = frame.render_segments(terminal)
        ours = shadow.encode(frame, ColorSystem.EIGHT_BIT)
        plain.feed(as_textual)
        shadowed.rows_written.clear()
        shadowed.feed(ours)
        plain_bytes += len(as_textual.encode())
        shadow_bytes += len(ours.encode())
        for y in range(SIZE[1]):
            assert shadowed.row_text(y) == plain.row_text(y), f"frame {number}, row {y}"
        if number:  # the first paint is written whole
            changed = {y for y in range(SIZE[1]) if plain.row_text(y) != before[y]}
            # A row whose content did not change is not sent again, whatever the update.
            assert shadowed.rows_written <= changed, f"frame {number}"
            layouts += isinstance(frame, LayoutUpdate)
    assert layouts > 8  # the views with tables were updated tick after tick
    assert shadow_bytes * 2 < plain_bytes, (shadow_bytes, plain_bytes)
    for y, x, text in tiles_now:
        shown = "".join(char for char, _ in plain.cells[y][x : x + len(text)])
        assert shown == text, f"row {y} is stale"


async def test_tiles_that_changed_off_screen_read_current_once_scrolled_to(
    console: ConsoleFactory, clock: SetClock
) -> None:
    """A tick refreshes only the tiles on screen; scrolling shows the others as they are now."""
    size = (60, 16)  # two tiles across, a row and a half of six workers on screen
    app = console()
    frames = frames_of(app)
    async with app.run_test(size=size) as pilot:
        await app.tick_now()
        await pilot.pause()
        grid = app.grid
        off_screen = grid.shown_ids[-2:]
        drawn = {
            worker_id: grid._tiles[grid.shown_ids.index(worker_id)] for worker_id in off_screen
        }
        for _ in range(3):  # the ages and figures of every tile move, off screen too
            clock.advance(600)
            await app.tick_now()
            await pilot.pause()
        assert any(grid._tiles[grid.shown_ids.index(id_)] != drawn[id_] for id_ in off_screen)
        await pilot.press("end")  # the cursor to the last tile: the grid scrolls to it
        await pilot.pause()
        assert grid.scroll_offset.y > 0
        grid._rows.clear()  # drawn afresh, not from what the grid kept
        grid._cache.clear()
        tiles_now = [
            (grid.region.y + y, grid.region.x, grid.render_line(y).text)
            for y in range(grid.scrollable_content_region.height)
        ]
    terminal = Console(color_system="256", force_terminal=True, width=size[0])
    screen = ScreenModel(*size)
    for frame in frames:
        screen.feed(frame.render_segments(terminal))
    for y, x, text in tiles_now:
        shown = "".join(char for char, _ in screen.cells[y][x : x + len(text)])
        assert shown == text, f"row {y} is stale"


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_the_summary_bar_draws_its_lines_as_textual_draws_its_text(
    console: ConsoleFactory, size: tuple[int, int]
) -> None:
    """The bar draws its own lines (faster): the same segments, styles and selection offsets
    as Textual's drawing of `render`'s text, live, paused and in the light theme."""
    app = console()
    async with app.run_test(size=size) as pilot:
        await app.tick_now()
        await pilot.pause()
        bar = app.summary
        for keys in ([], ["space"], ["t"]):
            await pilot.press(*keys)
            await pilot.pause()
            assert bar.content_region.height >= 1
            for y in range(bar.content_region.height):
                assert list(bar.render_line(y)) == list(Widget.render_line(bar, y)), (keys, y)


def test_a_style_change_sends_only_what_differs() -> None:
    shadow = TerminalShadow()
    first = LayoutUpdate(
        [[Strip([Segment("ab", Style(color="red")), Segment("cd")])]], Region(0, 0, 4, 1)
    )
    text = shadow.encode(first, ColorSystem.EIGHT_BIT)
    assert text == "\x1b[1;1H\x1b[31mab\x1b[39mcd"
    # Same cells again, as a partial update: nothing to send.
    same = ChopsUpdate(
        [{0: Strip([Segment("ab", Style(color="red")), Segment("cd")])}], [(0, 0, 4)], [[4]]
    )
    assert shadow.encode(same, ColorSystem.EIGHT_BIT) == ""
    # One cell changes: one move and that cell.
    one = ChopsUpdate(
        [{0: Strip([Segment("ab", Style(color="red")), Segment("cX")])}], [(0, 0, 4)], [[4]]
    )
    assert shadow.encode(one, ColorSystem.EIGHT_BIT) == "\x1b[1;4HX"
    # Bold off needs a reset; colours already right are not repeated after it.
    bold = ChopsUpdate(
        [{0: Strip([Segment("ab", Style(color="red", bold=True)), Segment("cY")])}],
        [(0, 0, 4)],
        [[4]],
    )
    assert shadow.encode(bold, ColorSystem.EIGHT_BIT) == ("\x1b[1;1H\x1b[1;31mab\x1b[0mcY")


def test_a_plain_terminal_learns_a_new_screen_background_from_a_same_size_update() -> None:
    """Plain text reverses a cell whose background stands out from the screen's. A theme switch
    is a layout update of the same size: the screen's background is learnt again and the cells
    written with it (a stale dark screen would reverse every cell of a light one)."""
    dark, light = Style(bgcolor="#101010"), Style(bgcolor="#f0f0f0")

    def frame(screen: Style, badge: Style) -> LayoutUpdate:
        line = Strip([Segment("ab", screen), Segment("W", badge), Segment("cd", screen)])
        return LayoutUpdate([[line]], Region(0, 0, 5, 1))

    shadow, screen = TerminalShadow(plain=True), ScreenModel(5, 1)
    screen.feed(shadow.encode(frame(dark, light), ColorSystem.EIGHT_BIT))
    assert ["7" in attrs for _, (attrs, _, _) in screen.cells[0]] == [
        False,
        False,
        True,
        False,
        False,
    ]
    screen.feed(shadow.encode(frame(light, dark), ColorSystem.EIGHT_BIT))
    assert ["7" in attrs for _, (attrs, _, _) in screen.cells[0]] == [
        False,
        False,
        True,
        False,
        False,
    ]


async def captured_frames(app: FactoryApp, clock: SetClock) -> list[CompositorUpdate]:
    """The compositor updates of a first paint and two live ticks at 80x24."""
    frames = frames_of(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.tick_now()
        await pilot.pause()
        for _ in range(2):
            clock.advance(60)
            await app.tick_now()
            await pilot.pause()
    return frames


def test_which_terminals_get_plain_text() -> None:
    assert plain_terminal({"TERM": "vt100"}, no_color=False)
    assert plain_terminal({"TERM": "dumb"}, no_color=False)
    assert plain_terminal({"TERM": "xterm-256color"}, no_color=True)
    assert not plain_terminal({"TERM": "xterm-256color"}, no_color=False)
    assert not plain_terminal({}, no_color=False)


def test_a_plain_chart_bar_never_reads_as_a_state_in_the_legend() -> None:
    """In ASCII the tile chart's partial bars (▁ to ▇) are none of the timeline's idle, absent
    and unobserved glyphs: a `+` bar beside a `+ idle` legend read as idle time."""
    bars = {ASCII[level] for level in SPARK_LEVELS[:-1]}
    legend = {ASCII.get(GLYPHS[state], GLYPHS[state]) for state in ("idle", "absent", "unobserved")}
    assert not bars & legend, bars & legend
    assert len(bars) == len(SPARK_LEVELS) - 1  # and each height keeps its own glyph


async def test_a_vt100_gets_plain_ascii_that_still_reads(
    console: ConsoleFactory, clock: SetClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "vt100")
    app = console()
    assert app.terminal_shadow.plain
    frames = await captured_frames(app, clock)
    screen = ScreenModel(80, 24)
    output = "".join(app.terminal_shadow.encode(frame, ColorSystem.EIGHT_BIT) for frame in frames)
    assert output.isascii()
    codes = {code for sgr in re.findall(r"\x1b\[([0-9;]*)m", output) for code in sgr.split(";")}
    assert codes <= {"0", "1", "4", "7"}, codes  # bold, underline, reverse: no colour
    screen.feed(output)
    rows = ["".join(char for char, _ in screen.cells[y]) for y in range(24)]
    text = "\n".join(rows)
    assert "WORKING" in text
    assert "IDLE" in text
    assert "+- Bilal Khan" in text  # a tile's border, in ASCII
    assert "#= Ana Silva" in text  # the selected tile: a heavier border
    # A state badge stands out in reverse video, the words around it do not.
    badge_row = next(y for y, row in enumerate(rows) if " WORKING " in row)
    column = rows[badge_row].index(" WORKING ") + 2
    assert "7" in screen.cells[badge_row][column][1][0]
    assert "7" not in screen.cells[badge_row][column + 12][1][0]


async def test_no_color_gets_plain_text_too(
    console: ConsoleFactory, clock: SetClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    app = console()
    assert app.terminal_shadow.plain
    monkeypatch.delenv("NO_COLOR")
    assert not console().terminal_shadow.plain


@pytest.mark.parametrize(("term", "no_color"), [("vt100", False), ("xterm-256color", True)])
def test_the_real_console_on_a_plain_terminal_writes_ascii_without_colour(
    tmp_path: Path, term: str, no_color: bool
) -> None:
    terminal = Terminal(
        [FACTORY_TUI, "demo", "--port", "0"], tmp_path, size=(80, 24), term=term, no_color=no_color
    )
    try:
        assert terminal.read_until(b"LIVE", timeout=60), terminal.output[-300:]
        assert terminal.read_until(b"Ana Silva", timeout=30)
        terminal.send(b"q")
        terminal.drain()
        terminal.wait()
    finally:
        terminal.close()
    output = bytes(terminal.output)
    assert output.isascii(), sorted({chr(byte) for byte in output if byte > 127})[:10]
    colours = re.findall(rb"\x1b\[[0-9;]*(?:38|48|3[0-7]|4[0-7]|9[0-7]);?[0-9;]*m", output)
    assert not colours, colours[:3]
    assert b"+-" in output  # the tiles' borders, in ASCII
