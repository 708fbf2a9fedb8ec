"""The CLI skeleton: --version, --help on every command, `init`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
