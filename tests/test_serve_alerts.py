"""`serve` raises alerts with no console open: a camera that goes dark fires its command action,
its events coming back clear it, the alerts table holds both (a console opened beside `serve`
views them and raises nothing), and SIGTERM ends `serve` within a bounded time even with an
action hung; an alerts process that crashes is started again, and one whose `serve` is killed
ends by itself.

Real parts: `serve` in a subprocess on a SQLite file, a real TCP connection to its listener,
a real command action (a Python child writing what it got to a file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from factory_tui.config import load_settings
from factory_tui.console import headless
from factory_tui.console.headless import HeadlessAlerts
from factory_tui.console.pipeline import TickPipeline
from factory_tui.console.services import ConsoleServices
from factory_tui.engine.alerts import CAMERA_DARK
from factory_tui.ingest.protocol import parse_row
from factory_tui.models import iso_utc, now_us
from factory_tui.records import AlertRecord
from factory_tui.storage import open_store
from tests.demo_config import demo_config_text
from tests.ingest.conftest import ServeProcess

WAIT_S = 30.0
"""Upper bound of each wait (never reached when things work)."""
POLL_S = 0.05


def write_config(tmp_path: Path, command: list[str], *, timeout_s: float = 10.0) -> Path:
    """The demo floor (its shifts cover the day) with a 1 s dark threshold, a fast tick and
    one command action on camera_dark."""
    path = tmp_path / "alerts.toml"
    path.write_text(
        demo_config_text()
        + "[metrics]\nmax_gap_s = 1\ntick_s = 0.1\n"
        + '[[alerts.actions]]\non = ["camera_dark"]\n'
        + f"command = {json.dumps(command)}\ntimeout_s = {timeout_s}\n"
    )
    return path


def recorder(out: Path) -> list[str]:
    """A command action appending the alert it got on stdin (and its pid) to `out`."""
    script = (
        "import json, os, sys\n"
        "got = json.load(sys.stdin)\n"
        "got['pid'] = os.getpid()\n"
        f"open({str(out)!r}, 'a').write(json.dumps(got) + '\\n')\n"
    )
    return [sys.executable, "-c", script]


def event_now(worker: str = "W1") -> bytes:
    stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return (
        json.dumps(
            {
                "timestamp": stamp,
                "worker_id": worker,
                "workstation_id": "S1",
                "event_type": "working",
                "confidence": 0.9,
            }
        ).encode()
        + b"\n"
    )


async def send_now(port: int) -> None:
    """One event for W1 at this instant, answered `accepted`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(event_now())
        await writer.drain()
        reply = json.loads(await asyncio.wait_for(reader.readline(), WAIT_S))
        assert reply == {"status": "accepted"}, reply
    finally:
        writer.close()
        await writer.wait_closed()


def lines_of(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.endswith("}")]


async def wait_for_line(out: Path, phase: str) -> list[dict[str, Any]]:
    """The action's lines once one of them is `phase` (bounded)."""
    for _ in range(int(WAIT_S / POLL_S)):
        lines = lines_of(out)
        if any(line["event"] == phase for line in lines):
            return lines
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"no {phase} line from the action: {lines_of(out)}")


async def viewer_alerts(config: Path, db: Path, port: int) -> tuple[AlertRecord, ...]:
    """The active alerts a console on `port` shows after one tick; it must be a viewer."""
    settings = load_settings(config, environ={}, overrides={"store.path": db, "ingest.port": port})
    services = ConsoleServices(settings, role="console", feeder=None)
    try:
        pipeline = await services.start(now_us, None)
        assert services.role == "viewer"
        assert isinstance(pipeline, TickPipeline)
        assert pipeline.alerts.writer is None
        assert pipeline.alerts.actions is None
        result = await asyncio.to_thread(pipeline.tick)
    finally:
        await services.stop()
    assert result is not None
    return result.view.alerts.active


class Log:
    """serve's stderr, read as it comes (so a test can wait for a line)."""

    def __init__(self, serve: ServeProcess) -> None:
        self.lines: list[str] = []
        self._task = asyncio.create_task(self._read(serve))

    async def _read(self, serve: ServeProcess) -> None:
        assert serve.process.stderr is not None
        while line := await serve.process.stderr.readline():
            self.lines.append(line.decode(errors="replace"))

    def count(self, needle: str) -> int:
        return sum(needle in line for line in self.lines)

    async def wait_for(self, needle: str, count: int = 1) -> None:
        for _ in range(int(WAIT_S / POLL_S)):
            if self.count(needle) >= count:
                return
            await asyncio.sleep(POLL_S)
        raise AssertionError(f"{needle!r} x{count} never logged: {self.text()[-2000:]}")

    def text(self) -> str:
        return "".join(self.lines)

    async def end(self) -> str:
        await asyncio.wait_for(self._task, WAIT_S)
        return self.text()


def alerts_child(serve: ServeProcess) -> psutil.Process:
    """serve's alerts process: its one child (an action's command is the child's)."""
    (child,) = psutil.Process(serve.process.pid).children()
    assert "child_main" in " ".join(child.cmdline())
    return child


def ended(process: psutil.Process) -> bool:
    """Gone, or a zombie (its parent killed, nobody here reaps it)."""
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


async def stop(serve: ServeProcess, log: Log) -> tuple[int, str]:
    """SIGTERM to serve and its alerts process at once, as systemd's stop sends it to every
    process of the unit; then serve's exit status and its whole log (bounded waits)."""
    children = psutil.Process(serve.process.pid).children()  # none with --no-alerts
    serve.process.send_signal(signal.SIGTERM)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.send_signal(signal.SIGTERM)
    status = await asyncio.wait_for(serve.process.wait(), WAIT_S)
    return status, await log.end()


@pytest.mark.long
async def test_a_dark_camera_fires_the_action_raised_then_cleared(tmp_path: Path) -> None:
    out = tmp_path / "got.jsonl"
    db = tmp_path / "factory.db"
    config = write_config(tmp_path, recorder(out))
    serve = await ServeProcess.start("--config", str(config), "--db", str(db))
    log = Log(serve)
    try:
        await send_now(serve.port)
        # No more events: after max_gap_s the camera is dark and the action gets the raise.
        raised = await wait_for_line(out, "raised")
        assert raised[0]["event"] == "raised"
        # A console opened now finds serve on the port: it views the table, raises nothing.
        shown = await viewer_alerts(config, db, serve.port)
        assert [(alert.kind, alert.subject) for alert in shown] == [(CAMERA_DARK, "W1")]
        # Events resume (sent until a tick sees one fresh): the action gets the clear.
        for _ in range(int(WAIT_S / 0.1)):
            await send_now(serve.port)
            if any(line["event"] == "cleared" for line in lines_of(out)):
                break
            await asyncio.sleep(0.1)
        lines = lines_of(out)
        # The alerts process crashes: serve starts another, which evaluates again.
        await log.wait_for("alerts: evaluated every")
        crashed = alerts_child(serve)
        crashed.kill()
        await log.wait_for("starting it again")
        await log.wait_for("alerts: evaluated every", count=2)
        child = alerts_child(serve)
        assert child.pid != crashed.pid
    finally:
        serve.process.kill()  # kill -9: its alerts process must end by itself
        await serve.process.wait()
        # stderr ends once every process holding it has: the alerts process shares it.
        text = await log.end()
    for _ in range(int(WAIT_S / POLL_S)):  # its last steps come after closing its files
        if ended(child):
            break
        await asyncio.sleep(POLL_S)
    assert ended(child)
    assert len(lines) >= 2, f"no clear: {lines}\n{text}"
    first, second = lines[0], lines[1]
    assert (first["event"], second["event"]) == ("raised", "cleared")
    for line in (first, second):
        assert (line["kind"], line["subject"], line["site"]) == (CAMERA_DARK, "W1", "main")
    assert second["started_at"] == first["started_at"]
    assert second["cleared_at"] is not None
    assert "alert raised: camera_dark W1" in text
    assert "alert cleared: camera_dark W1" in text
    # The table a viewer reads has it, ended.
    store = open_store(db, read_only=True)
    try:
        alerts = [a for a in store.alerts() if (a.kind, a.subject) == (CAMERA_DARK, "W1")]
    finally:
        store.close()
    stored = [(iso_utc(a.started_us), a.cleared_us and iso_utc(a.cleared_us)) for a in alerts]
    assert (first["started_at"], second["cleared_at"]) in stored, stored


@pytest.mark.long
async def test_sigterm_does_not_wait_for_a_hung_action(tmp_path: Path) -> None:
    out = tmp_path / "got.jsonl"
    db = tmp_path / "factory.db"
    # Writes what it got, then hangs far past any wait of this test.
    hang = recorder(out)
    hang[-1] += "import time; time.sleep(600)\n"
    serve = await ServeProcess.start(
        "--config", str(write_config(tmp_path, hang, timeout_s=600)), "--db", str(db)
    )
    log = Log(serve)
    try:
        await send_now(serve.port)
        (line,) = await wait_for_line(out, "raised")
    finally:
        status, text = await stop(serve, log)
    hung = line["pid"]
    try:
        # serve is gone while its action still runs: the stop did not wait for it.
        os.kill(hung, 0)
        assert status == 0, text
        assert "alert actions: stopped with" in text
    finally:
        os.kill(hung, signal.SIGKILL)


async def test_a_webhook_token_sent_in_clear_is_warned_of_once(tmp_path: Path) -> None:
    """[alerts] webhook_token with an http:// webhook off loopback: serve says so once at
    start, naming that action (not the https:// one, nor the one on loopback)."""
    config = tmp_path / "alerts.toml"
    config.write_text(
        demo_config_text()
        + '[alerts]\nwebhook_token = "s3cret"\n'
        + "".join(
            f'[[alerts.actions]]\non = ["retrain_suggested"]\nwebhook = "{url}"\n'
            for url in (
                "http://192.0.2.10:8080/hook",
                "https://192.0.2.11/hook",
                "http://127.0.0.1:9/hook",
            )
        )
    )
    serve = await ServeProcess.start("--config", str(config), "--db", str(tmp_path / "f.db"))
    log = Log(serve)
    try:
        await log.wait_for("alerts: evaluated every")
    finally:
        status, text = await stop(serve, log)
    assert status == 0, text
    warnings = [line for line in text.splitlines() if "in clear text" in line]
    assert len(warnings) == 1, text
    assert "webhook http://192.0.2.10:8080/hook" in warnings[0]
    assert "https://" in warnings[0]
    assert "s3cret" not in text


def test_a_tick_too_far_behind_holds_the_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows not read yet would make their cameras look dark: such a tick evaluates nothing."""
    db = tmp_path / "factory.db"
    config = write_config(tmp_path, recorder(tmp_path / "got.jsonl"))
    settings = load_settings(config, environ={}, overrides={"store.path": db})
    seen_us = now_us()
    clock = [seen_us]
    alerts = HeadlessAlerts.open(settings, clock=lambda: clock[0])
    writer = open_store(db)
    try:
        alerts.tick()  # the warm start, on nothing
        writer.insert_rows([parse_row(event_now(f"W{n % 6 + 1}"), UTC, seen_us) for n in range(12)])
        clock[0] = seen_us + 60 * 1_000_000  # every camera silent a minute: dark if judged
        monkeypatch.setattr(headless, "CATCH_UP_ROWS", 5)
        with caplog.at_level(logging.INFO, logger="factory_tui"):
            alerts.tick()  # 12 rows behind: they are read in, nothing is judged
            assert writer.alerts() == []
            alerts.tick()  # caught up: judged
        dark = sorted(a.subject for a in writer.alerts() if a.kind == CAMERA_DARK)
        assert dark == ["W1", "W2", "W3", "W4", "W5", "W6"]
        assert "alerts: held while 12 stored rows are read in" in caplog.text
        assert "alerts: caught up, evaluated again" in caplog.text
    finally:
        alerts.stop()
        writer.close()
