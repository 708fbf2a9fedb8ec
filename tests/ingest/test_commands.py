"""`factory-tui serve` and `factory-tui send`, end to end."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.ingest.client import IngestClient
from factory_tui.ingest.listener import Listener
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import (
    ServeProcess,
    ThreadedListener,
    event_at,
    make_event,
    make_settings,
    read_until,
    run_cli,
    start_cli,
)

runner = CliRunner()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[ThreadedListener]:
    """A listener in a thread, so the synchronous CLI can talk to it."""
    with ThreadedListener(Listener(make_settings(tmp_path), batch_delay_s=0.005)) as running:
        yield running


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_send_file_reports_counts_and_rejections(live: ThreadedListener, tmp_path: Path) -> None:
    source = write_lines(
        tmp_path / "events.jsonl",
        [make_event(1), make_event(2), b"", b'{"oops": 1}', make_event(1), b"   ", b"[]"],
    )
    port = str(live.listener.port)
    result = runner.invoke(app, ["send", str(source), "--port", port])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "accepted 2, duplicate 1, rejected 2"
    assert lines[1].startswith("  line 4: oops: unknown field")
    assert lines[2] == "  line 7: line must be a JSON object"

    again = runner.invoke(app, ["send", "-", "--port", port], input=source.read_bytes())
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0] == "accepted 0, duplicate 3, rejected 2"


def test_send_shows_only_the_first_rejections(live: ThreadedListener, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "bad.jsonl", [b"{"] * 12)
    result = runner.invoke(app, ["send", str(source), "--port", str(live.listener.port)])
    assert result.exit_code == 0
    assert "rejected 12" in result.stdout
    assert "  line 5: invalid JSON" in result.stdout
    assert "line 6:" not in result.stdout
    assert "... and 7 more rejected lines" in result.stdout


def test_send_with_nobody_listening_fails(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed; nothing listens there
    source = write_lines(tmp_path / "one.jsonl", [make_event(1)])
    result = runner.invoke(app, ["send", str(source), "--port", str(port), "--retries", "0"])
    assert result.exit_code == 1
    assert "accepted 0, duplicate 0, rejected 0" in result.stdout
    assert "could not deliver from line 1 on" in result.stderr
    assert "Traceback" not in result.output


def test_send_missing_file_is_one_sentence() -> None:
    result = runner.invoke(app, ["send", "no-such-file.jsonl"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "factory-tui: cannot read no-such-file.jsonl: No such file or directory"
    )


def test_send_with_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ingest__token="tok")
    with ThreadedListener(Listener(settings, batch_delay_s=0.005)) as live:
        source = write_lines(tmp_path / "e.jsonl", [make_event(1)])
        port = str(live.listener.port)
        ok = runner.invoke(app, ["send", str(source), "--port", port, "--token", "tok"])
        assert ok.exit_code == 0, ok.output
        assert "accepted 1" in ok.stdout
        wrong = runner.invoke(app, ["send", str(source), "--port", port, "--token", "nope"])
        assert wrong.exit_code == 1
        assert "refused the connection: auth: wrong token" in wrong.stderr
        missing = runner.invoke(app, ["send", str(source), "--port", port])
        assert missing.exit_code == 1
        assert "auth: first line must be" in missing.stderr
        assert "retrying" not in missing.stderr  # a refused token is not retried


def test_serve_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--db", str(tmp_path / "x.db"), "--port", str(port)])
    assert result.exit_code == 2
    assert f"factory-tui: port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.output


def test_serve_refuses_public_host_without_token(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["serve", "--db", str(tmp_path / "x.db"), "--host", "0.0.0.0", "--port", "0"]
    )
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without an ingest token" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_serve_logs_counters_and_stops_cleanly_on_a_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    db = tmp_path / "s.db"
    server = await ServeProcess.start("--db", str(db), "--log-every", "0.2")
    async with IngestClient("127.0.0.1", server.port) as client:
        replies = await client.send([event_at(n) for n in range(100)] + [b"nope"])
    assert [r["status"] for r in replies] == ["accepted"] * 100 + ["rejected"]
    assert server.process.stderr is not None
    for _ in range(100):  # bounded: one counters line every 0.2 s
        line = await asyncio.wait_for(server.process.stderr.readline(), 30.0)
        if b"accepted 100, duplicate 0, rejected 1" in line:
            break
    else:
        pytest.fail("no counters line")
    server.process.send_signal(signum)
    rest = await server.stderr_rest()
    assert await asyncio.wait_for(server.process.wait(), 30.0) == 0
    assert "stopped: accepted 100, duplicate 0, rejected 1" in rest
    assert "Traceback" not in rest


async def test_serve_stopped_as_soon_as_it_listens_stops_cleanly(tmp_path: Path) -> None:
    """A script that waits for "listening on" may stop serve at once: that SIGTERM is the
    orderly stop too (serve set its handlers after starting everything, and a SIGTERM in
    between ended it by the signal's default action, exit -15)."""
    for run in range(3):
        server = await ServeProcess.start("--db", str(tmp_path / f"s{run}.db"))
        server.process.send_signal(signal.SIGTERM)
        rest = await server.stderr_rest()
        assert await asyncio.wait_for(server.process.wait(), 30.0) == 0, rest
        assert "stopped: accepted 0" in rest


@pytest.mark.long
async def test_send_retries_until_the_listener_is_back(tmp_path: Path) -> None:
    """The listener stops while `send` is between chunks of its input (a pipe we hold open, so
    it is still sending whenever the signal lands); the next chunk finds the connection gone,
    `send` retries until a new listener is on the port, and nothing is lost or stored twice."""
    db = tmp_path / "r.db"
    total, first_part = 3_000, 100
    lines = [event_at(n) for n in range(total)]
    first = await ServeProcess.start("--db", str(db), "--log-every", "0.1")
    port = first.port
    sender = await start_cli("send", "-", "--port", str(port), "--retries", "30", stdin=True)
    assert sender.stdin is not None
    assert sender.stderr is not None
    sender.stdin.write(b"\n".join(lines[:first_part]) + b"\n")
    await sender.stdin.drain()
    await read_until(first.process.stderr, b"accepted 100, duplicate 0, rejected 0")
    first.process.send_signal(signal.SIGTERM)
    assert "stopped: accepted 100, duplicate 0, rejected 0" in await first.stderr_rest()
    assert await asyncio.wait_for(first.process.wait(), 30.0) == 0
    # The rest goes to a listener that is not there: send says it retries, and does.
    sender.stdin.write(b"\n".join(lines[first_part:]) + b"\n")
    feeding = asyncio.create_task(sender.stdin.drain())  # the pipe fills while send waits
    line = await asyncio.wait_for(sender.stderr.readline(), 30.0)
    assert b"retrying in" in line, line
    second = await ServeProcess.start("--db", str(db), port=port)
    await asyncio.wait_for(feeding, 60.0)
    sender.stdin.close()
    out, err = await asyncio.wait_for(sender.communicate(), 60.0)
    assert sender.returncode == 0, err.decode()
    second.process.send_signal(signal.SIGTERM)
    rest = await second.stderr_rest()
    assert await asyncio.wait_for(second.process.wait(), 30.0) == 0
    # Every line answered once: the first 100 by the first listener, the rest by the second;
    # none of the acknowledged ones was sent again.
    assert out.decode().splitlines()[0] == f"accepted {total}, duplicate 0, rejected 0"
    assert f"stopped: accepted {total - first_part}, duplicate 0, rejected 0" in rest
    with SqliteStore.open(db, read_only=True) as store:
        assert store.count_events() == total


async def test_the_token_from_the_environment_is_used_by_serve_and_send(tmp_path: Path) -> None:
    token = {"FACTORY_TUI_TOKEN": "s3cret"}
    server = await ServeProcess.start("--db", str(tmp_path / "t.db"), env=token)
    port = str(server.port)
    try:
        source = write_lines(tmp_path / "one.jsonl", [make_event(1)])
        code, out, err = await run_cli("send", str(source), "--port", port, env=token)
        assert (code, out.splitlines()[0]) == (0, "accepted 1, duplicate 0, rejected 0"), err
        code, out, err = await run_cli("send", str(source), "--port", port)
        assert code == 1
        assert "auth: first line must be" in err
        # A flag beats the environment.
        code, out, err = await run_cli(
            "send", str(source), "--port", port, "--token", "s3cret",
            env={"FACTORY_TUI_TOKEN": "stale"},
        )  # fmt: skip
        assert (code, out.splitlines()[0]) == (0, "accepted 0, duplicate 1, rejected 0"), err
    finally:
        await server.kill()


async def test_a_public_bind_starts_with_a_token_and_serves_over_loopback(
    tmp_path: Path,
) -> None:
    """0.0.0.0 needs a token (without one: test_serve_refuses_public_host_without_token); with
    one from the environment it starts, and a camera on this machine reaches it via 127.0.0.1
    once it has authenticated."""
    server = await ServeProcess.start(
        "--db", str(tmp_path / "p.db"), "--host", "0.0.0.0", env={"FACTORY_TUI_TOKEN": "tok"}
    )
    try:
        async with IngestClient("127.0.0.1", server.port, token="tok") as camera:
            assert await camera.send([make_event(1)]) == [{"status": "accepted"}]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(make_event(2) + b"\n")
        reply = await asyncio.wait_for(reader.readline(), 30.0)
        assert json.loads(reply)["error"].startswith("auth: first line must be")
        assert await asyncio.wait_for(reader.read(), 30.0) == b""  # and it is closed
        writer.close()
    finally:
        server.process.send_signal(signal.SIGTERM)
        rest = await server.stderr_rest()
        await server.kill()
    assert "stopped: accepted 1, duplicate 0, rejected 1" in rest


async def test_serve_auto_register_accepts_unknown_ids_and_registers_them(
    tmp_path: Path, live: ThreadedListener
) -> None:
    unknown = make_event(1, worker_id="W77", workstation_id="S88")
    # Without --auto-register the roster decides.
    async with IngestClient("127.0.0.1", live.listener.port) as camera:
        (refused,) = await camera.send([unknown])
    assert refused["status"] == "rejected"
    assert "W77" in refused["error"]
    db = tmp_path / "a.db"
    server = await ServeProcess.start("--db", str(db), "--auto-register")
    try:
        async with IngestClient("127.0.0.1", server.port) as camera:
            replies = await camera.send([unknown, make_event(2, worker_id="W77")])
    finally:
        server.process.send_signal(signal.SIGTERM)
        await server.stderr_rest()
        await server.kill()
    assert replies == [{"status": "accepted"}] * 2
    with SqliteStore.open(db, read_only=True) as store:
        assert "W77" in store.workers()
        assert "S88" in store.workstations()
        assert store.count_events() == 2


def test_send_a_file_with_crlf_line_endings(live: ThreadedListener, tmp_path: Path) -> None:
    source = tmp_path / "windows.jsonl"
    source.write_bytes(
        make_event(1) + b"\r\n" + make_event(2) + b"\n" + b'{"oops": 1}\r\n' + make_event(1)
        + b"\r\n\r\n" + make_event(3) + b"\r\n"
    )  # fmt: skip
    result = runner.invoke(app, ["send", str(source), "--port", str(live.listener.port)])
    assert result.exit_code == 0, result.output
    summary, rejection = result.stdout.splitlines()
    assert summary == "accepted 3, duplicate 1, rejected 1"
    assert rejection.startswith("  line 3: oops: unknown field")
