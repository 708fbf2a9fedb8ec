"""Text formatting shared by the widgets: numbers, durations, ages and the state vocabulary.

Pure functions of their arguments (no clock reads), so a widget's text is a function of the
Snapshot it was handed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Final

from rich.cells import cell_len, set_cell_size

from factory_tui.engine.snapshot import WorkerState

STATE_WORDS: Final[dict[WorkerState, str]] = {
    "working": "WORKING",
    "idle": "IDLE",
    "absent": "ABSENT",
    "unobserved": "UNOBSERVED",
}
"""The state as a word: colour is never the only cue."""

SPARK_LEVELS: Final = "▁▂▃▄▅▆▇█"
MISSING: Final = "—"


def fit(text: str, width: int) -> str:
    """`text` cut or padded to exactly `width` cells, with an ellipsis when it was cut."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def clip(text: str, width: int) -> str:
    """`text` cut to at most `width` cells (ellipsis when cut), not padded."""
    if cell_len(text) <= width:
        return text
    return fit(text, width)


def percent(value: float | None) -> str:
    """A fraction as a whole percentage (`72%`), or a dash for a null metric."""
    return MISSING if value is None else f"{value * 100:.0f}%"


def rate(value: float | None) -> str:
    """A rate with one decimal below 100 and none above (`18.2`, `152`), or a dash."""
    if value is None:
        return MISSING
    return f"{value:.1f}" if abs(value) < 100 else f"{value:,.0f}"


def hours_minutes(seconds: float) -> str:
    """A duration as `2h05m` (or `45m` under an hour)."""
    minutes = max(0, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def span(seconds: float) -> str:
    """How long something lasted: `37s` under a minute (thresholds may be that short, and
    `0m` says nothing), else as `hours_minutes`."""
    if seconds < 60:
        return f"{max(0, int(seconds))}s"
    return hours_minutes(seconds)


def confidence(value: float | None) -> str:
    """A confidence (0..1) to two places, or the missing mark."""
    return MISSING if value is None else f"{value:.2f}"


def folded(text: str) -> str:
    """`text` without case or accents (NFKD, combining marks dropped): `José` reads `jose`."""
    if text.isascii():
        return text.lower()  # the common case, several times cheaper than normalizing
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def matches(words: Sequence[str], *fields: str) -> bool:
    """True when every word appears in one of the fields, ignoring case and accents (the
    filters' rule: `/jose` finds José and `/josé` finds Jose)."""
    if not words:
        return True  # no filter (every tile, every tick): skip the folding
    haystack = folded(" ".join(fields))
    return all(folded(word) in haystack for word in words)


def minutes_text(seconds: float) -> str:
    """A configured duration in words (`15 min`, `2 h`)."""
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def age(seconds: float | None) -> str:
    """How long ago, coarse on purpose (a tile only redraws when this text changes).

    Under a minute reads `<1m`; then minutes, hours and minutes, days.
    """
    if seconds is None:
        return "not seen"
    if seconds < 60:
        return "<1m ago"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m ago"
    return f"{hours // 24}d ago"


def sparkline(values: tuple[float, ...]) -> str:
    """Fractions in [0, 1] as block characters, lowest block for zero."""
    # A list, one comparison per value on the usual path: every tile's sparkline is made
    # every tick (200 workers: 0.7 ms of the UI thread's tick as a generator with min/max).
    levels, top = SPARK_LEVELS, len(SPARK_LEVELS) - 1
    return "".join(
        [
            levels[round(value * top)] if 0.0 < value < 1.0 else levels[top if value >= 1.0 else 0]
            for value in values
        ]
    )


def bar(fraction: float | None, width: int) -> tuple[str, str]:
    """The filled and empty parts of a `width`-cell bar (both empty-looking when null)."""
    if fraction is None:
        return "", "·" * width
    filled = round(min(1.0, max(0.0, fraction)) * width)
    return "█" * filled, "░" * (width - filled)
