"""Machine health for the console's badge (and `serve`'s disk warning): the one place psutil
is read.

The app is handed a `HealthReader` (any callable returning a `HealthReading`), so tests and
snapshots inject fixed readings while the real console reads psutil.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil

from factory_tui.records import HealthReading, HealthThresholds
from factory_tui.storage import is_postgres_url

HealthReader = Callable[[], HealthReading]
"""Anything that returns a fresh reading when called (called from a worker thread)."""


def disk_free_percent(database: Path | str) -> float | None:
    """Free share (0-100) of the disk holding the SQLite database `database`, as `df` counts
    it (available to us over the disk's size). None for a PostgreSQL URL (its disk is the
    server's, which we cannot read from here) or a folder that cannot be read."""
    if is_postgres_url(database):
        return None
    try:
        usage = psutil.disk_usage(str(Path(database).expanduser().resolve().parent))
    except OSError:
        return None
    return 100.0 * usage.free / usage.total if usage.total else None


def low_disk_warning(
    database: Path | str, thresholds: HealthThresholds | None = None
) -> str | None:
    """One sentence when the database's disk is under the low-disk threshold, else None."""
    limit = (thresholds or HealthThresholds()).disk_low_percent
    free = disk_free_percent(database)
    if free is None or free >= limit:
        return None
    return (
        f"the disk of {database} is {free:.1f} % free (under {limit:g} %): free space, or set "
        "[store] keep_days to delete old events"
    )


class PsutilHealth:
    """Reads CPU / RAM of the machine, the RSS of this process and the free share of the
    database's disk (`database`: a SQLite file; none for a PostgreSQL URL) through psutil.

    `cpu_percent(interval=None)` measures since the previous call, so it never sleeps; the first
    call is made here so that the first real reading is not a meaningless 0.0.
    """

    def __init__(self, database: Path | str | None = None) -> None:
        self._process = psutil.Process()
        self._database = database
        psutil.cpu_percent(interval=None)

    def __call__(self) -> HealthReading:
        """A fresh reading."""
        database = self._database
        return HealthReading(
            cpu_percent=float(psutil.cpu_percent(interval=None)),
            ram_percent=float(psutil.virtual_memory().percent),
            rss_bytes=int(self._process.memory_info().rss),
            disk_free_percent=None if database is None else disk_free_percent(database),
        )


def fixed_health(reading: HealthReading) -> HealthReader:
    """A reader that always returns `reading` (deterministic snapshots and tests)."""

    def read() -> HealthReading:
        return reading

    return read
