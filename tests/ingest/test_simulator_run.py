"""`run_fleet` against a real listener on port 0: in process, and one TCP connection per camera."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from factory_tui.config import Settings, load_settings
from factory_tui.ingest.client import IngestClient
from factory_tui.ingest.listener import Listener
from factory_tui.ingest.simulator import (
    SUBMIT_BATCH,
    CameraFleet,
    FleetConfig,
    SimClock,
    SimSummary,
    Submit,
    run_fleet,
)
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore
from tests.demo_config import write_demo_config

US = 1_000_000
SHIFT = to_utc_us(datetime(2025, 3, 3, 6, 0, tzinfo=UTC))
BUSY = FleetConfig(duplicate_rate=0.05, late_rate=0.05, dark_per_hour=0.2)
"""More duplicates and late lines than the default, so a short run has plenty of both."""


def site(tmp_path: Path, **overrides: Any) -> Settings:
    """Demo roster, a database in tmp_path, a free port."""
    dotted = {"store.path": tmp_path / "factory.db", "ingest.port": 0}
    dotted.update(overrides)
    return load_settings(write_demo_config(tmp_path), environ={}, overrides=dotted)


def fleet_for(settings: Settings, seed: int = 4, config: FleetConfig = BUSY) -> CameraFleet:
    return CameraFleet(
        settings.roster_workers(), settings.roster_workstations(), seed=seed, config=config
    )


@pytest.fixture
async def listener(tmp_path: Path) -> AsyncIterator[Listener]:
    running = Listener(site(tmp_path))
    await running.start()
    yield running
    await running.stop()


def stored_hashes(path: Path) -> set[str]:
    with SqliteStore.open(path, read_only=True) as store:
        return {row.event_hash for row in store.iter_since(0)}


def check_consistent(summary: SimSummary, lines: Sequence[bytes], path: Path) -> None:
    """The summary adds up, and the database holds exactly the distinct events sent."""
    distinct = {parse_event(line).event_hash() for line in lines}
    assert summary.sent == len(lines)
    assert summary.accepted == len(distinct)
    assert summary.duplicate == summary.sent - summary.accepted
    assert summary.rejected == summary.unanswered == 0
    assert summary.failure is None
    assert stored_hashes(path) == distinct


async def test_a_fleet_run_stores_every_distinct_event_through_submit(
    listener: Listener,
) -> None:
    floor = fleet_for(listener.settings)
    clock = SimClock(SHIFT, speed=7200.0)  # two simulated hours per real second
    summary = await run_fleet(floor, clock, listener.submit, duration_s=1800, tick_s=0.05)
    assert summary.sim_start_us == SHIFT
    assert summary.sim_end_us == SHIFT + 1800 * US
    expected = fleet_for(listener.settings).emissions_between(SHIFT, SHIFT + 1800 * US)
    check_consistent(summary, [e.line for e in expected], listener.store_path)
    # Every deliberate re-send came back as a duplicate, and late lines went through.
    assert summary.resent == sum(e.kind == "duplicate" for e in expected) > 0
    assert summary.duplicate == summary.resent
    assert summary.late == sum(e.kind == "late" for e in expected) > 0
    stats = listener.stats()
    assert (stats.accepted, stats.duplicates) == (summary.accepted, summary.duplicate)


async def test_each_camera_can_send_over_its_own_tcp_connection(listener: Listener) -> None:
    floor = fleet_for(listener.settings, seed=5)
    clients = {
        camera.camera_id: IngestClient("127.0.0.1", listener.port) for camera in floor.cameras
    }
    used: set[str] = set()

    def submit_for(camera_id: str) -> Submit:
        client = clients[camera_id]

        async def send(lines: Sequence[bytes]) -> list[dict[str, Any]]:
            used.add(camera_id)
            return await client.send(lines)

        return send

    await asyncio.gather(*(client.connect() for client in clients.values()))
    try:
        assert listener.stats().connections == len(clients)
        summary = await run_fleet(
            floor, SimClock(SHIFT, 7200.0), None, submit_for=submit_for, duration_s=900
        )
    finally:
        await asyncio.gather(*(client.close() for client in clients.values()))
    assert used == set(clients), "every camera used its own connection"
    expected = fleet_for(listener.settings, seed=5).events_between(SHIFT, SHIFT + 900 * US)
    check_consistent(summary, expected, listener.store_path)


async def test_history_is_backfilled_in_bounded_batches(listener: Listener) -> None:
    """`from_us` before the clock's now: the history goes out first, never in one huge batch."""
    floor = fleet_for(listener.settings, seed=6)
    biggest = 0

    async def submit(lines: Sequence[bytes]) -> list[dict[str, Any]]:
        nonlocal biggest
        biggest = max(biggest, len(lines))
        return await listener.submit(lines)

    # A paused clock at 09:00: the run covers 06:00-09:00 from history alone, then ends.
    clock = SimClock(SHIFT + 3 * 3600 * US, speed=0.0)
    summary = await run_fleet(floor, clock, submit, from_us=SHIFT, duration_s=3 * 3600)
    expected = fleet_for(listener.settings, seed=6).events_between(SHIFT, SHIFT + 3 * 3600 * US)
    check_consistent(summary, expected, listener.store_path)
    assert 0 < biggest <= SUBMIT_BATCH
    # Ten-minute steps for six cameras: far below the whole three hours at once.
    assert biggest < len(expected) / 6


async def test_setting_stop_ends_an_open_ended_run_with_every_line_answered(
    listener: Listener,
) -> None:
    floor = fleet_for(listener.settings, seed=7)
    stop = asyncio.Event()
    calls = 0

    async def submit(lines: Sequence[bytes]) -> list[dict[str, Any]]:
        nonlocal calls
        calls += 1
        replies = await listener.submit(lines)
        if calls >= 3:
            stop.set()
        return replies

    summary = await run_fleet(floor, SimClock(SHIFT, 600.0), submit, stop=stop, tick_s=0.05)
    assert calls >= 3
    assert summary.failure is None
    assert summary.sent == summary.accepted + summary.duplicate > 0
    assert summary.unanswered == 0
    with SqliteStore.open(listener.store_path, read_only=True) as store:
        assert store.count_events() == summary.accepted


async def test_a_listener_that_goes_away_ends_the_run_with_a_summary(tmp_path: Path) -> None:
    listener = Listener(site(tmp_path))
    await listener.start()
    floor = fleet_for(listener.settings, seed=8)
    clients = {
        camera.camera_id: IngestClient("127.0.0.1", listener.port) for camera in floor.cameras
    }
    await asyncio.gather(*(client.connect() for client in clients.values()))
    calls = 0

    def submit_for(camera_id: str) -> Submit:
        async def send(lines: Sequence[bytes]) -> list[dict[str, Any]]:
            nonlocal calls
            calls += 1
            if calls == 4:
                await listener.stop()
            return await clients[camera_id].send(lines)

        return send

    try:
        summary = await asyncio.wait_for(
            run_fleet(floor, SimClock(SHIFT, 3600.0), None, submit_for=submit_for, tick_s=0.05),
            timeout=30,
        )
    finally:
        await asyncio.gather(*(client.close() for client in clients.values()))
    assert summary.failure is not None
    assert "connect" in summary.failure or "closed" in summary.failure
    assert summary.sent == summary.accepted + summary.duplicate + summary.unanswered
    assert summary.unanswered > 0
    assert any("stopped early" in line for line in summary.lines())


async def test_a_rate_paces_the_lines_and_runs_simulated_time_as_fast_as_needed(
    listener: Listener,
) -> None:
    floor = fleet_for(listener.settings, seed=9)
    stop = asyncio.Event()
    rate = 400.0
    asyncio.get_running_loop().call_later(0.6, stop.set)
    summary = await run_fleet(floor, SimClock(SHIFT, 1.0), listener.submit, stop=stop, rate=rate)
    assert summary.sent > 0
    # Pacing never runs ahead of the rate (plus at most one second's worth after a stall).
    assert summary.sent <= rate * summary.elapsed_s + rate
    # Six cameras send a line every ~10 s between them: 400/s needs simulated hours per second.
    assert summary.sim_end_us - SHIFT > 5 * 60 * US
    # What went out is exactly the start of the fleet's lines from the clock's start.
    expected = fleet_for(listener.settings, seed=9).events_between(
        SHIFT, summary.sim_end_us + 3600 * US
    )[: summary.sent]
    check_consistent(summary, expected, listener.store_path)


async def test_run_fleet_refuses_impossible_arguments(listener: Listener) -> None:
    floor = fleet_for(listener.settings)
    clock = SimClock(SHIFT, 1.0)
    with pytest.raises(ValueError, match="rate"):
        await run_fleet(floor, clock, listener.submit, rate=0)
    with pytest.raises(ValueError, match="tick_s"):
        await run_fleet(floor, clock, listener.submit, tick_s=0)
    with pytest.raises(ValueError, match="submit"):
        await run_fleet(floor, clock, None, duration_s=1)


def test_a_summary_reads_as_plain_lines() -> None:
    summary = SimSummary(
        sent=120,
        accepted=100,
        duplicate=2,
        rejected=18,
        unanswered=0,
        late=3,
        resent=2,
        elapsed_s=2.0,
        sim_start_us=SHIFT,
        sim_end_us=SHIFT + 2 * 3600 * US,
        errors=("worker_id: 'W9' is not in the roster",),
    )
    text = "\n".join(summary.lines())
    assert "sent 120 lines in 2.0 s (60/s), covering 2.00 h of simulated time" in text
    assert "accepted 100, duplicate 2, rejected 18" in text
    assert "2 re-sent duplicates, 3 late lines" in text
    assert "rejected: worker_id: 'W9' is not in the roster" in text
    assert "stopped early" not in text
