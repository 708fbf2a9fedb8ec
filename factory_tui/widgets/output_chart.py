"""A worker's output over the shift: units per hour, one bar per time bucket.

Drawn on the same time axis as the timeline bar below it (same gutter, same cells), so a dip
in output sits right above the idle or absent stretch that explains it::

    35 u/h           ▃▃ ▅▅ ██ ██
                  ▂▂ ██ ██ ██ ██ ▆▆
           0 ▁▁ ▇▇ ██ ██ ██ ██ ██ ██ ▁▁

Buckets are 15 minutes when the terminal is wide enough, else 30 or 60. The bucket that
contains "now" is measured over its elapsed part and drawn dim (it is still filling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from factory_tui.engine.snapshot import US_PER_S
from factory_tui.view_models import OutputSeries
from factory_tui.widgets.timeline_bar import GUTTER, TimeAxis

ROWS: Final = 3
LEVELS: Final = " ▁▂▃▄▅▆▇█"
MIN_CELLS_PER_BUCKET: Final = 2
US_PER_HOUR: Final = 3600 * US_PER_S


@dataclass(frozen=True, slots=True)
class OutputChartData:
    """A worker's output series drawn over `[from_us, to_us)` as seen at `at_us`."""

    from_us: int
    to_us: int
    at_us: int
    series: OutputSeries


@dataclass(frozen=True, slots=True)
class Bars:
    """The chart's numbers for one width: per cell, units per hour (None: not yet)."""

    bucket_us: int
    per_cell: tuple[float | None, ...]
    partial: tuple[bool, ...]
    """Per cell: the cell's bucket is the one still filling."""
    peak: float


def bars(data: OutputChartData, width: int) -> Bars:
    """Merge the series' buckets until each spans at least two cells, then rate each cell.

    A bucket's rate is its units over its length in hours; the bucket holding `at_us` is
    rated over the part that has passed.
    """
    series = data.series
    span = max(1, data.to_us - data.from_us)
    factor = 1
    while (
        series.bucket_us * factor * width / span < MIN_CELLS_PER_BUCKET
        and series.bucket_us * factor < span
    ):
        factor *= 2
    bucket_us = series.bucket_us * factor
    merged: list[int] = []
    for index in range(0, len(series.units), factor):
        merged.append(sum(series.units[index : index + factor]))
    axis = TimeAxis(data.from_us, data.to_us, width)
    per_cell: list[float | None] = []
    partial: list[bool] = []
    for cell in range(width):
        low, high = axis.bounds(cell)
        middle = (low + high) // 2
        if middle > data.at_us or middle < series.from_us:
            per_cell.append(None)
            partial.append(False)
            continue
        bucket = (middle - series.from_us) // bucket_us
        start = series.from_us + bucket * bucket_us
        filling = start + bucket_us > data.at_us
        length = (data.at_us - start) if filling else bucket_us
        units = merged[bucket] if bucket < len(merged) else 0
        per_cell.append(units * US_PER_HOUR / length if length > 0 else 0.0)
        partial.append(filling)
    peak = max((value for value in per_cell if value is not None), default=0.0)
    return Bars(bucket_us, tuple(per_cell), tuple(partial), peak)


def column(value: float | None, peak: float) -> list[str]:
    """One cell's glyphs, top row first; a zero rate shows as the lowest block."""
    if value is None:
        return [" "] * ROWS
    steps = ROWS * (len(LEVELS) - 1)
    level = round(value / peak * steps) if peak > 0 else 0
    if value > 0:
        level = max(level, 1)
    glyphs = []
    for row in range(ROWS - 1, -1, -1):
        filled = min(len(LEVELS) - 1, max(0, level - row * (len(LEVELS) - 1)))
        glyphs.append(LEVELS[filled])
    if level == 0:
        glyphs[-1] = "▁"
    return glyphs


class OutputChart(Widget):
    """Units per hour over the window as a bar chart on the timeline's time axis."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "output-chart--label",
        "output-chart--bar",
        "output-chart--filling",
        "output-chart--zero",
    }

    DEFAULT_CSS = """
    OutputChart {
        width: 1fr;
        height: auto;
        /* Each line is one row of the picture: a line that wrapped would push the last row
           out of the widget's height. */
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    data: reactive[OutputChartData | None] = reactive(None, layout=True)
    """The series on show (None: nothing yet)."""

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return ROWS + 1

    def render(self) -> Text:
        """The caption line and the bars."""
        data = self.data
        label = self.get_component_rich_style("output-chart--label")
        if data is None:
            return Text("Loading…", style=label)
        width = max(1, (self.content_region.width or self.size.width) - GUTTER)
        chart = bars(data, width)
        bar = self.get_component_rich_style("output-chart--bar")
        filling = self.get_component_rich_style("output-chart--filling")
        zero = self.get_component_rich_style("output-chart--zero")
        columns = [column(value, chart.peak) for value in chart.per_cell]
        minutes = chart.bucket_us // (60 * US_PER_S)
        caption = (
            f"units per hour of shift time, {minutes}-minute buckets "
            "(dim: the bucket still filling)"
        )
        if len(caption) > width:  # 80 columns: the short form, not cut
            caption = f"units/h of shift time, {minutes}-min buckets (dim: still filling)"
        lines = [Text(f"{'output':<{GUTTER}}{caption}", style=label, no_wrap=True)]
        for row in range(ROWS):
            if row == 0:
                gutter = f"{chart.peak:.0f} u/h"
            elif row == ROWS - 1:
                gutter = "0"
            else:
                gutter = ""
            line = Text(f"{gutter:>{GUTTER - 1}} ", style=label, no_wrap=True)
            for index, glyphs in enumerate(columns):
                value = chart.per_cell[index]
                style: Style = filling if chart.partial[index] else bar
                if value == 0:
                    style = zero
                line.append(glyphs[row], style)
            lines.append(line)
        return Text("\n", no_wrap=True).join(lines)
