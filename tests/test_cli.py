"""The CLI skeleton: --version, --help on every command, `init`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from factory_tui import __version__
from factory_tui.cli import app
from factory_tui.config import load_settings

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"factory-tui {__version__}"


def test_python_dash_m_is_the_same_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "factory_tui", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f"factory-tui {__version__}"


def command_names() -> list[str]:
    # typer builds a click-style group; its `commands` maps each name to its command.
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_has_help() -> None:
    assert "init" in command_names()
    for name in command_names():
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage:" in result.stdout


def test_init_writes_a_loadable_example(tmp_path: Path) -> None:
    target = tmp_path / "factory.toml"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0
    assert "Wrote" in result.stdout
    assert load_settings(target, environ={}).workers[0].id == "W1"


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "factory.toml"
    target.write_text("# mine\n")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert target.read_text() == "# mine\n"
    assert runner.invoke(app, ["init", str(target), "--force"]).exit_code == 0
    assert target.read_text() != "# mine\n"


def test_init_defaults_to_factory_toml_in_current_folder() -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert Path("factory.toml").is_file()


def test_init_into_a_directory_writes_factory_toml_there(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert load_settings(tmp_path / "factory.toml", environ={}).workers[0].id == "W1"
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 2
    assert f"{tmp_path / 'factory.toml'} already exists; pass --force" in again.stderr
    assert runner.invoke(app, ["init", str(tmp_path), "--force"]).exit_code == 0


def test_init_into_a_new_directory_with_a_slash_makes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init newdir/` makes newdir and writes newdir/factory.toml (a Path alone loses the
    slash: this wrote a file named newdir)."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "newdir/"])
    assert result.exit_code == 0, result.output
    assert Path("newdir").is_dir()
    assert load_settings(Path("newdir/factory.toml"), environ={}).workers[0].id == "W1"
    assert "Wrote newdir/factory.toml" in result.stdout
    nested = runner.invoke(app, ["init", str(tmp_path / "a" / "b") + "/"])
    assert nested.exit_code == 0, nested.output
    assert (tmp_path / "a" / "b" / "factory.toml").is_file()
    # Without the slash a path that does not exist is the file's own name.
    assert runner.invoke(app, ["init", "plain"]).exit_code == 0
    assert Path("plain").is_file()
    # A slash after a file's name cannot make it a directory: one sentence.
    taken = runner.invoke(app, ["init", "plain/"])
    assert taken.exit_code == 2
    assert "cannot make the directory plain" in taken.stderr
    assert "Traceback" not in taken.output


def test_init_where_factory_toml_is_a_directory_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "factory.toml").mkdir()
    result = runner.invoke(app, ["init", str(tmp_path), "--force"])
    assert result.exit_code == 2
    assert "is a directory: give the path of the file to write" in result.stderr
    assert "Traceback" not in result.output


# --- options before the command -----------------------------------------------------------


def test_config_before_a_command_is_the_commands_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`factory-tui -c other.toml export events` reads other.toml, not ./factory.toml."""
    monkeypatch.chdir(tmp_path)
    Path("factory.toml").write_text('[store]\npath = "here.db"\n')
    Path("other.toml").write_text('[store]\npath = "other.db"\n')
    for args in (["export", "events"], ["report"]):
        result = runner.invoke(app, ["-c", "other.toml", *args])
        assert result.exit_code == 2
        assert "database other.db does not exist" in result.stderr, args
    typo = runner.invoke(app, ["-c", "bad.toml", "report", "--db", "k.db"])
    assert typo.exit_code == 2
    assert "config file bad.toml does not exist" in typo.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "a.toml", "report", "-c", "b.toml"], "--config is given both before and after"),
        (["-c", "a.toml", "export", "events", "--config=b.toml"], "given both before and after"),
        (["-c", "a.toml", "init"], "--config before `init`: `init` reads no config file"),
        (["--db", "k.db", "report"], "--db before `report` is an option of the console"),
        (["--site", "x", "--port", "1", "export", "events"], "--port, --site before `export`"),
    ],
)
def test_options_before_a_command_that_cannot_apply_are_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing was run: no database, no file written
