"""One worker tile: the display values of a worker, and how they are drawn as strips.

A `WorkerTile` is a frozen, hashable value built from a `WorkerMetrics`. The grid compares a
worker's new tile with the previous one and redraws only the tiles whose value changed, so every
field holds *displayed* text (a utilization of 0.7213 and 0.7248 both show `72%` and cause no
redraw). Drawing (`render`) is a pure function of the tile, its width and a palette of styles.

Layout (width 26, height 6)::

    ╭─ Ana Silva ────── W1 ─╮
    │  WORKING   S1 Assemb… │
    │ util █████████░░░  72% │
    │ 124 units     18.2 uph │
    │ ▁▂▃▅▇█▇▅▃▂▁▁   past 1h │
    ╰─ <1m ago · conf 0.91 ──╯
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from factory_tui.engine.snapshot import US_PER_S, WorkerMetrics, WorkerState
from factory_tui.widgets.formatting import (
    MISSING,
    STATE_WORDS,
    age,
    bar,
    clip,
    confidence,
    fit,
    matches,
    percent,
    rate,
    sparkline,
)

TILE_HEIGHT = 6
MIN_TILE_WIDTH = 26

_PLAIN = (("╭", "─", "╮"), ("│", " ", "│"), ("╰", "─", "╯"))
_HEAVY = (("┏", "━", "┓"), ("┃", " ", "┃"), ("┗", "━", "┛"))
"""The selected tile is drawn heavy: the cursor is visible without colour."""


@dataclass(frozen=True, slots=True)
class TilePalette:
    """The Rich styles a tile is drawn with (resolved from the grid's component classes)."""

    base: Style
    border: Style
    border_selected: Style
    title: Style
    label: Style
    value: Style
    bar_filled: Style
    bar_empty: Style
    spark: Style
    states: dict[WorkerState, Style]

    def __hash__(self) -> int:
        return id(self)


@dataclass(frozen=True, slots=True)
class WorkerTile:
    """What one worker's tile shows, as text: two equal tiles draw identically."""

    worker_id: str
    name: str
    state: WorkerState
    station: str
    """Current station (`S1 Assembly 1`), `last S1 …` when unobserved, or a dash."""
    utilization: float | None
    """Rounded to whole percent so that tiny changes do not redraw the tile."""
    units: int
    uph: str
    activity: str
    """The sparkline of the last hour's working fraction."""
    seen: str
    confidence: str

    @classmethod
    def from_metrics(
        cls, worker: WorkerMetrics, at_us: int, station_names: dict[str, str]
    ) -> WorkerTile:
        """The tile of `worker` at `at_us` (used for the time since its last event)."""
        station = MISSING
        if worker.station_id is not None:
            name = station_names.get(worker.station_id, "")
            station = f"{worker.station_id} {name}".strip() if name != worker.station_id else name
            if worker.state == "unobserved":
                station = f"last {station}"
        seen_s = None if worker.last_seen_us is None else (at_us - worker.last_seen_us) / US_PER_S
        utilization = None if worker.utilization is None else round(worker.utilization, 2)
        return cls(
            worker_id=worker.worker_id,
            name=worker.name,
            state=worker.state,
            station=station,
            utilization=utilization,
            units=worker.units,
            uph=rate(worker.uph),
            activity=sparkline(worker.activity),
            seen=age(None if seen_s is None else max(0.0, seen_s)),
            confidence=confidence(worker.mean_confidence),
        )

    def matches(self, words: tuple[str, ...]) -> bool:
        """True when every (lower-case) word is in the id, name, station or state."""
        return matches(words, self.worker_id, self.name, self.station, self.state)

    def render(
        self,
        width: int,
        palette: TilePalette,
        *,
        selected: bool,
        previous: tuple[WorkerTile, list[Strip]] | None = None,
    ) -> list[Strip]:
        """The tile as `TILE_HEIGHT` strips of exactly `width` cells.

        `previous` is this worker's last tile drawn with the same width, palette and
        selection, and its strips: a line whose inputs did not change is taken from it (a
        tick usually changes a line or two of a tile)."""
        glyphs = _HEAVY if selected else _PLAIN
        border = palette.border_selected if selected else palette.border
        inner = width - 4
        side = glyphs[1][0]
        old, old_strips = previous if previous is not None else (None, None)

        def body(content: list[Segment]) -> Strip:
            return Strip(
                [Segment(side + " ", border), *content, Segment(" " + side, border)], width
            )

        def line(index: int, inputs: tuple[str, ...], draw: Callable[[], Strip]) -> Strip:
            if old is not None and old_strips is not None and old._line_inputs(index) == inputs:
                return old_strips[index]
            return draw()

        return [
            line(
                0,
                self._line_inputs(0),
                lambda: _top(self.name, self.worker_id, width, glyphs, border, palette.title),
            ),
            line(1, self._line_inputs(1), lambda: body(self._state_line(inner, palette))),
            line(2, self._line_inputs(2), lambda: body(self._utilization_line(inner, palette))),
            line(3, self._line_inputs(3), lambda: body(self._output_line(inner, palette))),
            line(4, self._line_inputs(4), lambda: body(self._activity_line(inner, palette))),
            line(
                5,
                self._line_inputs(5),
                lambda: _bottom(
                    f"{self.seen} · conf {self.confidence}", width, glyphs, border, palette.label
                ),
            ),
        ]

    def _line_inputs(self, index: int) -> tuple[str, ...]:
        """What line `index` of the tile is drawn from (besides width, palette, selection)."""
        if index == 0:
            return (self.name, self.worker_id)
        if index == 1:
            return (self.state, self.station)
        if index == 2:
            return (str(self.utilization),)
        if index == 3:
            return (str(self.units), self.uph)
        if index == 4:
            return (self.activity,)
        return (self.seen, self.confidence)

    def _state_line(self, inner: int, palette: TilePalette) -> list[Segment]:
        badge = f" {STATE_WORDS[self.state]} "
        return [
            Segment(badge, palette.states[self.state]),
            Segment(" ", palette.value),
            Segment(fit(self.station, inner - len(badge) - 1), palette.value),
        ]

    def _utilization_line(self, inner: int, palette: TilePalette) -> list[Segment]:
        figure = percent(self.utilization).rjust(5)
        filled, empty = bar(self.utilization, max(1, inner - 5 - len(figure)))
        return [
            Segment("util ", palette.label),
            Segment(filled, palette.bar_filled),
            Segment(empty, palette.bar_empty),
            Segment(figure, palette.value),
        ]

    def _output_line(self, inner: int, palette: TilePalette) -> list[Segment]:
        units = f"{self.units:,}"
        uph = self.uph
        gap = inner - len(units) - len(" units") - len(uph) - len(" uph")
        if gap < 1:
            return [Segment(fit(f"{units} u {uph} uph", inner), palette.value)]
        return [
            Segment(units, palette.value),
            Segment(" units" + " " * gap, palette.label),
            Segment(uph, palette.value),
            Segment(" uph", palette.label),
        ]

    def _activity_line(self, inner: int, palette: TilePalette) -> list[Segment]:
        spark = clip(self.activity, inner)
        rest = inner - cell_len(spark)
        caption = "past 1h"
        if rest < len(caption) + 1:
            return [Segment(spark, palette.spark), Segment(" " * rest, palette.value)]
        return [
            Segment(spark, palette.spark),
            Segment(caption.rjust(rest), palette.label),
        ]


def _top(
    name: str,
    worker_id: str,
    width: int,
    glyphs: tuple[tuple[str, str, str], ...],
    border: Style,
    title: Style,
) -> Strip:
    left, fill, right = glyphs[0]
    if name == worker_id:  # an unnamed (auto-registered) worker: say the id once
        label = clip(name, width - 6)
        return Strip(
            [
                Segment(left + fill, border),
                Segment(f" {label} ", title),
                Segment(fill * max(0, width - 5 - cell_len(label)) + right, border),
            ]
        ).adjust_cell_length(width)
    # Two border cells each side and a space around each caption: 8 cells of frame; at least
    # one fill cell between name and id keeps them apart.
    ident = clip(worker_id, max(4, (width - 8) // 2))
    label = clip(name, max(1, width - 9 - cell_len(ident)))
    rest = width - 8 - cell_len(label) - cell_len(ident)
    return Strip(
        [
            Segment(left + fill, border),
            Segment(f" {label} ", title),
            Segment(fill * max(0, rest), border),
            Segment(f" {ident} ", title),
            Segment(fill + right, border),
        ]
    ).adjust_cell_length(width)


def _bottom(
    text: str,
    width: int,
    glyphs: tuple[tuple[str, str, str], ...],
    border: Style,
    label: Style,
) -> Strip:
    left, fill, right = glyphs[2]
    caption = clip(text, width - 6)
    rest = width - 5 - cell_len(caption)
    return Strip(
        [
            Segment(left + fill, border),
            Segment(f" {caption} ", label),
            Segment(fill * max(0, rest) + right, border),
        ]
    ).adjust_cell_length(width)
