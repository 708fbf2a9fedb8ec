"""Fewer bytes to the terminal: send only the cells that changed, with short colour codes.

Textual writes every refreshed widget's whole region, and each span as a full SGR code
followed by a reset (`ESC[1;38;5;253;48;5;233m text ESC[0m`). Over SSH on a factory's Wi-Fi
that is most of the traffic. `TerminalShadow` keeps what the terminal shows, cell by cell; a
partial update is compared with it, and only the runs of cells that differ are written, each
style change as the difference from the pen's current style (one reset per frame).

A layout update (a new screen, a view that reflowed: the views with tables send one every
tick) is compared with the shadow like any other. Only when the terminal's cells are not known
(the first paint, a new size, a resume) is an update written whole, re-seeding the shadow, so a
terminal that was cleared or reflowed never keeps stale cells.

A terminal without colour (`NO_COLOR`, `TERM=vt100` or `dumb`) gets plain text: no colour
codes, ASCII for the box-drawing and block characters, and only bold, underline and reverse
video; a cell on a background that stands out from the screen's (a state badge, a table's
cursor row, the bar of a selected item) is shown in reverse video so it still stands out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from rich.cells import get_character_cell_size
from rich.color import Color, ColorSystem
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.style import Style
from textual._compositor import ChopsUpdate, CompositorUpdate, LayoutUpdate
from textual.strip import Strip

Cell = tuple[str, Style | None]
"""One terminal cell: its character ("" for the right half of a wide character) and style."""
Pen = tuple[int, str, str]
"""A style as the terminal sees it: attribute bits, foreground codes, background codes."""

_BLANK: Final[Cell] = (" ", None)
_PLAIN: Final[Pen] = (0, "", "")
_SGR_ON: Final = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "21", "51", "52", "53")
_SAME_ROW_GAP: Final = 6
"""Unchanged cells shorter than a cursor move are rewritten rather than jumped over."""
PLAIN_TERMS: Final = frozenset({"dumb", "vt52", "vt100", "vt102", "vt220", "vt320"})
"""Terminals that get plain text (no colour, ASCII drawing)."""
_BOLD, _UNDERLINE, _REVERSE = 1, 1 << 3, 1 << 6
_PLAIN_BITS: Final = _BOLD | _UNDERLINE | _REVERSE
_STANDS_OUT: Final = 0.2
"""A background this much lighter or darker (0..1) than the screen's is shown reversed."""
ASCII: Final[dict[str, str]] = {
    **dict.fromkeys("─┄┈╌╴╶", "-"),
    **dict.fromkeys("│┆┊╎╵╷▏▕", "|"),
    **dict.fromkeys("╭╮╰╯┌┐└┘├┤┬┴┼", "+"),
    **dict.fromkeys("━═", "="),
    **dict.fromkeys("┃║", "|"),
    **dict.fromkeys("┏┓┗┛╔╗╚╝┣┫┳┻╋", "#"),
    "█": "#",
    "▓": "%",
    "▒": "+",
    "░": ":",
    "·": ".",
    "•": "*",
    "▁": "_",
    "▂": ",",  # not "." (· unobserved in the timeline legend)
    "▃": "-",
    "▄": "~",
    "▅": "=",
    "▆": "%",  # not "+" (▒ idle in the timeline legend)
    "▇": "*",
    "▌": "#",
    "▍": "#",
    "▋": "#",
    "▊": "#",
    "▉": "#",
    "▐": "#",
    "▀": "#",
    "▔": "-",
    "▲": "^",
    "▼": "v",
    "▶": ">",
    "◀": "<",
    "↑": "^",
    "↓": "v",
    "→": ">",
    "←": "<",
    "…": "~",
    "—": "-",
    "–": "-",
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "⏎": ">",
    **dict.fromkeys("\u00a0\u2002\u2003\u2009\u200a\u202f", " "),
    "▦": "#",
    "✓": "v",
    "✗": "x",
    "×": "x",
    "°": "o",
}
"""Plain terminals: one ASCII character per drawing or typographic character (same width)."""


def plain_terminal(environ: Mapping[str, str], no_color: bool) -> bool:
    """Whether this terminal gets plain text: `NO_COLOR` set (Textual reads it into
    `App.no_color`), or a TERM known to have no colour."""
    return no_color or environ.get("TERM", "").lower() in PLAIN_TERMS


class TerminalShadow:
    """What the terminal shows, so each frame carries only what changed."""

    def __init__(self, *, plain: bool = False) -> None:
        self.plain = plain
        """No colour, ASCII drawing (see the module doc)."""
        self._rows: dict[int, list[Cell]] = {}
        self._size: tuple[int, int] | None = None
        """The screen size the shadow holds (None: the terminal's cells are not known)."""
        self._pens: dict[Style, Pen] = {}
        self._screen_lightness: float | None = None
        self.frames = 0
        self.cells_sent = 0
        """Counters for the benchmark and the tests."""

    def reset(self) -> None:
        """Forget what the terminal shows (it was cleared, resized or resumed)."""
        self._rows.clear()
        self._size = None

    def encode(self, update: CompositorUpdate, color_system: ColorSystem) -> str:
        """The bytes that bring the terminal from the shadow to `update` (written whole when
        the terminal's cells are not known: see the module doc)."""
        self.frames += 1
        layout = isinstance(update, LayoutUpdate)
        full = False
        if isinstance(update, LayoutUpdate):
            size = (update.region.right, update.region.bottom)
            if size != self._size:
                self.reset()
                self._size = size
                full = True
        placements = list(_placements(update))
        if self.plain and (layout or self._screen_lightness is None):
            # A new screen background (the theme switched) changes which cells are reversed,
            # style for style: then every cell is written again.
            full = self._learn_screen(placements) or full
        out: list[str] = []
        pen = _PLAIN
        for y, x, strip in placements:
            new = _cells(strip, ASCII if self.plain else None)
            row = self._rows.get(y)
            if row is None:
                row = self._rows[y] = []
            if len(row) < x + len(new):
                row.extend([_BLANK] * (x + len(new) - len(row)))
            for start, end in _runs(row, new, x, changed_only=not full):
                out.append(f"\x1b[{y + 1};{x + start + 1}H")
                pen = self._write(out, new, start, end, pen, color_system)
                row[x + start : x + end] = new[start:end]
                self.cells_sent += end - start
        if pen != _PLAIN:
            out.append("\x1b[0m")
        return "".join(out)

    def _write(
        self,
        out: list[str],
        cells: list[Cell],
        start: int,
        end: int,
        pen: Pen,
        color_system: ColorSystem,
    ) -> Pen:
        """Append cells[start:end] to `out`, changing the pen only where the style changes."""
        text: list[str] = []
        last_style: Style | None | bool = False  # no style seen yet
        for index in range(start, end):
            char, style = cells[index]
            if style is not last_style:
                last_style = style
                wanted = self._pen(style, color_system)
                if wanted != pen:
                    if text:
                        out.append("".join(text))
                        text.clear()
                    out.append(_sgr_change(pen, wanted))
                    pen = wanted
            text.append(char)
        if text:
            out.append("".join(text))
        return pen

    def _learn_screen(self, placements: list[tuple[int, int, Strip]]) -> bool:
        """The screen's own background: the one most cells of a whole-screen update have.
        Returns True when it changed from the one known."""
        counts: dict[float, int] = {}
        for _, _, strip in placements:
            for text, style, _ in strip:
                lightness = _lightness(style.bgcolor if style else None)
                counts[lightness] = counts.get(lightness, 0) + len(text)
        if not counts:
            return False
        lightness = max(counts, key=counts.__getitem__)
        if lightness == self._screen_lightness:
            return False
        self._screen_lightness = lightness
        self._pens.clear()
        return True

    def _pen(self, style: Style | None, color_system: ColorSystem) -> Pen:
        if style is None:
            return _PLAIN
        pen = self._pens.get(style)
        if pen is None and self.plain:
            bits = style._attributes & style._set_attributes & _PLAIN_BITS
            screen = self._screen_lightness
            if screen is not None and abs(_lightness(style.bgcolor) - screen) > _STANDS_OUT:
                bits ^= _REVERSE
            pen = self._pens[style] = (bits, "", "")
        elif pen is None:
            bits = style._attributes & style._set_attributes
            fg = (
                ";".join(style.color.downgrade(color_system).get_ansi_codes())
                if style.color
                else ""
            )
            bg = (
                ";".join(style.bgcolor.downgrade(color_system).get_ansi_codes(False))
                if style.bgcolor
                else ""
            )
            pen = self._pens[style] = (bits, fg, bg)
        return pen


def _sgr_change(old: Pen, new: Pen) -> str:
    """The shortest simple SGR that turns `old` into `new`: the changed colours alone when no
    attribute has to be switched off, else a reset and the whole of `new`."""
    old_bits, old_fg, old_bg = old
    bits, fg, bg = new
    codes: list[str]
    if old_bits & ~bits:
        codes = ["0"] + _attributes(bits)
        if fg:
            codes.append(fg)
        if bg:
            codes.append(bg)
    else:
        codes = _attributes(bits & ~old_bits)
        if fg != old_fg:
            codes.append(fg or "39")
        if bg != old_bg:
            codes.append(bg or "49")
    return f"\x1b[{';'.join(codes)}m"


def _attributes(bits: int) -> list[str]:
    return [code for offset, code in enumerate(_SGR_ON) if bits & (1 << offset)]


def _lightness(color: Color | None) -> float:
    """0 (black) to 1 (white); the terminal's default background counts as black."""
    if color is None:
        return 0.0
    red, green, blue = color.get_truecolor()
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def _cells(strip: Strip, ascii_map: Mapping[str, str] | None = None) -> list[Cell]:
    """The cells a strip covers, one per terminal column (ASCII only, given `ascii_map`)."""
    cells: list[Cell] = []
    append = cells.append
    for text, style, control in strip:
        if control:
            continue
        if text.isascii():
            cells.extend([(char, style) for char in text])
            continue
        if ascii_map is not None:
            for char in text:
                width = get_character_cell_size(char)
                if width:
                    plain = char if char.isascii() else ascii_map.get(char, "?")
                    cells.extend([(plain, style)] * width)
            continue
        for char in text:
            width = get_character_cell_size(char)
            if width == 0:
                continue  # a combining mark: joined to nothing here, dropped
            append((char, style))
            if width == 2:
                append(("", style))
    return cells


def _runs(
    row: list[Cell], new: list[Cell], x: int, *, changed_only: bool
) -> Iterator[tuple[int, int]]:
    """Runs [start, end) of `new` (placed at column `x`) to write: all of it, or the cells that
    differ from `row`, with short unchanged gaps folded into the runs around them."""
    if not new:
        return
    if not changed_only:
        yield 0, len(new)
        return
    start: int | None = None
    end = 0
    for index, cell in enumerate(new):
        if row[x + index] != cell:
            if start is None:
                start = index
            elif index - end >= _SAME_ROW_GAP:
                yield _whole_characters(new, start, end)
                start = index
            end = index + 1
    if start is not None:
        yield _whole_characters(new, start, end)


def _whole_characters(new: list[Cell], start: int, end: int) -> tuple[int, int]:
    """Widen a run so that it neither starts nor stops inside a wide character."""
    if start > 0 and new[start][0] == "":
        start -= 1
    if end < len(new) and new[end][0] == "":
        end += 1
    return start, end


def _placements(update: CompositorUpdate) -> Iterable[tuple[int, int, Strip]]:
    """(y, x, strip) of every piece of `update`, cropped to its spans like Textual does."""
    if isinstance(update, LayoutUpdate):
        x = update.region.x
        for y, line in enumerate(update.strips, update.region.y):
            yield y, x, Strip.join(list(line))
        return
    if not isinstance(update, ChopsUpdate):
        return
    for y, x1, x2 in update.spans:
        for end, (x, strip) in zip(update.chop_ends[y], update.chops[y].items(), strict=False):
            if strip is None or x > x2 or end <= x1:
                continue
            if not (x2 > x >= x1 and end <= x2):
                strip = strip.crop(0, min(end, x2) - x)
            yield y, x, strip


class ShadowedUpdate(CompositorUpdate):
    """A compositor update written through a `TerminalShadow` (only what changed)."""

    def __init__(self, shadow: TerminalShadow, update: ChopsUpdate | LayoutUpdate) -> None:
        self.shadow = shadow
        self.update = update

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.update.__rich_console__(console, options)  # as Textual would

    def render_segments(self, console: Console) -> str:
        return self.shadow.encode(self.update, console._color_system or ColorSystem.TRUECOLOR)


def shadowed(
    shadow: TerminalShadow, renderable: RenderableType | None, inline: bool
) -> RenderableType | None:
    """`renderable`, written through `shadow` when it is a full-screen compositor update."""
    if inline or not isinstance(renderable, (ChopsUpdate, LayoutUpdate)):
        return renderable
    return ShadowedUpdate(shadow, renderable)
