"""`serve` on a site box that runs unattended (under systemd, deploy/factory-tui.service): it
exits non-zero with one line when its config or database is unusable, so the unit's restart
policy does the right thing, and it logs a warning while the database's disk is low.

Real parts: the CLI in subprocesses on real files, a real refused PostgreSQL port; the low-disk
warning from a real listener in this process, with psutil's reading of the disk replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

from factory_tui.commands.serve import _serve
from factory_tui.config import load_settings
from tests.ingest.conftest import start_cli

WAIT_S = 30.0


class Case(NamedTuple):
    name: str
    args: tuple[str, ...]
    says: str
    """What the one line says (after `factory-tui: `)."""


def unusable_cases(tmp_path: Path) -> list[Case]:
    """The ways a site box's config or database can be unusable at start, on real files
    (test_config.py has every way a config file can be wrong)."""
    (tmp_path / "range.toml").write_text("[ingest]\nmax_connections = 0\n")
    (tmp_path / "notes.db").write_text("shopping list: bolts, washers, a new camera\n" * 40)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    # root writes into a 0555 folder anyway: /proc is a folder nobody may create a file in.
    unwritable = Path("/proc") if os.geteuid() == 0 else locked
    return [
        Case(
            "a value out of range",
            ("--config", str(tmp_path / "range.toml")),
            f"{tmp_path / 'range.toml'}: ingest.max_connections: Input should be greater than "
            "or equal to 1",
        ),
        Case(
            "a config file that is missing",
            ("--config", str(tmp_path / "gone.toml")),
            f"config file {tmp_path / 'gone.toml'} does not exist",
        ),
        Case(
            "a folder it cannot write in",
            ("--db", str(unwritable / "factory.db")),
            f"cannot open database {unwritable / 'factory.db'}: ",
        ),
        Case(
            "a folder that does not exist",
            ("--db", str(tmp_path / "gone" / "factory.db")),
            f"cannot create database {tmp_path / 'gone' / 'factory.db'}: folder",
        ),
        Case(
            "a file that is not a database",
            ("--db", str(tmp_path / "notes.db")),
            f"cannot open database {tmp_path / 'notes.db'}: file is not a database",
        ),
        Case(
            "a PostgreSQL server that is not there",
            ("--db", "postgresql://factory:secret@127.0.0.1:1/factory"),
            "cannot connect to postgresql://factory:***@127.0.0.1:1/factory: ",
        ),
    ]


async def serve_to_its_end(*args: str) -> tuple[int, str, str]:
    """Run `serve --port 0 ARGS` until it exits: (exit code, stdout, stderr); killed when it
    is still running after WAIT_S (it started instead of failing)."""
    process = await start_cli("serve", "--port", "0", *args)
    try:
        out, err = await asyncio.wait_for(process.communicate(), WAIT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_serve_exits_non_zero_with_one_line_when_it_cannot_run(tmp_path: Path) -> None:
    cases = unusable_cases(tmp_path)
    # All at once: each is a whole interpreter start-up, and none waits on another.
    results = await asyncio.gather(*(serve_to_its_end(*case.args) for case in cases))
    for case, (code, out, err) in zip(cases, results, strict=True):
        lines = err.splitlines()
        assert code == 2, f"{case.name}: exit {code}: {err}"
        assert len(lines) == 1, f"{case.name}: {err}"
        assert lines[0].startswith(f"factory-tui: {case.says}"), f"{case.name}: {err}"
        assert "secret" not in err
        assert out == ""


class Usage(NamedTuple):
    total: int
    used: int
    free: int
    percent: float


class _Seen(logging.Handler):
    """Sets an asyncio event (from any thread) when a record holding `needle` is logged."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.WARNING)
        self.needle = needle
        self.loop = asyncio.get_running_loop()
        self.seen = asyncio.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.needle in message:
            self.loop.call_soon_threadsafe(self.seen.set)


async def test_serve_warns_at_start_when_the_database_disk_is_under_10_percent_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "disk_usage", lambda _: Usage(1000, 950, 50, 95.0))
    database = tmp_path / "factory.db"
    settings = load_settings(None, environ={}, overrides={"store.path": database, "ingest.port": 0})
    seen = _Seen("5.0 % free")
    logger = logging.getLogger("factory_tui.serve")
    logger.addHandler(seen)
    serving = asyncio.create_task(_serve(settings, 3600.0))
    try:
        await asyncio.wait_for(seen.seen.wait(), WAIT_S)
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        logger.removeHandler(seen)
    assert seen.messages == [
        f"the disk of {database} is 5.0 % free (under 10 %): free space, or set "
        "[store] keep_days to delete old events"
    ]


UNIT = Path(__file__).resolve().parent.parent / "deploy" / "factory-tui.service"


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, a key set twice keeping both values."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_systemd_unit_runs_serve_as_its_own_user_and_restarts_it_on_failure(
    tmp_path: Path,
) -> None:
    text = UNIT.read_text()
    unit = unit_settings(text)
    assert unit["ExecStart"] == [
        "/opt/factory-tui/bin/factory-tui serve --config /etc/factory-tui/factory.toml"
    ]
    assert unit["Restart"] == ["on-failure"]
    assert unit["User"] == ["factory-tui"]
    assert unit["WorkingDirectory"] == ["/var/lib/factory-tui"]
    # ProtectSystem=strict leaves only the state directory writable: SQLite's home.
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["StateDirectory"] == ["factory-tui"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit's syntax was not verified")
    # systemd checks that ExecStart can run: point it at this checkout's factory-tui.
    here = Path(sys.executable).parent / "factory-tui"
    copy = tmp_path / "factory-tui.service"
    copy.write_text(text.replace("/opt/factory-tui/bin/factory-tui", str(here)))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=WAIT_S
    )
    assert (result.returncode, result.stderr) == (0, "")
