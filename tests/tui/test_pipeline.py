"""The console's tick without Textual: `TickPipeline` on a real SQLite file, and `TickLoop`.

These are the tick's own tests (warm start, a late event, a view's data, the viewer's rate);
the pilot tests in test_console.py check that the screen shows what comes out of here.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.console.pipeline import TickPipeline
from factory_tui.console.status import paused_status, stale_status, subtitle
from factory_tui.console.tick_loop import STALE_AFTER_TICKS, TickLoop, TicksEnded, TickThread
from factory_tui.engine import Engine
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore
from factory_tui.view_models import ViewNeeds
from factory_tui.widgets.summary_bar import FeedStatus, SummaryFigures
from tests.tui.conftest import SetClock
from tests.tui.floor import AT_US, at, fill, floor_lines, floor_settings, line, spell


class FakeMonotonic:
    """A monotonic clock moved by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def store_lines(path: Path, lines: list[bytes]) -> list[str]:
    """Insert wire lines as the listener would (a writable connection of its own)."""
    with SqliteStore.open(path) as writer:
        return list(writer.insert_batch([parse_event(raw) for raw in lines], received_us=AT_US))


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[tuple[TickPipeline, SetClock, FakeMonotonic, Path]]:
    """A viewer's pipeline (read-only, no alert writes) on the fixture morning."""
    path = tmp_path / "factory.db"
    fill(str(path))
    settings = floor_settings(str(path))
    clock, monotonic = SetClock(), FakeMonotonic()
    made = TickPipeline(
        settings,
        SqliteStore.open(path, read_only=True),
        AlertKeeper(settings, None),
        clock=clock,
        monotonic=monotonic,
    )
    yield made, clock, monotonic, path
    made.close()


class TestTickPipeline:
    def test_the_first_tick_is_the_warm_start_and_equals_a_full_engine(
        self, pipeline: tuple[TickPipeline, SetClock, FakeMonotonic, Path]
    ) -> None:
        made, _clock, _monotonic, path = pipeline
        result = made.tick()
        assert result is not None
        assert result.initial
        assert result.new_rows == len(floor_lines())
        with SqliteStore.open(path, read_only=True) as store:
            assert made.cursor == store.max_event_id()
            full = Engine(made.settings.metrics.max_gap_s, store.workers(), store.workstations())
            full.apply(store.iter_since(0))
        snapshot = result.view.snapshot
        expected = full.snapshot(snapshot.window, AT_US)
        assert (snapshot.workers, snapshot.stations, snapshot.factory) == (
            expected.workers,
            expected.stations,
            expected.factory,
        )
        assert result.view.window_title == "Shift A"
        assert snapshot.window.to_us == AT_US  # the shift so far

    def test_a_late_event_changes_the_past_figures_on_the_next_tick(
        self, pipeline: tuple[TickPipeline, SetClock, FakeMonotonic, Path]
    ) -> None:
        made, _clock, _monotonic, path = pipeline
        first = made.tick()
        assert first is not None
        before = first.view.snapshot.worker("W4")
        assert before is not None
        # W4 went quiet at 9:40; a unit from 8:00 arrives only now.
        assert store_lines(path, [line(at(8, 1), "W4", "S4", "product_count", count=3)]) == [
            "accepted"
        ]
        second = made.tick()
        assert second is not None
        assert not second.initial
        assert second.new_rows == 1
        after = second.view.snapshot.worker("W4")
        assert after is not None
        assert after.units == before.units + 3

    def test_an_event_already_held_is_not_counted_again(
        self, pipeline: tuple[TickPipeline, SetClock, FakeMonotonic, Path]
    ) -> None:
        made, _clock, _monotonic, _path = pipeline
        made.tick()
        result = made.tick()
        assert result is not None
        assert result.new_rows == 0

    def test_a_view_gets_the_data_it_needs(
        self, pipeline: tuple[TickPipeline, SetClock, FakeMonotonic, Path]
    ) -> None:
        made, _clock, _monotonic, _path = pipeline
        plain = made.tick()
        assert plain is not None
        assert plain.view.worker is None
        assert plain.view.events is None
        made.needs = ViewNeeds(worker_id="W1", event_log=True)
        result = made.tick()
        assert result is not None
        detail = result.view.worker
        assert detail is not None
        assert detail.worker.worker_id == "W1"
        # One unit every 10 minutes from 6:15 to 10:25: the chart's buckets add up to the
        # heading's units, and the station list names S1.
        assert sum(detail.output.units) == detail.worker.units == 26
        assert [visit.station_id for visit in detail.stations] == ["S1"]
        assert detail.events[0].worker_id == "W1"
        assert result.view.events is not None
        assert len(result.view.events) == 200

    def test_a_paused_view_is_built_for_the_frozen_snapshot(
        self, pipeline: tuple[TickPipeline, SetClock, FakeMonotonic, Path]
    ) -> None:
        made, clock, _monotonic, path = pipeline
        shown = made.tick()
        assert shown is not None
        cursor = made.cursor
        store_lines(path, [line(at(10, 29), "W2", "S2", "working")])
        clock.advance(60)
        view = made.view_for(shown.view, ViewNeeds(station_id="S2"))
        assert view is not None
        assert view.snapshot is shown.view.snapshot
        assert view.station is not None
        assert view.station.station.workstation_id == "S2"
        assert made.cursor == cursor  # no rows read: the figures stay those on screen
        state = view.snapshot.worker("W2")
        assert state is not None
        assert state.state == "idle"

    def test_the_viewers_rate_counts_stored_rows_per_second(
        self, pipeline: tuple[TickPipeline, SetClock, FakeMonotonic, Path]
    ) -> None:
        made, clock, monotonic, path = pipeline
        first = made.tick()
        assert first is not None
        assert first.rows_per_s == 0.0  # the warm start is history, not a rate
        monotonic.now += 1.0
        store_lines(path, [line(at(10, 30), f"W{n}", f"S{n}", "working") for n in range(1, 6)])
        clock.advance(1)
        second = made.tick()
        assert second is not None
        # Five rows in the meter's first second: 5/s (it divides by its age, at least 1 s).
        assert second.rows_per_s == pytest.approx(5.0)
        monotonic.now += 10.0
        third = made.tick()
        assert third is not None
        assert third.rows_per_s == 0.0  # past the 5-second window

    def test_after_close_a_tick_returns_nothing(
        self, pipeline: tuple[TickPipeline, SetClock, FakeMonotonic, Path]
    ) -> None:
        made, _clock, _monotonic, _path = pipeline
        made.close()
        assert made.store is None
        assert made.tick() is None

    def test_the_warm_start_freezes_what_is_held_and_close_gives_it_back(
        self, pipeline: tuple[TickPipeline, SetClock, FakeMonotonic, Path]
    ) -> None:
        """Held for the console's life, out of the cycle collector's full passes (see
        benchmarks/tui.py); collectable again once the console closes."""
        made, _clock, _monotonic, _path = pipeline
        gc.unfreeze()  # whatever an earlier test left frozen
        assert made.tick() is not None
        assert gc.get_freeze_count() > 0
        second = made.tick()
        assert second is not None
        assert not second.initial
        made.close()
        assert gc.get_freeze_count() == 0


class TestNightShiftAcrossDst:
    """Berlin's shift C (22:00-06:00) on the nights the clocks change: 7 and 9 real hours."""

    @pytest.mark.parametrize(
        ("start", "now", "so_far_h", "shift_h", "elapsed"),
        [
            # 22:00 CET is 21:00Z; 02:00 becomes 03:00; 05:00 CEST is 03:00Z; 06:00 is 04:00Z.
            (datetime(2026, 3, 28, 21, tzinfo=UTC), timedelta(hours=6), 6, 7, "6h00m of 7h00m"),
            # 22:00 CEST is 20:00Z; 03:00 becomes 02:00; 05:00 CET is 04:00Z; 06:00 is 05:00Z.
            (datetime(2026, 10, 24, 20, tzinfo=UTC), timedelta(hours=8), 8, 9, "8h00m of 9h00m"),
        ],
    )
    def test_the_window_and_its_title_count_real_hours(
        self,
        tmp_path: Path,
        start: datetime,
        now: timedelta,
        so_far_h: int,
        shift_h: int,
        elapsed: str,
    ) -> None:
        path = tmp_path / "night.db"
        fill(str(path), spell("W1", "S1", "working", start, start + now))
        settings = floor_settings(str(path))
        settings.timezone = "Europe/Berlin"
        at_us = to_utc_us(start + now)
        made = TickPipeline(
            settings,
            SqliteStore.open(path, read_only=True),
            AlertKeeper(settings, None),
            clock=SetClock(at_us),
        )
        try:
            result = made.tick()
        finally:
            made.close()
        assert result is not None
        view = result.view
        assert view.window_title == "Shift C"
        assert view.shift.from_us == to_utc_us(start)
        assert view.shift.seconds == shift_h * 3600
        snapshot = view.snapshot
        assert (snapshot.window.from_us, snapshot.window.to_us) == (to_utc_us(start), at_us)
        ana = snapshot.worker("W1")
        assert ana is not None
        assert ana.active_s == so_far_h * 3600
        assert snapshot.factory.throughput_uph == 0.0
        stations = {station.workstation_id: station for station in snapshot.stations}
        assert stations["S1"].utilization == pytest.approx(1.0)
        figures = SummaryFigures.build(snapshot, view.window_title, view.shift, None)
        assert figures.elapsed == elapsed


class TestTickLoop:
    async def test_a_request_during_a_tick_runs_right_after_it(self) -> None:
        started: list[int] = []
        loop = TickLoop(started.append, tick_s=1.0, now_s=0.0)
        loop.request()
        loop.request()  # while tick 1 runs
        assert started == [1]
        assert loop.finished(1, now_s=0.5)  # the pending request is due now
        loop.request()
        assert started == [1, 2]
        assert not loop.finished(2, now_s=0.6)

    async def test_next_tick_waits_for_a_tick_that_starts_after_the_call(self) -> None:
        started: list[int] = []
        loop = TickLoop(started.append, tick_s=1.0, now_s=0.0)
        loop.request()  # tick 1 is running and may have read before our write
        waiter = asyncio.ensure_future(loop.next_tick())
        await asyncio.sleep(0)
        loop.finished(1, now_s=0.1)
        await asyncio.sleep(0)
        assert not waiter.done()
        loop.request()
        assert started == [1, 2]
        loop.finished(2, now_s=0.2)
        await asyncio.wait_for(waiter, 1)

    async def test_close_fails_the_waiters_and_every_later_wait(self) -> None:
        started: list[int] = []
        loop = TickLoop(started.append, tick_s=1.0, now_s=0.0)
        first = asyncio.ensure_future(loop.next_tick())  # tick 1
        await asyncio.sleep(0)
        second = asyncio.ensure_future(loop.next_tick())  # tick 2, after tick 1
        await asyncio.sleep(0)
        assert started == [1]
        loop.close("the console stopped")
        for waiter in (first, second):
            with pytest.raises(TicksEnded, match="the console stopped"):
                await asyncio.wait_for(waiter, 1)
        with pytest.raises(TicksEnded, match="the console stopped"):
            await asyncio.wait_for(loop.next_tick(), 1)
        assert started == [1]  # a wait after the end starts no tick
        loop.close("again")  # the first reason stands
        assert loop.closed == "the console stopped"
        loop.finished(1, now_s=0.1)  # the running tick may still end: nobody left to wake
        assert isinstance(first.exception(), TicksEnded)
        assert isinstance(second.exception(), TicksEnded)

    async def test_close_leaves_a_landed_tick_landed(self) -> None:
        loop = TickLoop(lambda _: None, tick_s=1.0, now_s=0.0)
        waiter = asyncio.ensure_future(loop.next_tick())
        await asyncio.sleep(0)
        loop.finished(1, now_s=0.1)
        loop.close("the console stopped")
        await asyncio.wait_for(waiter, 1)

    def test_figures_go_stale_after_failures_or_silence(self) -> None:
        loop = TickLoop(lambda _: None, tick_s=1.0, now_s=0.0)
        assert loop.stale_reason(STALE_AFTER_TICKS) is None
        assert loop.stale_reason(STALE_AFTER_TICKS + 0.1) == "the database is not answering"
        loop.request()
        loop.finished(1, now_s=10.0, error="database is locked")
        assert loop.stale_reason(10.0) == "database is locked"
        loop.request()
        loop.finished(2, now_s=11.0)
        assert loop.stale_reason(11.0) is None
        loop.resumed(100.0)
        assert loop.stale_reason(100.0 + STALE_AFTER_TICKS) is None


class TestTickThread:
    def test_every_tick_runs_in_one_thread_that_join_ends(self) -> None:
        ran: list[tuple[int, str]] = []
        done = threading.Semaphore(0)

        def run(sequence: int) -> None:
            ran.append((sequence, threading.current_thread().name))
            done.release()

        ticks = TickThread(run, name="test tick")
        for sequence in (1, 2, 3):  # TickLoop starts the next only after the last one ended
            ticks.start(sequence)
            assert done.acquire(timeout=10)
        assert ran == [(1, "test tick"), (2, "test tick"), (3, "test tick")]
        assert ticks.alive
        assert ticks.join(10)
        assert not ticks.alive
        ticks.start(4)  # a timer firing while the app closes: nothing runs, no thread starts
        assert not ticks.alive
        assert ran[-1][0] == 3

    def test_join_waits_for_the_running_tick_and_drops_the_one_asked_for(self) -> None:
        ran: list[int] = []
        running, release = threading.Event(), threading.Event()

        def run(sequence: int) -> None:
            running.set()
            assert release.wait(10)
            ran.append(sequence)

        ticks = TickThread(run)
        ticks.start(1)
        assert running.wait(10)
        ticks.start(2)  # asked for while 1 runs
        ticks.stop()
        assert not ticks.join(0)  # tick 1 still runs: the thread waits for it
        release.set()
        assert ticks.join(10)
        assert ran == [1]

    def test_a_thread_never_started_joins_at_once(self) -> None:
        ticks = TickThread(lambda _: None)
        assert ticks.join(0)
        assert not ticks.alive


class TestStatusText:
    def test_the_subtitle_says_who_this_console_is(self) -> None:
        assert subtitle("console", demo=False, paused=False) == "console"
        assert subtitle("console", demo=True, paused=False) == "demo"
        assert subtitle("viewer", demo=True, paused=False) == "viewer (read-only)"
        assert subtitle("console", demo=False, paused=True) == "console · PAUSED"

    def test_stale_before_anything_is_shown_only_on_a_failure(self) -> None:
        assert stale_status(None, "the database is not answering", failed=False) is None
        failed = stale_status(None, "database is locked", failed=True)
        assert failed == FeedStatus("stale", "no data: database is locked")
        shown = stale_status("10:30:00", "the database is not answering", failed=False)
        assert shown == FeedStatus("stale", "as of 10:30:00: the database is not answering")
        assert paused_status("10:30:00") == FeedStatus("paused", "as of 10:30:00 · space resumes")
        assert paused_status(None) == FeedStatus("paused", "")
