"""One clear sentence for a wrong `--view` and for a file that is not a database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["demo"]])
def test_an_unknown_view_is_one_sentence_listing_the_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*command, "--view", "foo"])
    assert result.exit_code == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error == (
        "Error: Invalid value for '--view': there is no view 'foo'; "
        "the views are workers, stations, events and alerts."
    )
    assert "Value error" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was run


def test_a_known_view_is_still_taken() -> None:
    from factory_tui.commands.console import ViewName, view_name

    assert view_name("stations") is ViewName.stations
    assert view_name(ViewName.events) is ViewName.events


def test_a_view_reaches_the_console_as_a_view_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from factory_tui.commands import console

    seen: list[object] = []
    monkeypatch.setattr(console, "run_console", lambda **options: seen.append(options["view"]))
    assert runner.invoke(app, ["--view", "events"]).exit_code == 0
    assert runner.invoke(app, []).exit_code == 0
    assert seen == [console.ViewName.events, console.ViewName.workers]
    assert all(type(view) is console.ViewName for view in seen)
