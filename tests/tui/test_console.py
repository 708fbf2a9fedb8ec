"""The console driven with Textual's pilot, on a real database and a real listener (port 0)."""

from __future__ import annotations

import asyncio
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.console.screens.help_screen import HelpScreen
from factory_tui.console.services import live_owner
from factory_tui.console.tick_loop import TicksEnded
from factory_tui.ingest.client import IngestClient
from factory_tui.models import to_utc_us
from factory_tui.storage import StoreError
from factory_tui.widgets.worker_grid import WorkerGrid
from tests.tui.conftest import READING, ConsoleFactory, SetClock
from tests.tui.floor import AT, fill, floor_settings, line, spell

ALL = ("W1", "W2", "W3", "W4", "W5", "W6")
TICK_THREAD = "factory-tui tick"


def tile_text(app: FactoryApp, worker_id: str) -> str:
    """The text of a worker's tile as drawn (all six lines)."""
    grid = app.query_one(WorkerGrid)
    index = grid.shown_ids.index(worker_id)
    tile = grid._tiles[index]  # the drawn value; rendering it is what the screen shows
    return "\n".join(strip.text for strip in grid._tile_strips(tile, 30))


class TestStartup:
    async def test_first_tick_shows_every_roster_worker(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test(size=(120, 40)):
            snapshot = await app.tick_now()
            assert snapshot is not None
            assert app.grid.shown_ids == ALL
            assert app.summary.status.state == "live"
            assert app.role == "console"
            assert app.listener is not None
            assert app.sub_title == "console"
            figures = app.summary.figures
            assert figures is not None
            assert (figures.working, figures.idle, figures.absent, figures.unobserved) == (
                2,
                1,
                1,
                2,
            )
            assert figures.units == "106"
            assert figures.window_title == "Shift A"
            assert figures.elapsed == "4h30m of 8h00m"

    async def test_sighup_is_left_to_its_default(self, console: ConsoleFactory) -> None:
        """A vanished SSH terminal must end the process: the app itself catches no SIGHUP.

        The CLI sets the default first (`end_on_hangup`: the tests may run under nohup), then
        stops on SIGHUP as on `q` once the console runs (`stop_on_signals`, tested on a pty in
        test_cli_console)."""
        import signal

        from factory_tui.commands.console import end_on_hangup

        inherited = signal.getsignal(signal.SIGHUP)
        try:
            end_on_hangup()
            app = console()
            async with app.run_test():
                await app.tick_now()
                assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
        finally:
            signal.signal(signal.SIGHUP, inherited)


class TestFilter:
    async def test_typing_a_filter_hides_the_other_tiles(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test(size=(120, 40)) as pilot:
            await app.tick_now()
            await pilot.press("slash", *"chen")
            assert app.grid.shown_ids == ("W3",)
            assert app.summary.view.filter_text == "chen"
            assert (app.summary.view.shown, app.summary.view.total) == (1, 6)
            await pilot.press("escape")
            assert app.grid.shown_ids == ALL
            assert app.summary.view.filter_text == ""
            assert app.grid.has_focus

    async def test_filter_matches_state_and_station_words(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test(size=(120, 40)) as pilot:
            await app.tick_now()
            await pilot.press("slash", *"unobserved")
            assert app.grid.shown_ids == ("W4", "W6")
            await pilot.press(*(["backspace"] * 10), *"soldering")
            assert app.grid.shown_ids == ("W3",)

    async def test_enter_keeps_the_filter_and_returns_to_the_tiles(
        self, console: ConsoleFactory
    ) -> None:
        app = console()
        async with app.run_test(size=(120, 40)) as pilot:
            await app.tick_now()
            await pilot.press("slash", *"working", "enter")
            assert app.grid.has_focus
            assert app.grid.shown_ids == ("W1", "W5")
            # Keys go to the grid again: esc on the grid clears the filter too.
            await pilot.press("escape")
            assert app.grid.shown_ids == ALL

    async def test_no_match_says_how_to_clear(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test(size=(80, 24)) as pilot:
            await app.tick_now()
            await pilot.press("slash", *"nobody")
            await pilot.pause()
            assert app.grid.shown_ids == ()
            line_text = app.grid.render_line(1).text
            assert "No worker matches “nobody”" in line_text
            assert "esc clears" in line_text


class TestSort:
    async def test_s_cycles_through_the_sort_orders(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test(size=(120, 40)) as pilot:
            snapshot = await app.tick_now()
            assert snapshot is not None
            orders = [app.grid.shown_ids]
            labels = [app.summary.view.sort_label]
            for _ in range(5):
                await pilot.press("s")
                orders.append(app.grid.shown_ids)
                labels.append(app.summary.view.sort_label)
            assert labels == [
                "name",
                "utilization ↓",
                "units ↓",
                "UPH ↓",
                "last seen (stalest first)",
                "name",
            ]
            by_name, by_util, by_units, by_uph, by_seen, back = orders
            assert by_name == ALL
            assert back == ALL
            # Utilization: the three at 100% in name order, then W2 (65%), then the two nulls.
            assert by_util == ("W1", "W3", "W4", "W5", "W2", "W6")
            assert by_units == ("W5", "W1", "W3", "W2", "W4", "W6")
            assert by_uph == ("W5", "W1", "W3", "W2", "W4", "W6")
            # Never seen first, then the camera that went dark, then the rest by age.
            assert by_seen[:2] == ("W6", "W4")
            units = [snapshot.worker(worker_id).units for worker_id in by_units]  # type: ignore[union-attr]
            assert units == sorted(units, reverse=True)


class TestLiveUpdates:
    async def test_events_sent_to_the_listener_appear_on_the_next_tick(
        self, console: ConsoleFactory, clock: SetClock
    ) -> None:
        app = console()
        async with app.run_test(size=(120, 40)):
            await app.tick_now()
            assert "not seen" in tile_text(app, "W6")
            assert app.listener is not None
            client = IngestClient("127.0.0.1", app.listener.port)
            await client.connect()
            try:
                replies = await client.send(
                    [
                        line(AT, "W6", "S6", "working"),
                        line(AT, "W6", "S6", "product_count", count=3),
                    ]
                )
            finally:
                await client.close()
            assert [reply["status"] for reply in replies] == ["accepted", "accepted"]
            clock.advance(90)
            await app.tick_now()
            text = tile_text(app, "W6")
            assert "WORKING" in text
            assert "S6 Rework" in text
            assert "3 units" in text
            assert "1m ago" in text
            assert app.summary.figures is not None
            assert app.summary.figures.units == "109"

    async def test_only_the_tiles_that_changed_are_drawn_again(
        self, console: ConsoleFactory
    ) -> None:
        app = console()
        async with app.run_test(size=(120, 40)) as pilot:
            await app.tick_now()
            await pilot.pause()
            drawn = app.grid.tiles_drawn
            assert drawn >= 6
            assert app.listener is not None
            await app.listener.submit([line(AT, "W6", "S6", "idle")])
            await app.tick_now()
            await pilot.pause()
            assert app.grid.tiles_drawn == drawn + 1
            # Nothing new: no tile is drawn again.
            await app.tick_now()
            await pilot.pause()
            assert app.grid.tiles_drawn == drawn + 1

    async def test_pause_stops_updates_until_resumed(
        self, console: ConsoleFactory, clock: SetClock
    ) -> None:
        app = console()
        async with app.run_test(size=(120, 40)) as pilot:
            await app.tick_now()
            await pilot.press("space")
            assert app.paused
            assert app.summary.status.state == "paused"
            assert "as of 10:30:00" in app.summary.status.detail
            assert app.sub_title == "console · PAUSED"
            assert app.listener is not None
            await app.listener.submit([line(AT, "W6", "S6", "working")])
            clock.advance(60)
            ticks = app.ticks_done
            for _ in range(3):
                app.on_timer_tick()  # what the interval timer does every tick_s
                await app.tick_now()
            await pilot.pause()
            assert app.ticks_done == ticks
            assert "not seen" in tile_text(app, "W6")
            await pilot.press("space")
            assert not app.paused
            await app.tick_now()
            assert "WORKING" in tile_text(app, "W6")
            assert app.summary.status.state == "live"
            assert app.sub_title == "console"

    async def test_a_database_error_marks_the_figures_stale(
        self, console: ConsoleFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app = console()
        async with app.run_test(size=(120, 40)):
            await app.tick_now()
            assert app.pipeline is not None
            assert app.pipeline.store is not None

            def locked(*args: object, **kwargs: object) -> list[object]:
                raise StoreError("database error: database is locked")

            monkeypatch.setattr(app.pipeline.store, "read_since", locked)
            await app.tick_now()
            assert app.summary.status.state == "stale"
            assert "database is locked" in app.summary.status.detail
            assert "as of 10:30:00" in app.summary.status.detail
            monkeypatch.undo()
            await app.tick_now()
            assert app.summary.status.state == "live"


class TestTickThread:
    async def test_the_ticks_run_in_one_thread_that_ends_with_the_app(
        self, console: ConsoleFactory
    ) -> None:
        app = console()
        async with app.run_test(size=(120, 40)):
            for _ in range(3):
                await app.tick_now()
            ticks = [thread for thread in threading.enumerate() if thread.name == TICK_THREAD]
            assert len(ticks) == 1
            assert ticks[0].is_alive()
        assert not ticks[0].is_alive()  # the tests run many apps: none may leave it behind

    async def test_a_tick_that_raises_a_bug_ends_the_app_with_it(
        self, console: ConsoleFactory
    ) -> None:
        app = console()

        def broken_tick(**_: object) -> None:
            raise ZeroDivisionError("a bug in the tick")

        waiting: list[asyncio.Future[object]] = []

        async def tick_broken() -> None:
            async with app.run_test(size=(120, 40)):
                await app.tick_now()
                assert app.pipeline is not None
                app.pipeline.tick = broken_tick  # type: ignore[assignment, method-assign]
                waiting.append(asyncio.ensure_future(app.tick_now()))  # never lands: app ends
                for _ in range(200):  # bounded: 10 s
                    if app.return_code is not None:
                        break
                    await asyncio.sleep(0.05)

        with pytest.raises(ZeroDivisionError, match="a bug in the tick"):
            await tick_broken()
        assert app.return_code == 1
        with pytest.raises(TicksEnded):  # released, not left waiting for a tick that never lands
            await asyncio.wait_for(waiting[0], 10)

    async def test_a_tick_awaited_while_the_app_quits_raises_instead_of_hanging(
        self, console: ConsoleFactory
    ) -> None:
        app = console()
        async with app.run_test(size=(120, 40)) as pilot:
            await app.tick_now()
            assert app.pipeline is not None
            # A tick that finds the console shutting down posts nothing: it never lands.
            app.pipeline.tick = lambda **_: None  # type: ignore[assignment, method-assign]
            waiting = asyncio.ensure_future(app.tick_now())
            await pilot.pause()
            assert not waiting.done()
            await pilot.press("q")
            with pytest.raises(TicksEnded, match="the console stopped"):
                await asyncio.wait_for(waiting, 10)
        with pytest.raises(TicksEnded):  # a tick awaited after the end fails at once too
            await asyncio.wait_for(app._ticks.next_tick(), 10)

    async def test_a_tick_awaited_while_the_start_crashes_returns_instead_of_hanging(
        self, console: ConsoleFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app = console()

        async def broken_start(*_: object) -> None:
            raise ZeroDivisionError("a bug at start")

        monkeypatch.setattr(app.services, "start", broken_start)
        waiting: list[asyncio.Future[object]] = []

        async def start_broken() -> None:
            waiting.append(asyncio.ensure_future(app.tick_now()))  # waits for the start
            async with app.run_test(size=(120, 40)):
                for _ in range(200):  # bounded: 10 s
                    if app.return_code is not None:
                        break
                    await asyncio.sleep(0.05)

        with pytest.raises(ZeroDivisionError, match="a bug at start"):
            await start_broken()
        assert await asyncio.wait_for(waiting[0], 10) is None  # no tick ever landed


class TestNightShiftAcrossDst:
    async def test_the_title_and_elapsed_time_count_real_hours(
        self, tmp_path: Path, clock: SetClock
    ) -> None:
        """Berlin, the night the clocks jump 02:00 -> 03:00: at 05:00 CEST shift C (22:00-06:00)
        has run 6 of its 7 real hours; the wall clock would say 7 of 8."""
        start = datetime(2026, 3, 28, 21, tzinfo=UTC)  # 22:00 CET
        now = start + timedelta(hours=6)  # 05:00 CEST
        path = tmp_path / "night.db"
        fill(str(path), spell("W1", "S1", "working", start, now))
        settings = floor_settings(str(path), tick_s=60.0)
        settings.timezone = "Europe/Berlin"
        clock.now_us = to_utc_us(now)
        app = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.tick_now()
            figures = app.summary.figures
            assert figures is not None
            assert (figures.window_title, figures.elapsed) == ("Shift C", "6h00m of 7h00m")
            assert figures.working == 1
            assert "Shift C 6h00m of 7h00m" in str(app.summary.render())
            await pilot.press("space")
            assert app.summary.status.detail == "as of 05:00:00 · space resumes"


class TestKeys:
    async def test_arrows_move_between_tiles_and_enter_opens_the_worker(
        self, console: ConsoleFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        opened: list[str] = []
        app = console()
        monkeypatch.setattr(app, "open_worker_detail", opened.append)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.tick_now()
            assert app.grid.columns == 4
            assert app.grid.selected_worker == "W1"
            await pilot.press("right", "right")
            assert app.grid.selected_worker == "W3"
            await pilot.press("down")
            # W3 is in column 3 of 4; below it is nothing, so the cursor stays.
            assert app.grid.selected_worker == "W3"
            await pilot.press("left", "left", "down")
            assert app.grid.selected_worker == "W5"
            await pilot.press("end")
            assert app.grid.selected_worker == "W6"
            await pilot.press("up")
            assert app.grid.selected_worker == "W2"
            await pilot.press("enter")
            await pilot.pause()
            assert opened == ["W2"]

    async def test_t_toggles_dark_and_light(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test() as pilot:
            await app.tick_now()
            assert app.theme == "textual-dark"
            dark = [span.style for span in app.summary.render().spans]
            await pilot.press("t")
            assert app.theme == "textual-light"
            assert not app.current_theme.dark
            # The bar's packed lines are kept between paints: the switch recolours them.
            assert [span.style for span in app.summary.render().spans] != dark
            await pilot.press("t")
            assert app.theme == "textual-dark"
            assert [span.style for span in app.summary.render().spans] == dark

    async def test_question_mark_lists_every_key(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test(size=(80, 24)) as pilot:
            await app.tick_now()
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            keys = [key for key, _ in app.screen._keys]
            for key in ("/", "esc", "s", "space", "t", "enter", "?", "q"):
                assert key in keys
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

    async def test_ticks_go_on_under_the_help_screen(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test(size=(80, 24)) as pilot:
            await app.tick_now()
            await pilot.press("question_mark")
            assert app.listener is not None
            await app.listener.submit([line(AT, "W6", "S6", "working")])
            await app.tick_now()
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert "WORKING" in tile_text(app, "W6")

    async def test_q_quits_cleanly_and_frees_the_port(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test() as pilot:
            await app.tick_now()
            assert app.listener is not None
            port = app.listener.port
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0
        assert app.error_message is None
        assert app.pipeline is not None
        assert app.pipeline.store is None  # closed
        # The port is free again: the listener stopped, not just the screen.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))


class TestViewer:
    async def test_a_viewer_on_the_same_database_shows_the_same_numbers(
        self, console: ConsoleFactory, floor_db: Path
    ) -> None:
        owner = console()
        async with owner.run_test(size=(120, 40)):
            await owner.tick_now()
            assert owner.listener is not None
            port = owner.listener.port
            await owner.listener.submit([line(AT, "W6", "S6", "working")])
            assert live_owner(floor_db, port) is not None
            viewer = console(port=port)
            async with viewer.run_test(size=(120, 40)):
                owner_snapshot = await owner.tick_now()
                viewer_snapshot = await viewer.tick_now()
                assert viewer.role == "viewer"
                assert viewer.listener is None
                assert viewer.sub_title == "viewer (read-only)"
                assert owner_snapshot is not None
                assert viewer_snapshot is not None
                assert viewer_snapshot.workers == owner_snapshot.workers
                assert viewer_snapshot.factory == owner_snapshot.factory
                owner_figures = owner.summary.figures
                viewer_figures = viewer.summary.figures
                assert owner_figures is not None
                assert viewer_figures is not None
                assert viewer_figures.units == owner_figures.units == "106"
                # Rejected lines never reach the database, so a viewer cannot count them.
                assert viewer_figures.rejected == "—"

    async def test_a_port_held_by_another_program_is_a_clear_error(
        self, console: ConsoleFactory
    ) -> None:
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            port = other.getsockname()[1]
            app = console(port=port)
            async with app.run_test() as pilot:
                await pilot.pause()
                await asyncio.wait_for(app.started.wait(), 10)
        assert app.return_code == 2
        assert app.error_message is not None
        assert f"port {port}" in app.error_message
        assert "already in use" in app.error_message

    async def test_a_console_asked_to_be_a_viewer_says_so(self, console: ConsoleFactory) -> None:
        """The demo's second console asks for the viewer role; its title must say viewer."""
        app = console(role="viewer", demo=True)
        async with app.run_test(size=(120, 40)):
            await app.tick_now()
            assert app.role == "viewer"
            assert app.listener is None
            assert app.sub_title == "viewer (read-only)"

    async def test_a_viewer_needs_the_database_to_exist(
        self, console: ConsoleFactory, tmp_path: Path
    ) -> None:
        app = console(role="viewer", db=tmp_path / "missing.db")
        async with app.run_test():
            await asyncio.wait_for(app.started.wait(), 10)
        assert app.return_code == 2
        assert app.error_message is not None
        assert "does not exist" in app.error_message
