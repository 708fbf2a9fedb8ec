"""`factory-tui` and `factory-tui demo` as a user runs them: real processes on a pseudo-terminal."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factory_tui.commands.demo import demo_settings
from factory_tui.ingest.simulator_model import FleetConfig
from factory_tui.models import to_utc_us
from factory_tui.storage import SqliteStore
from tests.tui.floor import AT, fill, line
from tests.tui.terminal import FACTORY_TUI, SAFETY_S, Terminal


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    """Terminals opened by a test; any child still running at the end is killed."""
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def test_demo_runs_the_simulator_and_quits_on_q(tmp_path: Path, terminals: list[Terminal]) -> None:
    terminal = Terminal([FACTORY_TUI, "demo", "--port", "0", "--speed", "60"], tmp_path)
    terminals.append(terminal)
    assert terminal.read_until(b"WORKING"), terminal.output[-2000:]
    assert b"demo" in terminal.output
    terminal.send(b"q")
    terminal.drain()
    status = terminal.wait()
    assert status is not None
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 0
    with SqliteStore.open(tmp_path / "factory-demo.db", read_only=True) as store:
        assert store.count_events() > 0
        assert set(store.workers()) == {"W1", "W2", "W3", "W4", "W5", "W6"}


def test_simulate_feeds_the_console_from_the_camera_simulator(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    """`factory-tui --simulate`: the built-in simulator, paced by the wall clock, sends the
    configured roster's cameras to the console's own listener, from the shift start on."""
    now = datetime.now(UTC)
    start = now - timedelta(hours=3)  # a shift under way: three hours of history to send
    end = now + timedelta(hours=5)
    (tmp_path / "factory.toml").write_text(
        f'[[shifts]]\nname = "Now"\nstart = "{start:%H:%M}"\nend = "{end:%H:%M}"\n'
        + "".join(f'[[workers]]\nid = "P{n}"\n' for n in range(1, 4))
        + "".join(f'[[workstations]]\nid = "T{n}"\n' for n in range(1, 3))
    )
    terminal = Terminal([FACTORY_TUI, "--db", "sim.db", "--port", "0", "--simulate"], tmp_path)
    terminals.append(terminal)
    # A tile says "not seen" until its worker's first event is on screen, then "..m ago".
    assert terminal.read_until(b"m ago"), terminal.output[-2000:]
    terminal.send(b"q")
    terminal.drain()
    status = terminal.wait()
    assert status is not None
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 0
    with SqliteStore.open(tmp_path / "sim.db", read_only=True) as store:
        span = store.time_span()
        assert span is not None
        assert {event.worker_id for event in store.iter_since(0)} == {"P1", "P2", "P3"}
    first, last = span
    # Wall-clock pace: history from the shift start (to the minute), nothing from the future.
    # A line sent late (out of order, by up to the simulator's late_delay_s) from just before
    # the start can be among the first sent.
    late_s = int(FleetConfig().late_delay_s[1])
    shift_start = start.replace(second=0, microsecond=0) - timedelta(seconds=late_s)
    assert to_utc_us(shift_start) <= first
    assert last <= to_utc_us(datetime.now(UTC))


def acked_event(terminal: Terminal, db: Path) -> int:
    """Send one camera line to the console's listener and read its answer; the events the
    database then holds."""
    with SqliteStore.open(db, read_only=True) as store:
        recorded = store.owner()
    assert recorded is not None
    _pid, _host, port = recorded
    with socket.create_connection(("127.0.0.1", port), timeout=SAFETY_S) as camera:
        camera.sendall(line(AT, "W6", "S6", "working") + b"\n")
        assert camera.makefile("rb").readline() == b'{"status":"accepted"}\n'
    with SqliteStore.open(db, read_only=True) as store:
        return store.count_events()


def assert_stopped_cleanly(terminal: Terminal, db: Path, events: int) -> None:
    """The console exited 0 (not by the signal's default action) and closed its database
    with the acked event in it."""
    status = terminal.wait()
    assert status is not None, "the console kept running after the signal"
    assert os.WIFEXITED(status), f"ended by signal {os.WTERMSIG(status)}, not an orderly stop"
    assert os.WEXITSTATUS(status) == 0
    # The last connection closed checkpoints the WAL into the database and deletes it.
    assert not Path(f"{db}-wal").exists(), "the stores were not closed"
    with SqliteStore.open(db, read_only=True) as store:
        assert store.count_events() == events


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_stops_the_console_as_q_does(
    tmp_path: Path, terminals: list[Terminal], signum: signal.Signals
) -> None:
    """`kill` (systemd, a session manager) or `kill -HUP` with the terminal still there: the
    orderly stop of `q`, and the terminal restored (alternate screen left, cursor shown, mouse
    tracking off)."""
    db = tmp_path / "factory.db"
    fill(str(db))
    terminal = Terminal([FACTORY_TUI, "--db", "factory.db", "--port", "0"], tmp_path)
    terminals.append(terminal)
    assert terminal.read_until(b"LIVE"), terminal.output[-2000:]
    events = acked_event(terminal, db)
    os.kill(terminal.pid, signum)
    terminal.drain()
    assert_stopped_cleanly(terminal, db, events)
    output = bytes(terminal.output)
    for on, off in [(b"\x1b[?1049h", b"\x1b[?1049l"), (b"\x1b[?25l", b"\x1b[?25h")]:
        assert output.rfind(off) > output.rfind(on), (on, output[-300:])
    assert output.rfind(b"\x1b[?1000l") > output.rfind(b"\x1b[?1000h"), output[-300:]


@pytest.mark.parametrize("ignore_hangup", [False, True], ids=["", "under-nohup"])
def test_a_vanished_terminal_stops_the_console_as_q_does(
    tmp_path: Path, terminals: list[Terminal], ignore_hangup: bool
) -> None:
    """An SSH drop hangs up the terminal (SIGHUP): the console must stop as on `q`, not spin
    (dolphie#101) nor block drawing to a terminal that is gone, also when it was started with
    SIGHUP ignored (nohup, some session managers)."""
    db = tmp_path / "factory.db"
    fill(str(db))
    terminal = Terminal(
        [FACTORY_TUI, "--db", "factory.db", "--port", "0"], tmp_path, ignore_hangup=ignore_hangup
    )
    terminals.append(terminal)
    assert terminal.read_until(b"LIVE"), terminal.output[-2000:]
    events = acked_event(terminal, db)
    terminal.hang_up()
    assert_stopped_cleanly(terminal, db, events)


def test_a_second_console_on_the_same_database_is_a_viewer(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    fill(str(tmp_path / "factory.db"))
    owner = Terminal([FACTORY_TUI, "--db", "factory.db", "--port", "0"], tmp_path)
    terminals.append(owner)
    assert owner.read_until(b"LIVE"), owner.output[-2000:]
    with SqliteStore.open(tmp_path / "factory.db", read_only=True) as store:
        recorded = store.owner()
    assert recorded is not None
    pid, _host, port = recorded
    assert pid == owner.pid
    viewer = Terminal([FACTORY_TUI, "--db", "factory.db", "--port", str(port)], tmp_path)
    terminals.append(viewer)
    assert viewer.read_until(b"viewer (read-only)"), viewer.output[-2000:]
    assert viewer.read_until(b"LIVE")
    viewer.send(b"q")
    viewer.drain()
    status = viewer.wait()
    assert status is not None
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 0
    # The viewer leaves the owner running: it still answers on its port, and has not ended.
    with socket.create_connection(("127.0.0.1", port), timeout=SAFETY_S) as camera:
        camera.sendall(line(AT, "W6", "S6", "working") + b"\n")
        assert camera.makefile("rb").readline() == b'{"status":"accepted"}\n'
    assert owner.running()


def test_a_port_held_by_another_program_is_one_clear_line(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    fill(str(tmp_path / "factory.db"))
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        terminal = Terminal([FACTORY_TUI, "--db", "factory.db", "--port", str(port)], tmp_path)
        terminals.append(terminal)
        terminal.drain()
        status = terminal.wait()
    assert status is not None
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 2
    text = terminal.output.decode(errors="replace")
    assert f"factory-tui: port {port} on 127.0.0.1 is already in use" in text
    assert "Traceback" not in text


def test_demo_settings_never_use_the_production_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FACTORY_TUI_DB", "production.db")
    monkeypatch.setenv("FACTORY_TUI_PORT", "7878")
    settings = demo_settings(workers=9)
    assert settings.store.path == Path("factory-demo.db")
    assert settings.ingest.port == 7879
    assert [entry.id for entry in settings.roster_workers()][-3:] == ["W7", "W8", "W9"]
