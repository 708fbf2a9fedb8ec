"""Warnings said on stderr before the console starts (a misspelled FACTORY_TUI_* variable,
`--simulate` with no roster) also show on the console: its screen covers stderr until it ends."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from factory_tui.commands import console
from factory_tui.console.app import START_NOTE_S, FactoryApp


def console_of(monkeypatch: pytest.MonkeyPatch, **options: object) -> FactoryApp:
    """The app `factory-tui` would run with these options (built, not run)."""
    built: list[FactoryApp] = []
    monkeypatch.setattr(console, "run_to_exit", built.append)
    console.run_console(config=None, db="w.db", port=0, **options)  # type: ignore[arg-type]
    (app,) = built
    return app


def warnings_on(app: FactoryApp) -> list[tuple[str, str, float]]:
    return [
        (notice.message, notice.severity, notice.timeout)
        for notice in app._notifications
        if notice.title == "Warning"
    ]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no factory.toml: no roster


async def test_a_misspelled_variable_is_shown_on_the_console(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACTORY_TUI_PROT", "17999")
    app = console_of(monkeypatch)
    said = "FACTORY_TUI_PROT is not a factory-tui setting and is ignored"
    assert said in capsys.readouterr().err  # still on stderr, read after quitting
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.started.wait(), 30)
        await pilot.pause()
        assert app.error_message is None
        shown = warnings_on(app)
        assert [(message[: len(said)], severity) for message, severity, _ in shown] == [
            (said, "warning")
        ]
        assert "did you mean FACTORY_TUI_PORT?" in shown[0][0]
        assert shown[0][2] == START_NOTE_S
        await pilot.press("q")


async def test_simulating_the_demo_roster_is_said_on_the_console(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = console_of(monkeypatch, simulate=True)
    assert "no roster configured: --simulate runs the demo floor's" in capsys.readouterr().err
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.started.wait(), 30)
        await pilot.pause()
        shown = [message for message, _, _ in warnings_on(app)]
        assert len(shown) == 1
        assert shown[0].startswith("no roster configured: --simulate runs the demo floor's")
        await pilot.press("q")


async def test_no_warning_no_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("FACTORY_TUI")]:
        monkeypatch.delenv(name)
    app = console_of(monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.started.wait(), 30)
        await pilot.pause()
        assert warnings_on(app) == []
        await pilot.press("q")
