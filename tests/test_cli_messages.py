"""One clear sentence for a wrong `--view` and for a file that is not a database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.storage import SqliteStore, StoreError

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


def test_a_file_that_is_not_a_database_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notadb.txt").write_text("hello, not a database\n" * 200)
    for read_only in (True, False):
        with pytest.raises(StoreError) as raised:
            SqliteStore.open("notadb.txt", read_only=read_only)
        assert str(raised.value) == "cannot open database notadb.txt: file is not a database"
    result = runner.invoke(app, ["report", "--db", "notadb.txt"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "factory-tui: cannot open database notadb.txt: file is not a database"
    )


def test_a_viewer_names_the_file_that_is_not_a_database(tmp_path: Path) -> None:
    from tests.tui.terminal import FACTORY_TUI, Terminal

    (tmp_path / "notadb.txt").write_text("hello, not a database\n" * 200)
    terminal = Terminal([FACTORY_TUI, "--viewer", "--db", "notadb.txt"], tmp_path)
    try:
        found = terminal.read_until(b"cannot open database notadb.txt: file is not a database")
        assert found, terminal.output[-2000:]
        status = terminal.wait()
        assert status is not None
        assert os.WEXITSTATUS(status) == 2
    finally:
        terminal.close()
