"""Retention (`[store] keep_days`): old events go in small transactions, recent ones stay, and
nothing goes before it is forwarded when forwarding is on; the background sweep stops cleanly.

Every test runs on a fresh SQLite file and on a fresh schema of a real PostgreSQL server
(`store_opener` in conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from pathlib import Path

import pytest

from factory_tui.config import load_settings
from factory_tui.console.services import ConsoleServices
from factory_tui.forwarding import cursor_key
from factory_tui.models import WireEvent, iso_utc, now_us, parse_event
from factory_tui.retention import US_PER_DAY, BackgroundRetention, Retention, _days
from factory_tui.storage import Store, StoreError, open_store
from tests.conftest import StoreOpener
from tests.ingest.conftest import ServeProcess, read_until

NOW = 1_772_445_600_000_000  # 2026-03-02 10:00 UTC
CENTRAL = "postgresql://factory:secret@central.example:5432/factory"
WAIT_S = 30.0
"""The bound on every wait: generous, the waits themselves are event-driven."""


def event(days_ago: float, worker: str = "W1") -> WireEvent:
    """A `working` event `days_ago` days before NOW."""
    data = {
        "timestamp": iso_utc(NOW - round(days_ago * US_PER_DAY)),
        "worker_id": worker,
        "workstation_id": "S1",
        "event_type": "working",
        "confidence": 0.9,
    }
    return parse_event(json.dumps(data))


def ages(store: Store) -> list[float]:
    """How many days before NOW each of the store's events is, oldest first."""
    return [(NOW - row.ts_us) / US_PER_DAY for row in store.iter_range()]


def retention(keep_days: float, forward_target: str | None = None) -> Retention:
    """A retention on a fixed clock, deleting two events per transaction, with no pause."""
    return Retention(
        keep_days, forward_target=forward_target, clock=lambda: NOW, batch=2, pause_s=0.0
    )


def test_old_events_go_in_small_transactions_and_recent_ones_stay(any_store: Store) -> None:
    any_store.insert_batch([event(days) for days in (9, 8, 7.5, 6, 3.1, 2.9, 1, 0)])
    sweep = retention(3).sweep(any_store)
    assert sweep.deleted == {"main": 5}  # three transactions of at most two
    assert sweep.before_us == NOW - 3 * US_PER_DAY
    assert ages(any_store) == [2.9, 1, 0]
    assert retention(3).sweep(any_store).deleted == {}
    assert "deleted 5 of site main (timestamps before 2026-02-27T10:00:00" in sweep.describe()


def test_with_forwarding_on_nothing_goes_before_it_is_forwarded(any_store: Store) -> None:
    any_store.insert_batch([event(days) for days in (9, 8, 7, 6)])
    forwarding = retention(3, forward_target=CENTRAL)
    assert forwarding.sweep(any_store).deleted == {}  # nothing forwarded yet
    second = any_store.read_since(0)[1].id
    any_store.set_forward_cursor(cursor_key(CENTRAL, "main"), second, NOW)
    assert forwarding.sweep(any_store).deleted == {"main": 2}
    assert ages(any_store) == [7, 6]
    # Another target's cursor says nothing about ours.
    any_store.set_forward_cursor(cursor_key("other.db", "main"), 10**9, NOW)
    assert forwarding.sweep(any_store).deleted == {}
    any_store.set_forward_cursor(cursor_key(CENTRAL, "main"), any_store.max_event_id(), NOW)
    assert forwarding.sweep(any_store).deleted == {"main": 2}
    assert any_store.count_events() == 0


def test_every_site_is_swept_each_up_to_its_own_forward_cursor(any_store: Store) -> None:
    pune = any_store.scoped("pune")
    pune.describe_site("Pune", {}, NOW)
    any_store.insert_batch([event(5), event(4)])
    pune.insert_batch([event(5), event(4), event(0)])
    last_of_pune = pune.max_event_id()
    pune.set_forward_cursor(cursor_key(CENTRAL, "pune"), last_of_pune, NOW)
    assert retention(1, forward_target=CENTRAL).sweep(any_store).deleted == {"pune": 2}
    assert ages(any_store) == [5, 4]  # main's events are not forwarded yet
    assert ages(pune) == [0]
    assert retention(1).sweep(any_store).deleted == {"main": 2}


def test_a_stop_ends_a_sweep_between_two_transactions(any_store: Store) -> None:
    any_store.insert_batch([event(9 - n / 10) for n in range(6)])
    stop = threading.Event()
    stop.set()
    assert retention(1).sweep(any_store, stop).deleted == {}
    assert len(ages(any_store)) == 6


def test_the_settings_name_the_retention_and_its_forward_target() -> None:
    assert Retention.from_settings(load_settings(None, environ={})) is None
    settings = load_settings(
        None, environ={}, overrides={"store.keep_days": 30, "forward.url": CENTRAL}
    )
    configured = Retention.from_settings(settings)
    assert configured is not None
    assert (configured.keep_days, configured.forward_target) == (30, CENTRAL)
    with pytest.raises(ValueError, match="keep_days must be above 0"):
        Retention(0)


def sweep_in_background(background: BackgroundRetention, *, sweeps: int) -> None:
    """Start the thread, let it end `sweeps` sweeps, stop it; it must be gone then."""
    background.start()
    assert background.wait_for_sweeps(sweeps, WAIT_S)
    background.stop()
    assert not background.running


def test_the_background_sweep_logs_what_it_deleted_and_stops_cleanly(
    store_opener: StoreOpener, caplog: pytest.LogCaptureFixture
) -> None:
    with store_opener() as store:
        store.insert_batch([event(days) for days in (40, 31, 29, 1)])
    opened: list[str] = []

    def open_writer() -> Store:
        opened.append(threading.current_thread().name)
        return store_opener()

    # An interval far longer than the test: the sweep at start is the only one, and stop()
    # must not wait for the next.
    background = BackgroundRetention(retention(30), open_writer, interval_s=3600)
    with caplog.at_level(logging.INFO, logger="factory_tui.retention"):
        sweep_in_background(background, sweeps=1)
    assert background.deleted == 2
    assert opened == ["factory-tui retention"]  # its own connection, opened in its thread
    assert "deleted 2 of site main" in caplog.text
    with store_opener(read_only=True) as store:
        assert ages(store) == [29, 1]


def test_the_background_sweep_survives_a_database_it_cannot_open(
    store_opener: StoreOpener, caplog: pytest.LogCaptureFixture
) -> None:
    with store_opener() as store:
        store.insert_batch([event(40)])
    attempts: list[int] = []

    def open_writer() -> Store:
        attempts.append(1)
        if len(attempts) == 1:
            raise StoreError("cannot open database x.db: disk I/O error")
        return store_opener()

    background = BackgroundRetention(retention(30), open_writer, interval_s=0.01)
    with caplog.at_level(logging.WARNING, logger="factory_tui.retention"):
        sweep_in_background(background, sweeps=2)
    assert background.deleted == 1
    assert "retention: cannot open database x.db: disk I/O error; trying again" in caplog.text


# --- in `serve` and in the console that owns the listener ------------------------------------


def real_event(days_ago: float) -> WireEvent:
    """A `working` event `days_ago` days before the wall clock (serve and the console sweep
    by it)."""
    data = {
        "timestamp": iso_utc(now_us() - round(days_ago * US_PER_DAY)),
        "worker_id": "W1",
        "workstation_id": "S1",
        "event_type": "working",
        "confidence": 0.9,
    }
    return parse_event(json.dumps(data))


async def test_the_console_owning_the_listener_sweeps_and_stops_it_on_quit(
    db_location: str,
) -> None:
    with open_store(db_location) as store:
        store.insert_batch([real_event(400), real_event(40), real_event(0.01)])
    overrides = {"store.path": db_location, "store.keep_days": 30, "ingest.port": 0}
    settings = load_settings(None, environ={}, overrides=overrides)
    services = ConsoleServices(settings, role="console", feeder=None)
    await services.start(now_us, None)
    try:
        background = services.retention
        assert background is not None
        assert await asyncio.to_thread(background.wait_for_sweeps, 1, WAIT_S)
        assert background.deleted == 2
    finally:
        await services.stop()
    assert not background.running
    with open_store(db_location, read_only=True) as store:
        assert store.count_events() == 1


async def test_a_viewer_does_not_sweep(tmp_path: Path) -> None:
    overrides = {"store.path": tmp_path / "f.db", "store.keep_days": 30, "ingest.port": 0}
    settings = load_settings(None, environ={}, overrides=overrides)
    with open_store(settings.store.location) as store:
        store.insert_batch([real_event(400)])
    services = ConsoleServices(settings, role="viewer", feeder=None)
    await services.start(now_us, None)
    await services.stop()
    assert services.retention is None


async def test_serve_sweeps_in_the_background_logs_it_and_stops_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "site.db"
    with open_store(db) as store:
        store.insert_batch([real_event(400), real_event(31), real_event(29)])
    serve = await ServeProcess.start("--db", str(db), env={"FACTORY_TUI_STORE_KEEP_DAYS": "30"})
    try:
        await read_until(serve.process.stderr, b"retention: deleted 2 of site main")
    finally:
        serve.process.send_signal(signal.SIGTERM)
        rest = await serve.stderr_rest()
        await serve.kill()
    assert serve.process.returncode == 0, rest
    with open_store(db, read_only=True) as store:
        assert store.count_events() == 1


def test_the_start_line_counts_days_as_people_do() -> None:
    assert _days(1) == "1 day"
    assert _days(30) == "30 days"
    assert _days(0.5) == "0.5 days"
