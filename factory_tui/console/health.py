"""Machine health for the console's badge: the one place psutil is read.

The app is handed a `HealthReader` (any callable returning a `HealthReading`), so tests and
snapshots inject fixed readings while the real console reads psutil.
"""

from __future__ import annotations

from collections.abc import Callable

import psutil

from factory_tui.records import HealthReading

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
