"""The first run: no config and an empty database. The floor invents no workers; it says where
cameras connect, gives a line to try and what to do next, and workers appear as they arrive."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from factory_tui.config import Settings
from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.widgets.worker_grid import ListenAddress, empty_floor_message, example_command
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
    assert f"factory-tui send -p {port} -" in text
    # No roster: the example's W1 would be rejected, and the screen says so before it.
    assert text.index("--auto-register") < text.index("echo '")
    assert "[ingest] auto_register = true" in text
    assert "factory-tui init" in text
    assert "factory-tui demo" in text


async def test_with_a_token_the_example_says_where_send_finds_it(
    tmp_path: Path, clock: SetClock
) -> None:
    app = first_run(tmp_path, clock, token="s3cret")
    async with app.run_test(size=(160, 40)) as pilot:
        await app.tick_now()
        await pilot.pause()
        text = grid_text(app)
    assert "a token is needed: send reads ingest.token from factory.toml, or give --token" in text
    assert "s3cret" not in text  # the screen never shows the secret


def test_with_tls_the_example_speaks_tls() -> None:
    address = ListenAddress("0.0.0.0", 7878, False, False, tls=True)
    lines = empty_floor_message(address, 0)
    assert "TLS only: send --tls" in lines[1][0]
    assert example_command(address, 0)[-1] == "factory-tui send --tls -p 7878 -"


def command_lines(app: FactoryApp) -> list[str]:
    """The example command as drawn, one string per screen line (indent dropped)."""
    lines = grid_text(app).splitlines()
    first = next(index for index, text in enumerate(lines) if text.lstrip().startswith("echo '"))
    last = next(index for index in range(first, len(lines)) if "factory-tui send" in lines[index])
    return [text.strip() for text in lines[first : last + 1]]


async def test_the_example_pasted_from_80_columns_brings_its_worker(
    tmp_path: Path, clock: SetClock
) -> None:
    """The command the empty floor shows at 80x24, pasted into a shell line by line as drawn,
    is one command: its event is accepted and the worker shows up as WORKING at the next tick.
    At 120x40 it is drawn in the same lines (not re-wrapped)."""
    app = first_run(tmp_path, clock, auto_register=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.tick_now()
        await pilot.pause()
        assert app.listener is not None
        words = " ".join(grid_text(app).split())
        assert "added as their events arrive (auto_register is on)" in words
        pasted = command_lines(app)
        assert len(pasted) == 3
        env = {**os.environ, "PATH": f"{Path(FACTORY_TUI).parent}{os.pathsep}{os.environ['PATH']}"}
        shell = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            "\n".join(pasted),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(shell.communicate(), 60)
        assert shell.returncode == 0, output.decode()
        assert b"accepted 1" in output, output.decode()
        clock.advance(5)
        await app.tick_now()
        await pilot.pause()
        assert app.grid.shown_ids == ("W1",)
        assert app.snapshot is not None
        assert app.snapshot.workers[0].state == "working"
    (tmp_path / "wide").mkdir()
    wide = first_run(tmp_path / "wide", clock, auto_register=True)
    async with wide.run_test(size=(120, 40)) as pilot:
        await wide.tick_now()
        await pilot.pause()
        assert wide.listener is not None
        port = wide.listener.port
        assert command_lines(wide) == [*pasted[:2], f"factory-tui send -p {port} -"]


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
