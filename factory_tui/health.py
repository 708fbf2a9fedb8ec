"""Machine health for the console's badge: the one place psutil is used.

The app is handed a `HealthReader` (any callable returning a `HealthReading`), so tests and
snapshots inject fixed readings while the real console reads psutil.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psutil

HealthLevel = Literal["ok", "warn", "crit"]


@dataclass(frozen=True, slots=True)
class HealthReading:
    """One sample: machine-wide CPU and RAM use, and this process's resident memory."""

    cpu_percent: float
    ram_percent: float
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """Percentages (of CPU or RAM, whichever is higher) at which the badge turns amber / red."""

    warn_percent: float = 75.0
    crit_percent: float = 90.0

    def level(self, reading: HealthReading) -> HealthLevel:
        """The badge level of a reading: the worse of CPU and RAM decides."""
        worst = max(reading.cpu_percent, reading.ram_percent)
        if worst >= self.crit_percent:
            return "crit"
        if worst >= self.warn_percent:
            return "warn"
        return "ok"


HealthReader = Callable[[], HealthReading]
"""Anything that returns a fresh reading when called (called from a worker thread)."""


class PsutilHealth:
    """Reads CPU / RAM of the machine and the RSS of this process through psutil.

    `cpu_percent(interval=None)` measures since the previous call, so it never sleeps; the first
    call is made here so that the first real reading is not a meaningless 0.0.
    """

    def __init__(self) -> None:
        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)

    def __call__(self) -> HealthReading:
        """A fresh reading."""
        return HealthReading(
            cpu_percent=float(psutil.cpu_percent(interval=None)),
            ram_percent=float(psutil.virtual_memory().percent),
            rss_bytes=int(self._process.memory_info().rss),
        )


def fixed_health(reading: HealthReading) -> HealthReader:
    """A reader that always returns `reading` (deterministic snapshots and tests)."""

    def read() -> HealthReading:
        return reading

    return read
