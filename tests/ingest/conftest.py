"""Fixtures and helpers for the ingest tests: valid events, a live listener, raw sockets.

Test modules import the helpers as `from tests.ingest.conftest import ...` (importlib mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from factory_tui.config import DEFAULT_CONFIG_NAME, Settings, load_settings
from factory_tui.ingest.listener import Listener
from tests.demo_config import write_demo_config

REPLY_TIMEOUT_S = 10.0


def make_event(n: int = 0, **fields: Any) -> bytes:
    """A valid wire line (demo roster), distinct per `n`, without its newline."""
    event: dict[str, Any] = {
        "timestamp": f"2024-05-01T10:00:00.{n:06d}Z",
        "worker_id": "W1",
        "workstation_id": "S1",
        "event_type": "working",
        "confidence": 0.9,
    }
    event.update(fields)
    return json.dumps(event).encode()


@pytest.fixture(autouse=True)
def _demo_config_here() -> None:
    """A ./factory.toml with the demo roster and shifts, for the commands these tests start
    (without a config file there is no roster, and every id would be unknown)."""
    write_demo_config(Path.cwd(), DEFAULT_CONFIG_NAME)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Demo-roster settings on a database in tmp_path, listening on a free port."""
    dotted = {"store.path": tmp_path / "factory.db", "ingest.port": 0}
    dotted.update({key.replace("__", "."): value for key, value in overrides.items()})
    return load_settings(write_demo_config(tmp_path), environ={}, overrides=dotted)


class Peer:
    """A raw TCP connection to the listener, for tests that need exact bytes on the wire."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def replies(self, count: int) -> list[dict[str, Any]]:
        """Exactly `count` reply lines, waiting at most REPLY_TIMEOUT_S for each."""
        out: list[dict[str, Any]] = []
        for _ in range(count):
            line = await asyncio.wait_for(self.reader.readline(), REPLY_TIMEOUT_S)
            assert line.endswith(b"\n"), f"connection ended after {len(out)} replies: {line!r}"
            out.append(json.loads(line))
        return out

    async def at_eof(self) -> bool:
        """True when the listener closed the connection with nothing more to say."""
        return await asyncio.wait_for(self.reader.read(), REPLY_TIMEOUT_S) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
async def start_listener(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Any]]:
    """A factory: `await start_listener(**settings_overrides, **listener_kwargs)`.

    Every listener started is stopped at the end of the test.
    """
    started: list[Listener] = []
    listener_keys = {
        "batch_max_lines",
        "batch_delay_s",
        "conn_pending_bytes",
        "total_pending_bytes",
        "linger_s",
        "one_way_after_s",
        "merge_max_lines",
    }

    async def start(**options: Any) -> Listener:
        kwargs = {key: options.pop(key) for key in list(options) if key in listener_keys}
        # Closing connections linger briefly here: tests stop listeners with peers still open.
        kwargs.setdefault("linger_s", 0.2)
        listener = Listener(make_settings(tmp_path, **options), **kwargs)
        await listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        await listener.stop()


@pytest.fixture
async def listener(start_listener: Callable[..., Any]) -> Listener:
    """A running listener with default limits on the demo roster."""
    started: Listener = await start_listener()
    return started


@pytest.fixture
async def peer(listener: Listener) -> AsyncIterator[Peer]:
    """A raw connection to `listener`."""
    connection = await Peer.open(listener.port)
    yield connection
    await connection.close()


async def wait_until(condition: Callable[[], bool], timeout_s: float = REPLY_TIMEOUT_S) -> None:
    """Poll a condition the listener exposes no event for, a bounded number of times."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def event_at(n: int) -> bytes:
    """A valid wire line whose timestamp is `n` ms after a fixed start: unique for any n."""
    seconds, millis = divmod(n, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f'{{"timestamp":"2024-05-01T{hours % 24:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z",'
        f'"worker_id":"W{n % 6 + 1}","workstation_id":"S{n % 6 + 1}",'
        f'"event_type":"working","confidence":0.9}}'
    ).encode()


async def start_cli(
    *args: str, env: dict[str, str] | None = None, stdin: bool = False
) -> asyncio.subprocess.Process:
    """`python -m factory_tui ARGS` with FACTORY_TUI_* variables only from `env`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "factory_tui",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=inherited | (env or {}),
    )


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI to its end: (exit code, stdout, stderr)."""
    process = await start_cli(*args, env=env)
    out, err = await asyncio.wait_for(process.communicate(), 60.0)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def read_until(stream: asyncio.StreamReader | None, needle: bytes) -> None:
    """Read lines until one holds `needle` (bounded: serve logs a counters line every tick)."""
    assert stream is not None
    seen = b""
    for _ in range(1_000):
        line = await asyncio.wait_for(stream.readline(), 30.0)
        seen += line
        if needle in line:
            return
        if not line:
            break
    raise AssertionError(f"{needle!r} never came: {seen.decode(errors='replace')[-2000:]}")


class ServeProcess:
    """`python -m factory_tui serve` as a child process, with the port it printed."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    async def start(
        cls, *args: str, port: int = 0, env: dict[str, str] | None = None
    ) -> ServeProcess:
        """Start serve with `args` (and `env` added to a FACTORY_TUI_-free environment)."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "factory_tui",
            "serve",
            "--port",
            str(port),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=inherited | (env or {}),
        )
        assert process.stderr is not None
        seen = b""
        for _ in range(50):  # bounded: a handful of log lines come before "listening on"
            line = await asyncio.wait_for(process.stderr.readline(), 30.0)
            seen += line
            found = re.search(rb"listening on \S+:(\d+)", line)
            if found:
                return cls(process, int(found.group(1)))
            if not line:
                break
        process.kill()
        await process.wait()
        raise AssertionError(f"serve did not start: {seen.decode(errors='replace')}")

    async def stderr_rest(self) -> str:
        """Everything serve writes to stderr until it exits."""
        assert self.process.stderr is not None
        data = await asyncio.wait_for(self.process.stderr.read(), 30.0)
        return data.decode(errors="replace")

    async def kill(self) -> None:
        """Kill serve unless it has ended, and wait for it.

        A serve that has just exited must not be sent a signal: `Popen.send_signal` polls
        first, reaps it there, and asyncio's child watcher then finds no child and reports
        exit code 255 (seen as a flaky 'assert 255 == 0' after a clean SIGTERM stop)."""
        if self.process.returncode is None and not _has_ended(self.process.pid):
            self.process.kill()
        await self.process.wait()


def _has_ended(pid: int) -> bool:
    """The child has exited (a zombie not reaped yet): asked without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class ThreadedListener:
    """A listener running in its own event loop thread, so the test can use plain sockets."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedListener:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.listener.start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()
