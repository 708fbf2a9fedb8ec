"""A timeline bar: coloured state segments over a window, with a time axis and a legend.

Four lines::

    station  S1                      S2
    state    ████████████▒▒▒▒▒▒░░░░··········
             ┬─────────┬─────────┬────▲────┬─────────┬
             06:00     07:00     08:00     09:00     10:00
             █ working  ▒ idle  ░ absent  · unobserved  ▲ now 10:30

Every state has its own glyph as well as its colour (the bar reads on a plain terminal too).
The part of the window after "now" is left blank. The same x mapping (`TimeAxis`) is used by
the output chart above it, so a dip in output lines up with the idle stretch that caused it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import ClassVar, Final

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from factory_tui.engine.snapshot import US_PER_S, WORKER_STATES, Segment, WorkerState
from factory_tui.models import from_utc_us
from factory_tui.widgets.formatting import fit

GUTTER: Final = 9
"""Cells left of the plot for row labels; the output chart uses the same gutter."""
GLYPHS: Final[dict[WorkerState, str]] = {
    "working": "█",
    "idle": "▒",
    "absent": "░",
    "unobserved": "·",
}
STEPS_MINUTES: Final = (5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440)
"""Candidate distances between axis labels."""
LABEL_CELLS: Final = 6
"""An axis label (`06:00`) and one space."""


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """Maps instants of `[from_us, to_us)` onto `width` cells."""

    from_us: int
    to_us: int
    width: int

    def cell(self, at_us: int) -> int:
        """The cell holding instant `at_us` (clamped to the plot)."""
        span = max(1, self.to_us - self.from_us)
        index = (at_us - self.from_us) * self.width // span
        return min(self.width - 1, max(0, index))

    def bounds(self, index: int) -> tuple[int, int]:
        """The instants `[start, end)` covered by cell `index`."""
        span = self.to_us - self.from_us
        return (
            self.from_us + span * index // self.width,
            self.from_us + span * (index + 1) // self.width,
        )

    def ticks(self, zone: tzinfo) -> list[tuple[int, int]]:
        """(cell, instant) of each axis label: whole local times, spaced so labels fit."""
        if self.width <= 0 or self.to_us <= self.from_us:
            return []
        cells_per_minute = self.width / ((self.to_us - self.from_us) / (60 * US_PER_S))
        step = next(
            (m for m in STEPS_MINUTES if m * cells_per_minute >= LABEL_CELLS), STEPS_MINUTES[-1]
        )
        step_us = step * 60 * US_PER_S
        offset = from_utc_us(self.from_us).astimezone(zone).utcoffset() or timedelta(0)
        offset_us = int(offset.total_seconds()) * US_PER_S
        # The first whole local step at or after the window start.
        moment = -(-(self.from_us + offset_us) // step_us) * step_us - offset_us
        ticks = []
        while moment < self.to_us:
            ticks.append((self.cell(moment), moment))
            moment += step_us
        return ticks


def cell_states(
    segments: Sequence[Segment], axis: TimeAxis
) -> list[tuple[WorkerState, str | None] | None]:
    """Per cell, the (state, station) holding most of the cell's time; None where no segment
    covers the cell (after "now")."""
    shares: list[dict[tuple[WorkerState, str | None], int]] = [{} for _ in range(axis.width)]
    for segment in segments:
        start = max(segment.start_us, axis.from_us)
        end = min(segment.end_us, axis.to_us)
        if end <= start:
            continue
        key = (segment.state, segment.station_id)
        for index in range(axis.cell(start), axis.cell(end - 1) + 1):
            low, high = axis.bounds(index)
            overlap = min(end, high) - max(start, low)
            if overlap > 0:
                shares[index][key] = shares[index].get(key, 0) + overlap
    order = {state: rank for rank, state in enumerate(WORKER_STATES)}
    cells: list[tuple[WorkerState, str | None] | None] = []
    for share in shares:
        if not share:
            cells.append(None)
            continue
        # Most time wins; on a tie the state listed first (working) does, so the bar is stable.
        cells.append(min(share, key=lambda key: (-share[key], order[key[0]], key[1] or "")))
    return cells


def station_marks(cells: Sequence[tuple[WorkerState, str | None] | None]) -> str:
    """The station row: each station's id written where a run of time at it begins."""
    row = [" "] * len(cells)
    previous: str | None = None
    free_from = 0
    for index, cell in enumerate(cells):
        station = None if cell is None or cell[0] == "unobserved" else cell[1]
        if station is not None and station != previous and index >= free_from:
            label = station[: len(cells) - index]
            row[index : index + len(label)] = label
            free_from = index + len(label) + 1
        if station is not None:
            previous = station
    return "".join(row)


@dataclass(frozen=True, slots=True)
class TimelineData:
    """What a timeline bar shows: segments over `[from_us, to_us)` as seen at `at_us`."""

    from_us: int
    to_us: int
    at_us: int
    segments: tuple[Segment, ...]
    zone: tzinfo
    labels: Mapping[WorkerState, str] = field(
        default_factory=lambda: {state: state for state in WORKER_STATES}
    )
    """The legend's word for each state shown (a station view says occupied / empty)."""
    show_stations: bool = True
    """Write the station id where a stretch at a station starts (a worker's timeline)."""

    def __hash__(self) -> int:
        return hash((self.from_us, self.to_us, self.at_us, self.segments, self.show_stations))


class TimelineBar(Widget):
    """A window's states as a bar of coloured glyphs over a time axis, with a legend."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "timeline-bar--label",
        "timeline-bar--axis",
        "timeline-bar--now",
        "timeline-bar--working",
        "timeline-bar--idle",
        "timeline-bar--absent",
        "timeline-bar--unobserved",
    }

    DEFAULT_CSS = """
    TimelineBar {
        width: 1fr;
        height: auto;
        /* Each line is one row of the picture: a line that wrapped would push the last row
           out of the widget's height. */
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    data: reactive[TimelineData | None] = reactive(None, layout=True)
    """The timeline on show (None: nothing yet)."""

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        data = self.data
        if data is None:
            return 1
        return 5 if data.show_stations else 4

    def render(self) -> Text:
        """The bar, its axis and legend, fitted to the width."""
        data = self.data
        width = self.content_region.width or self.size.width
        label = self.get_component_rich_style("timeline-bar--label")
        if data is None:
            return Text("Loading…", style=label)
        axis = TimeAxis(data.from_us, data.to_us, max(1, width - GUTTER))
        cells = cell_states(data.segments, axis)
        styles = {
            state: self.get_component_rich_style(f"timeline-bar--{state}")
            for state in WORKER_STATES
        }
        lines: list[Text] = []
        if data.show_stations:
            lines.append(_row("station", station_marks(cells), label, label))
        bar = Text(no_wrap=True)
        bar.append(fit("state", GUTTER), label)
        for cell in cells:
            if cell is None:
                bar.append(" ")
            else:
                bar.append(GLYPHS[cell[0]], styles[cell[0]])
        lines.append(bar)
        lines.extend(self._axis_lines(data, axis, label))
        lines.append(self._legend(data, cells, styles, label))
        return Text("\n", no_wrap=True).join(lines)

    def _axis_lines(self, data: TimelineData, axis: TimeAxis, label: Style) -> list[Text]:
        axis_style = self.get_component_rich_style("timeline-bar--axis")
        now_style = self.get_component_rich_style("timeline-bar--now")
        ruler = ["─"] * axis.width
        names = [" "] * axis.width
        free_from = 0
        for index, moment in axis.ticks(data.zone):
            ruler[index] = "┬"
            text = from_utc_us(moment).astimezone(data.zone).strftime("%H:%M")
            if index >= free_from and index + len(text) <= axis.width:
                names[index : index + len(text)] = text
                free_from = index + len(text) + 1
        line = Text(" " * GUTTER, no_wrap=True)
        now_index = axis.cell(data.at_us) if data.from_us <= data.at_us < data.to_us else None
        for index, char in enumerate(ruler):
            if index == now_index:
                line.append("▲", now_style)
            else:
                line.append(char, axis_style)
        return [line, Text(" " * GUTTER + "".join(names), style=label, no_wrap=True)]

    def _legend(
        self,
        data: TimelineData,
        cells: Sequence[tuple[WorkerState, str | None] | None],
        styles: dict[WorkerState, Style],
        label: Style,
    ) -> Text:
        legend = Text(" " * GUTTER, no_wrap=True)
        for state, word in data.labels.items():
            legend.append(GLYPHS[state], styles[state])
            legend.append(f" {word}  ", label)
        if data.from_us <= data.at_us < data.to_us:
            legend.append("▲", self.get_component_rich_style("timeline-bar--now"))
            now = from_utc_us(data.at_us).astimezone(data.zone).strftime("%H:%M")
            legend.append(f" now {now}", label)
        return legend


def _row(name: str, content: str, label: Style, style: Style) -> Text:
    line = Text(no_wrap=True)
    line.append(fit(name, GUTTER), label)
    line.append(content, style)
    return line
