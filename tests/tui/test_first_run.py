"""The first run: no config and an empty database. The floor invents no workers; it says where
cameras connect, gives a line to try and what to do next, and workers appear as they arrive."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

from factory_tui.config import Settings
from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.widgets.worker_grid import ListenAddress
from tests.tui.conftest import READING, SetClock
from tests.tui.terminal import FACTORY_TUI, Terminal


def first_run(tmp_path: Path, clock: SetClock, **ingest: object) -> FactoryApp:
    """The console on an empty database with default settings (no roster, no shifts)."""
    settings = Settings.model_validate(
        {"store": {"path": str(tmp_path / "factory.db")}, "ingest": {"port": 0, **ingest}}
    )
    return make_app(settings, clock=clock, health=fixed_health(READING), animations=False)


def grid_text(app: FactoryApp) -> str:
    """The grid's lines as drawn."""
    grid = app.grid
    return "\n".join(grid.render_line(y).text.rstrip() for y in range(grid.size.height))


async def test_the_empty_floor_says_where_it_listens_and_what_to_do(
    tmp_path: Path, clock: SetClock
) -> None:
    app = first_run(tmp_path, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.tick_now()
        await pilot.pause()
        assert app.listener is not None
        port = app.listener.port
        assert app.grid.listening == ListenAddress("127.0.0.1", port, False, False)
        assert app.grid.total == 0
        text = " ".join(grid_text(app).split())  # words, whatever the wrapping
    assert "Ana Silva" not in text
    assert f"to 127.0.0.1:{port} (no token needed)" in text
    assert f"| nc -q 1 127.0.0.1 {port}" in text
    assert "--auto-register" in text
    assert "[ingest] auto_register = true" in text
    assert "factory-tui init" in text
    assert "factory-tui demo" in text


async def test_with_a_token_the_example_authenticates_first(
    tmp_path: Path, clock: SetClock
) -> None:
    app = first_run(tmp_path, clock, token="s3cret")
    async with app.run_test(size=(160, 40)) as pilot:
        await app.tick_now()
        await pilot.pause()
        text = grid_text(app)
    assert "a token is needed" in text
    assert """printf '%s\\n' '{"auth":"<token>"}' '{"timestamp":""" in text
    assert "s3cret" not in text  # the screen never shows the secret


async def test_with_auto_register_the_example_line_brings_its_worker(
    tmp_path: Path, clock: SetClock
) -> None:
    """The line the empty floor suggests, sent as printed, is accepted and its worker shows
    up as WORKING at the next tick."""
    app = first_run(tmp_path, clock, auto_register=True)
    async with app.run_test(size=(200, 40)) as pilot:
        await app.tick_now()
        await pilot.pause()
        assert app.listener is not None
        text = grid_text(app)
        assert "added as their events arrive (auto_register is on)" in text
        found = re.search(r"echo '(\{.*\})' \| nc", text)
        assert found is not None, text
        reader, writer = await asyncio.open_connection("127.0.0.1", app.listener.port)
        writer.write(found.group(1).encode() + b"\n")
        await writer.drain()
        assert json.loads(await reader.readline()) == {"status": "accepted"}
        writer.close()
        await writer.wait_closed()
        clock.advance(5)
        await app.tick_now()
        await pilot.pause()
        assert app.grid.shown_ids == ("W1",)
        assert app.snapshot is not None
        assert app.snapshot.workers[0].state == "working"


async def test_a_viewer_only_waits(tmp_path: Path, clock: SetClock) -> None:
    """A viewer owns no listener, so it gives no address."""
    from factory_tui.storage import SqliteStore

    SqliteStore.open(tmp_path / "factory.db").close()
    settings = Settings.model_validate({"store": {"path": str(tmp_path / "factory.db")}})
    app = make_app(
        settings, clock=clock, health=fixed_health(READING), animations=False, role="viewer"
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await app.tick_now()
        await pilot.pause()
        assert app.grid.listening is None
        assert "No workers yet: waiting for camera events" in grid_text(app)


def test_factory_tui_in_an_empty_folder_invents_no_workers(tmp_path: Path) -> None:
    """As a new user runs it: no config, no database, on a terminal."""
    terminal = Terminal([FACTORY_TUI, "--port", "0"], tmp_path, size=(100, 30))
    try:
        assert terminal.read_until(b"No workers yet"), terminal.output[-2000:]
        assert terminal.read_until(b"factory-tui demo"), terminal.output[-2000:]
        assert b"Ana Silva" not in terminal.output
        assert b"UNOBSERVED" not in terminal.output
        terminal.send(b"q")
        terminal.drain()
        status = terminal.wait()
        assert status is not None
        assert os.WIFEXITED(status)
        assert os.WEXITSTATUS(status) == 0
    finally:
        terminal.close()
