"""The report tests run on the fixture floor, whose shifts (A, B, C) and roster are the demo's:
without a config file factory-tui has neither, so each test's folder gets it as factory.toml
(which every command finds there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.demo_config import write_demo_config


@pytest.fixture(autouse=True)
def _demo_floor_config() -> None:
    write_demo_config(Path.cwd(), "factory.toml")
