"""The CLI imports a command's module only when that command runs (start-up cost of `report`)."""

from __future__ import annotations

import json
import subprocess
import sys

import typer

from factory_tui.cli import COMMAND_MODULES, app

LOADED = """
import json, sys
from typer.testing import CliRunner
from factory_tui.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
loaded = sorted(name.rsplit(".", 1)[1] for name in sys.modules
                if name.startswith("factory_tui.commands."))
print(json.dumps({"exit": result.exit_code, "loaded": loaded}))
"""


def loaded_after(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *args], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout.splitlines()[-1])
    return found["exit"], set(found["loaded"]) & set(COMMAND_MODULES)


def test_running_one_command_imports_only_its_module() -> None:
    assert loaded_after("report", "--help") == (0, {"report"})
    assert loaded_after("init", "--help") == (0, {"init"})


def test_the_group_still_lists_every_command() -> None:
    group = typer.main.get_command(app)
    assert list(group.commands) == list(COMMAND_MODULES)  # type: ignore[attr-defined]
    exit_code, loaded = loaded_after("--help")
    assert exit_code == 0
    assert loaded == set(COMMAND_MODULES)
