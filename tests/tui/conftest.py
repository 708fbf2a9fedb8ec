"""Fixtures for the console tests: a database filled with the fixture morning, a settable clock,
fixed machine readings, and the app built the way the CLI builds it (`make_app`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.records import HealthReading
from tests.tui.floor import AT_US, fill, floor_settings

READING = HealthReading(cpu_percent=23.0, ram_percent=41.0, rss_bytes=95_000_000)


class SetClock:
    """A clock the test moves by hand (UTC epoch microseconds)."""

    def __init__(self, now_us: int = AT_US) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * 1_000_000)


@pytest.fixture
def floor_db(tmp_path: Path) -> Path:
    """A database holding the fixture morning (see floor.py)."""
    path = tmp_path / "factory.db"
    fill(str(path))
    return path


@pytest.fixture
def clock() -> SetClock:
    """The console's "now", 10:30 on the fixture day until a test moves it."""
    return SetClock()


ConsoleFactory = Callable[..., FactoryApp]


@pytest.fixture
def console(floor_db: Path, clock: SetClock) -> ConsoleFactory:
    """Build a console on the fixture database: fixed clock and health, no animation.

    Keyword arguments go to `make_app`; `port` and `tick_s` to the settings.
    """

    def build(
        *, port: int = 0, tick_s: float = 60.0, db: Path | None = None, **kwargs: Any
    ) -> FactoryApp:
        settings = floor_settings(str(db or floor_db), port=port, tick_s=tick_s)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("health", fixed_health(READING))
        kwargs.setdefault("animations", False)
        return make_app(settings, **kwargs)

    return build
