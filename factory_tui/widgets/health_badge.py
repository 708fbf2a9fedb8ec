"""The health badge: machine CPU % and RAM %, this process's RSS (or, when the database's disk
is nearly full, that disk's use), and a level word."""

from __future__ import annotations

from typing import Final

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from factory_tui.records import HealthLevel, HealthReading, HealthThresholds
from factory_tui.widgets.formatting import MISSING

LEVEL_WORDS: Final[dict[HealthLevel, str]] = {"ok": "OK", "warn": "HIGH", "crit": "CRIT"}
"""The level as a word, so amber and red also read without colour."""
LOW_DISK_WORD: Final = "DISK"
"""The word of an amber badge when the database's disk is low."""
BADGE_WIDTH: Final = 15


def format_bytes(count: int) -> str:
    """A byte count as `82 MB` / `1.2 GB` (decimal units, as `ps` and `top` users expect)."""
    if count >= 10**9:
        return f"{count / 10**9:.1f} GB"
    return f"{count / 10**6:.0f} MB"


class HealthBadge(Widget):
    """CPU and RAM of the machine and this process's RSS; green / amber / red by thresholds.

    While the database's disk is low (under `HealthThresholds.disk_low_percent` free), the
    second line shows that disk's use in place of the RSS, and an amber badge reads DISK.
    The level is also set as a CSS class (`-ok`, `-warn`, `-crit`) for the colour.
    """

    DEFAULT_CSS = """
    HealthBadge {
        width: auto;
        height: 2;
        padding: 0 0 0 1;
    }
    """

    reading: reactive[HealthReading | None] = reactive(None)
    """The latest sample (None until the first tick)."""

    def __init__(
        self,
        *,
        thresholds: HealthThresholds | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.thresholds = thresholds or HealthThresholds()

    @property
    def level(self) -> HealthLevel | None:
        """The level of the current reading (None before the first one)."""
        return None if self.reading is None else self.thresholds.level(self.reading)

    def watch_reading(self) -> None:
        level = self.level
        for name in ("ok", "warn", "crit"):
            self.set_class(level == name, f"-{name}")

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return BADGE_WIDTH

    def render(self) -> Text:
        """Two lines: CPU and RAM, then RSS (or the low disk's use) and the level word."""
        reading = self.reading
        second = f"RSS {MISSING}"
        if reading is None:
            cpu = ram = MISSING
            word = ""
        else:
            cpu = f"{reading.cpu_percent:.0f}%"
            ram = f"{reading.ram_percent:.0f}%"
            second = f"RSS {format_bytes(reading.rss_bytes)}"
            level = self.thresholds.level(reading)
            word = LEVEL_WORDS[level]
            if reading.disk_free_percent is not None and self.thresholds.disk_low(reading):
                second = f"DSK {100.0 - reading.disk_free_percent:.0f}%"
                word = LOW_DISK_WORD if level == "warn" else word
        first = f"CPU {cpu:>3} RAM {ram:>3}"
        if len(first) > BADGE_WIDTH:  # 100%: drop padding rather than wrap the badge
            first = f"CPU {cpu} RAM {ram}"
            if len(first) > BADGE_WIDTH:
                first = f"CPU{cpu} RAM{ram}"
        second += word.rjust(BADGE_WIDTH - len(second))
        text = Text(first.ljust(BADGE_WIDTH) + "\n", no_wrap=True)
        text.append(second[: BADGE_WIDTH - len(word)])
        text.append(word, style="bold reverse")
        return text
