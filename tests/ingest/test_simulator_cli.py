"""`factory-tui simulate`: into a file, and over TCP against a real listener (a child process)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.commands.simulate import parse_duration
from factory_tui.config import Settings, load_settings
from factory_tui.ingest.listener import Listener
from factory_tui.ingest.simulator import CameraFleet, extend_roster, fleet_config_for
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import wait_until

runner = CliRunner()
US = 1_000_000
START = "2025-03-03T06:00:00Z"
START_US = to_utc_us(datetime(2025, 3, 3, 6, 0, tzinfo=UTC))
WAIT_S = 60.0
"""Longest wait for a child process (the machine is shared and may be slow)."""


def demo_settings(**overrides: Any) -> Settings:
    return load_settings(None, environ={}, overrides=overrides)


def expected_lines(
    seed: int, start_us: int, span_s: float, workers: int = 6, stations: int = 6, **config: Any
) -> list[bytes]:
    """What `simulate` should produce for the demo roster, built from the library directly."""
    settings = demo_settings()
    floor = CameraFleet(
        extend_roster(settings.roster_workers(), workers, "W"),
        extend_roster(settings.roster_workstations(), stations, "S"),
        seed=seed,
        config=fleet_config_for(settings, start_us, **config),
    )
    return floor.events_between(start_us, start_us + int(span_s * US))


# --- --to-file ------------------------------------------------------------------------------


def test_to_file_writes_the_span_deterministically(tmp_path: Path) -> None:
    out = tmp_path / "shift.jsonl"
    args = ["simulate", "--to-file", str(out), "--duration", "2h", "--start", START]
    result = runner.invoke(app, [*args, "--workers", "4", "--stations", "3", "--seed", "7"])
    assert result.exit_code == 0, result.output
    written = out.read_bytes().splitlines()
    assert written == expected_lines(7, START_US, 7200, workers=4, stations=3)
    assert f"wrote {len(written)} lines (4 cameras, {START} to 2025-03-03T08:00:00Z)" in (
        result.stdout
    )
    first = out.read_bytes()
    again = runner.invoke(app, [*args, "--workers", "4", "--stations", "3", "--seed", "7"])
    assert again.exit_code == 0
    assert out.read_bytes() == first
    other = runner.invoke(app, [*args, "--workers", "4", "--stations", "3", "--seed", "8"])
    assert other.exit_code == 0
    assert out.read_bytes() != first


def test_to_file_defaults_to_one_shift_from_the_current_shift_start(tmp_path: Path) -> None:
    out = tmp_path / "now.jsonl"
    # The demo shifts are 06-14, 14-22, 22-06 UTC; a shift may change while the command runs.
    before = demo_settings().current_window(datetime.now(UTC))[0]
    result = runner.invoke(app, ["simulate", "--to-file", str(out), "--workers", "2"])
    after = demo_settings().current_window(datetime.now(UTC))[0]
    assert result.exit_code == 0, result.output
    stamps = [parse_event(line).ts_us for line in out.read_bytes().splitlines()]
    start = min(stamps)
    assert start in {to_utc_us(before), to_utc_us(after)}
    assert max(stamps) < start + 8 * 3600 * US
    assert max(stamps) - start > 7 * 3600 * US


def test_workers_and_stations_beyond_the_roster_get_generated_ids(tmp_path: Path) -> None:
    out = tmp_path / "big.jsonl"
    result = runner.invoke(
        app,
        ["simulate", "-o", str(out), "-d", "30m", "--start", START, "-w", "9", "-s", "8"],
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert {e["worker_id"] for e in events} == {f"W{n}" for n in range(1, 10)}
    assert {"S7", "S8"} <= {e["workstation_id"] for e in events}


def test_site_names_the_generated_roster_and_stamps_nothing(tmp_path: Path) -> None:
    out = tmp_path / "pune.jsonl"
    args = ["simulate", "-o", str(out), "-d", "30m", "--start", START, "-w", "8", "-s", "8"]
    result = runner.invoke(app, [*args, "--site", "pune"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_bytes().splitlines()]
    # The configured roster (the demo's W1..W6) keeps its ids; the cameras beyond it are named
    # after the site.
    roster = {f"W{n}" for n in range(1, 7)}
    assert {e["worker_id"] for e in events} == roster | {"pune-W1", "pune-W2"}
    assert {"pune-S1", "pune-S2"} <= {e["workstation_id"] for e in events}
    assert not any("site" in key for event in events for key in event)


def test_rates_of_duplicates_late_lines_and_dark_cameras_are_options(tmp_path: Path) -> None:
    out = tmp_path / "rough.jsonl"
    result = runner.invoke(
        app,
        ["simulate", "-o", str(out), "-d", "8h", "--start", START, "-w", "20", "--seed", "3"]
        + ["--duplicates", "0.1", "--late", "0", "--dark", "0"],
    )
    assert result.exit_code == 0, result.output
    lines = out.read_bytes().splitlines()
    assert lines == expected_lines(
        3, START_US, 8 * 3600, workers=20, duplicate_rate=0.1, late_rate=0, dark_per_hour=0
    )
    hashes = [parse_event(line).event_hash() for line in lines]
    repeats = len(hashes) - len(set(hashes))
    assert repeats / len(set(hashes)) == pytest.approx(0.1, rel=0.15)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("8h", 28800), ("1h30m", 5400), ("2d", 172800), ("45", 45)]
    + [("1.5h", 5400), (" 2H ", 7200), ("1h 30m", 5400)],
)
def test_durations_read_like_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "0s", "-5m", "h", "5m5"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "soon"], "--duration: expected a time like 90s"),
        (["--start", "yesterday"], "--start: expected an ISO 8601 date-time"),
        (["--to-file", "x.jsonl", "--rate", "100"], "cannot be combined with --to-file"),
        (["--to-file", "missing/x.jsonl", "-d", "1m"], "cannot write missing/x.jsonl"),
        (["--site", "north plant"], "--site 'north plant': use 1-32 letters"),
    ],
)
def test_mistakes_get_one_clear_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_nobody_listening_is_one_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed; nothing listens there
    result = runner.invoke(app, ["simulate", "--port", str(port), "--duration", "1m"])
    assert result.exit_code == 1
    assert f"cannot connect to 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output


# --- over TCP, as a child process ----------------------------------------------------------


@pytest.fixture
async def listener(tmp_path: Path) -> AsyncIterator[Listener]:
    running = Listener(
        load_settings(
            None,
            environ={},
            overrides={"store.path": tmp_path / "factory.db", "ingest.port": 0},
        )
    )
    await running.start()
    yield running
    await running.stop()


async def start_simulate(*args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "factory_tui",
        "simulate",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def counts(stdout: str) -> dict[str, int]:
    found = re.search(r"accepted (\d+), duplicate (\d+), rejected (\d+)", stdout)
    sent = re.search(r"sent (\d+) lines", stdout)
    assert found is not None, stdout
    assert sent is not None, stdout
    accepted, duplicate, rejected = (int(n) for n in found.groups())
    return {
        "sent": int(sent.group(1)),
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
    }


def stored_hashes(listener: Listener) -> set[str]:
    with SqliteStore.open(listener.store_path, read_only=True) as store:
        return {row.event_hash for row in store.iter_since(0)}


async def test_simulate_drives_a_listener_over_tcp_one_connection_per_camera(
    listener: Listener,
) -> None:
    process = await start_simulate(
        "--port", str(listener.port), "--speed", "3600", "--duration", "20m", "--seed", "3",
        "--start", START,
    )  # fmt: skip
    code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "over 6 connections" in stderr
    summary = counts(stdout)
    expected = expected_lines(3, START_US, 20 * 60)
    distinct = {parse_event(line).event_hash() for line in expected}
    assert summary == {
        "sent": len(expected),
        "accepted": len(distinct),
        "duplicate": len(expected) - len(distinct),
        "rejected": 0,
    }
    assert stored_hashes(listener) == distinct
    assert listener.stats().accepted == len(distinct)


async def test_ctrl_c_stops_cleanly_with_a_summary(listener: Listener) -> None:
    process = await start_simulate(
        "--port", str(listener.port), "--speed", "120", "--start", START
    )  # fmt: skip
    assert process.stderr is not None
    banner = await asyncio.wait_for(process.stderr.readline(), WAIT_S)
    assert b"Ctrl-C stops" in banner
    await wait_until(lambda: listener.stats().accepted > 0, WAIT_S)  # the first committed lines
    process.send_signal(signal.SIGINT)
    code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "stopping" in stderr
    assert "Traceback" not in stderr
    summary = counts(stdout)
    assert summary["sent"] == summary["accepted"] + summary["duplicate"] > 0
    assert len(stored_hashes(listener)) == summary["accepted"]


async def test_unknown_ids_are_flagged_before_and_after_the_run(listener: Listener) -> None:
    process = await start_simulate(
        "--port", str(listener.port), "--speed", "3600", "--duration", "5m", "--workers", "8",
        "--start", START,
    )  # fmt: skip
    code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "note: W7, W8 are not in this config's roster" in stderr
    assert "hint: the listener rejects ids it does not know" in stderr
    assert counts(stdout)["rejected"] > 0
    assert "rejected: worker_id: 'W7' is not in the roster" in stdout


async def test_a_token_is_sent_and_a_wrong_one_is_one_clear_error(tmp_path: Path) -> None:
    listener = Listener(
        load_settings(
            None,
            environ={},
            overrides={
                "store.path": tmp_path / "factory.db",
                "ingest.port": 0,
                "ingest.token": "s3cret",
            },
        )
    )
    await listener.start()
    try:
        port = str(listener.port)
        good = await start_simulate(
            "-p", port, "--token", "s3cret", "--speed", "3600", "-d", "2m", "--start", START
        )
        code, stdout, stderr = await finish(good)
        assert code == 0, stderr
        assert counts(stdout)["accepted"] > 0
        bad = await start_simulate("-p", port, "--token", "guess", "-d", "2m")
        code, stdout, stderr = await finish(bad)
        assert code == 1
        assert "refused the connection: auth: wrong token" in stderr
        assert "Traceback" not in stderr
    finally:
        await listener.stop()


async def test_rate_paces_a_load_test_for_the_given_real_time(listener: Listener) -> None:
    process = await start_simulate(
        "--port", str(listener.port), "--rate", "300", "--duration", "1s", "--start", START
    )  # fmt: skip
    code, stdout, stderr = await finish(process)
    assert code == 0, stderr
    assert "about 300 lines/s" in stderr
    summary = counts(stdout)
    elapsed = float(re.search(r"lines in ([\d.]+) s", stdout).group(1))  # type: ignore[union-attr]
    assert 0 < summary["sent"] <= 300 * elapsed + 300
    assert summary["sent"] == summary["accepted"] + summary["duplicate"]
    assert 0.9 <= elapsed < WAIT_S
