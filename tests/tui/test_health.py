"""The psutil reading behind the health badge: the free share of the database's disk (a SQLite
file's; none for a PostgreSQL server), and the one-sentence warning when it is low."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

from factory_tui.console.health import PsutilHealth, disk_free_percent, low_disk_warning


class Usage(NamedTuple):
    total: int
    used: int
    free: int
    percent: float


def test_the_free_share_of_the_database_disk_is_read_from_its_folder(tmp_path: Path) -> None:
    database = tmp_path / "factory.db"  # need not exist yet: its folder does
    free = disk_free_percent(database)
    assert free is not None
    usage = shutil.disk_usage(tmp_path)
    assert free == pytest.approx(100.0 * usage.free / usage.total, abs=1.0)
    reading = PsutilHealth(database)()
    assert reading.disk_free_percent == pytest.approx(free, abs=1.0)


def test_no_disk_figure_for_postgresql_or_without_a_database(tmp_path: Path) -> None:
    assert disk_free_percent("postgresql://factory:secret@db.example/factory") is None
    assert low_disk_warning("postgresql://factory:secret@db.example/factory") is None
    assert disk_free_percent(tmp_path / "no-such-folder" / "x" / "factory.db") is None
    assert PsutilHealth()().disk_free_percent is None


def test_a_low_disk_is_one_sentence_saying_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "factory.db"
    monkeypatch.setattr(psutil, "disk_usage", lambda _: Usage(1000, 938, 62, 93.8))
    assert low_disk_warning(database) == (
        f"the disk of {database} is 6.2 % free (under 10 %): free space, or set "
        "[store] keep_days to delete old events"
    )
    monkeypatch.setattr(psutil, "disk_usage", lambda _: Usage(1000, 900, 100, 90.0))
    assert low_disk_warning(database) is None
