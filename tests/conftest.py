"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from factory_tui.storage import SqliteStore, Store


@pytest.fixture(autouse=True)
def _isolated_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test reads the developer's factory.toml or FACTORY_TUI_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("FACTORY_TUI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[Store]:
    """A new, migrated store in a temporary file."""
    store = SqliteStore.open(tmp_path / "factory.db")
    yield store
    store.close()
