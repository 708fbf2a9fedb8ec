"""The drill-down views driven with Textual's pilot: a real database, a real listener (port 0).

The fixture morning (floor.py) at 10:30: W1 working at S1, W2 idle since 09:00, W3 absent,
W4's camera dark since 09:40, W5 working, W6 never seen.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from factory_tui.config import AlertSettings
from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.console.screens.alerts_screen import AlertsScreen
from factory_tui.console.screens.event_log_screen import EventLogScreen
from factory_tui.console.screens.station_detail_screen import StationDetailScreen
from factory_tui.console.screens.stations_screen import StationsScreen
from factory_tui.console.screens.worker_detail_screen import WorkerDetailScreen
from factory_tui.engine.alerts import CAMERA_DARK, CONFIDENCE_DRIFT, IDLE_TOO_LONG
from factory_tui.ingest.client import IngestClient
from factory_tui.models import from_utc_us, to_utc_us
from factory_tui.records import AlertRecord
from factory_tui.storage import SqliteStore
from factory_tui.widgets.output_chart import OutputChart
from factory_tui.widgets.timeline_bar import TimelineBar
from factory_tui.widgets.worker_grid import SORT_KEYS
from tests.tui.conftest import READING, ConsoleFactory, SetClock
from tests.tui.floor import AT, at, fill, floor_settings, line

ScreenT = TypeVar("ScreenT", bound=Screen[None])
SIZE = (120, 40)
TICK_TIMEOUT_S = 10.0


# --- helpers --------------------------------------------------------------------------------


async def settle(app: FactoryApp, pilot: Pilot[None]) -> None:
    """Run a tick and let the screen draw its result (bounded: an app that died ticks no more)."""
    await asyncio.wait_for(app.tick_now(), TICK_TIMEOUT_S)
    await pilot.pause()


async def settle_paused(app: FactoryApp, pilot: Pilot[None]) -> None:
    """While paused: let a newly opened view's worker compute its data, then draw it.

    The worker is started when the screen change is handled (the first pause); its result is
    a message, handled by the second pause. The bound only catches an app that died.
    """
    await pilot.pause()
    await asyncio.wait_for(app.workers.wait_for_complete(), TICK_TIMEOUT_S)
    await pilot.pause()


async def press_and_tick(app: FactoryApp, pilot: Pilot[None], *keys: str) -> None:
    """Press keys, then wait for a tick computed for whatever view is now on top."""
    await pilot.press(*keys)
    await pilot.pause()
    await settle(app, pilot)


async def open_view(app: FactoryApp, pilot: Pilot[None], key: str, kind: type[ScreenT]) -> ScreenT:
    """Press `key`, wait for a tick computed for the view on top, and check it is a `kind`."""
    await press_and_tick(app, pilot, key)
    screen = app.screen
    assert isinstance(screen, kind)
    return screen


def drawn(widget: Widget) -> str:
    """The widget's text as drawn."""
    width, height = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


def row_text(table: DataTable[object], key: str) -> list[str]:
    """A table row's cells as plain text."""
    return [str(value) for value in table.get_row(key)]


def table_keys(table: DataTable[object]) -> list[str]:
    """Row keys in display order."""
    return [row.key.value or "" for row in table.ordered_rows]


async def send(port: int, lines: list[bytes]) -> list[dict[str, object]]:
    """Send lines to the listener over TCP, the way a camera does; returns the replies."""
    client = IngestClient("127.0.0.1", port)
    await client.connect()
    try:
        return await client.send(lines)
    finally:
        await client.close()


def alerts_of(path: Path, kind: str, subject: str) -> list[AlertRecord]:
    """Stored alerts of one kind and subject, newest first."""
    with SqliteStore.open(path, read_only=True) as store:
        return [a for a in store.alerts() if (a.kind, a.subject) == (kind, subject)]


def listener_port(app: FactoryApp) -> int:
    """The port the console's listener bound (port 0 in the settings: a free one)."""
    assert app.listener is not None
    return app.listener.port


# --- navigation -----------------------------------------------------------------------------


class TestNavigation:
    async def test_enter_opens_the_worker_and_view_keys_switch_views(
        self, console: ConsoleFactory
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await press_and_tick(app, pilot, "right", "enter")
            screen = app.screen
            assert isinstance(screen, WorkerDetailScreen)
            assert screen.worker_id == "W2"
            assert len(app.screen_stack) == 2
            # The tiles' filter and sort are off while a view is over them.
            assert not app.check_action("filter", ())
            assert not app.check_action("cycle_sort", ())
            await pilot.press("slash", "s")
            await pilot.pause()
            assert app.screen is screen
            assert not app.floor.filter_field.display
            assert app.grid.sort_key == SORT_KEYS[0]
            # A view key closes the detail first; the views are siblings over the tiles, so
            # esc from any of them leads back to the tiles, and so does 1.
            for key, kind in (("3", EventLogScreen), ("4", AlertsScreen)):
                await press_and_tick(app, pilot, key)
                assert isinstance(app.screen, kind)
                assert len(app.screen_stack) == 2
            await pilot.press("escape")
            await pilot.pause()
            assert len(app.screen_stack) == 1
            await press_and_tick(app, pilot, "2")
            assert isinstance(app.screen, StationsScreen)
            await pilot.press("1")
            await pilot.pause()
            assert len(app.screen_stack) == 1
            assert app.grid.has_focus
            assert app.grid.selected_worker == "W2"
            assert app.check_action("filter", ())
            assert app.check_action("cycle_sort", ())

    async def test_stations_to_a_station_to_its_worker_and_back(
        self, console: ConsoleFactory
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await press_and_tick(app, pilot, "2", "down", "enter")
            station = app.screen
            assert isinstance(station, StationDetailScreen)
            assert station.station_id == "S2"
            table = station.query_one(DataTable)
            assert table_keys(table) == ["W2"]
            assert row_text(table, "W2") == [
                "W2",
                "Bilal Khan",
                "2h50m",
                "1h30m",
                "0m",
                "11",
                "here",
            ]
            heading = drawn(station.query_one("#station-heading", Static))
            assert "S2 Assembly 2" in heading
            assert "occupied 2h50m (63%) · 11 units · 2.4 units/h" in heading
            assert "present now: Bilal Khan" in heading
            legend = drawn(station.query_one(TimelineBar)).splitlines()[-1]
            assert "█ occupied" in legend
            assert "· not occupied" in legend

            worker = await open_view(app, pilot, "enter", WorkerDetailScreen)
            assert worker.worker_id == "W2"
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is station
            await pilot.press("escape")
            await pilot.pause()
            stations = app.screen
            assert isinstance(stations, StationsScreen)
            table = stations.query_one(DataTable)
            assert table_keys(table)[table.cursor_row] == "S2"
            # A view key over the station's timeline closes it and the stations below it
            # (each is reported on top once it is already gone: nothing may draw on it) and
            # opens that view over the tiles.
            await press_and_tick(app, pilot, "enter")
            assert isinstance(app.screen, StationDetailScreen)
            await press_and_tick(app, pilot, "4")
            assert isinstance(app.screen, AlertsScreen)
            assert len(app.screen_stack) == 2
            await pilot.press("escape")
            await pilot.pause()
            assert len(app.screen_stack) == 1


# --- the worker detail ----------------------------------------------------------------------


class TestWorkerDetail:
    async def test_opened_while_paused_it_shows_the_paused_figures(
        self, console: ConsoleFactory, clock: SetClock
    ) -> None:
        """No live tick runs while paused: the view's data is computed for the frozen Snapshot."""
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            frozen = app.snapshot
            await pilot.press("space")
            clock.advance(600)
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, WorkerDetailScreen)
            await settle_paused(app, pilot)
            assert screen.data is not None
            assert screen.data.worker is not None
            assert screen.data.snapshot is frozen
            assert screen.data.worker.worker.worker_id == "W1"
            assert "loading" not in drawn(screen.query_one("#detail-heading", Static))
            await pilot.press("4")
            await settle_paused(app, pilot)
            alerts = app.screen
            assert isinstance(alerts, AlertsScreen)
            assert {alert.subject for alert in alerts.history} == {"W2", "W4"}

    async def test_figures_stations_and_events_of_a_worker(
        self, console: ConsoleFactory, clock: SetClock
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            screen = await open_view(app, pilot, "enter", WorkerDetailScreen)
            assert screen.worker_id == "W1"
            detail = screen.data.worker if screen.data else None
            assert detail is not None
            # 06:05-10:30 working with a heartbeat every 5 min, a unit every 10 min.
            assert detail.worker.units == 26
            assert detail.worker.active_s == 4 * 3600 + 25 * 60
            assert detail.worker.events == 79
            (visit,) = detail.stations
            assert (visit.station_id, visit.name, visit.units) == ("S1", "Assembly 1", 26)
            assert visit.working_s == detail.worker.active_s
            assert sum(detail.output.units) == 26

            heading = drawn(screen.query_one("#detail-heading", Static))
            assert "Ana Silva" in heading
            assert "WORKING" in heading
            assert "at S1 Assembly 1" in heading
            metrics = drawn(screen.query_one("#detail-metrics", Static)).splitlines()
            assert metrics[0].strip() == "Metrics, Shift A so far"
            assert "Units          26 sum of product_count counts" in metrics[6]
            assert "Utilization  100% active / (active + idle)" in metrics[5]
            assert "Events         79 events in the window" in metrics[9]
            stations = drawn(screen.query_one("#detail-stations", Static))
            assert "S1 Assembly 1" in stations
            assert "06:05–10:30" in stations

            events = screen.query_one("#detail-events", DataTable)
            assert events.row_count == 50
            times = [row_text(events, key)[0] for key in table_keys(events)]
            # Newest first by the camera's time: the 10:25 heartbeat and unit lead.
            assert times[:2] == ["10:25:00", "10:25:00"]
            assert times == sorted(times, reverse=True)
            # The page scrolls, not the table inside it: every row can be scrolled to.
            assert events.max_scroll_y == 0
            assert events.size.height == 51
            await pilot.press("end")
            await pilot.pause()
            body = screen.query_one("#detail-body")
            assert body.scroll_y == body.max_scroll_y > 0
            assert events.region.bottom <= body.region.bottom

            # New events reach the open detail on the next tick.
            replies = await send(
                listener_port(app),
                [line(AT, "W1", "S6", "working"), line(AT, "W1", "S6", "product_count", count=4)],
            )
            assert [reply["status"] for reply in replies] == ["accepted", "accepted"]
            clock.advance(60)
            await settle(app, pilot)
            detail = screen.data.worker if screen.data else None
            assert detail is not None
            assert detail.worker.units == 30
            assert [visit.station_id for visit in detail.stations] == ["S1", "S6"]
            first = row_text(events, table_keys(events)[0])
            assert (first[0], first[2]) == ("10:30:00", "S6")
            assert events.row_count == 50

            await pilot.press("escape")
            await pilot.pause()
            assert len(app.screen_stack) == 1

    async def test_the_timeline_shows_each_state_up_to_now(self, console: ConsoleFactory) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await press_and_tick(app, pilot, "right", "enter")  # W2: working, then idle
            screen = app.screen
            assert isinstance(screen, WorkerDetailScreen)
            station_row, state_row, ruler, labels, legend = drawn(
                screen.query_one(TimelineBar)
            ).splitlines()
            assert station_row.split() == ["station", "S2"]
            bar = state_row.removeprefix("state").strip()
            # Unobserved until 06:10, working to 09:00, idle up to now, blank after.
            assert bar.startswith("··█")
            assert "█▒" in bar
            assert bar.rstrip("▒").rstrip("█").strip("·") == ""
            # "now" on the axis, under the bar's last cell.
            assert abs(ruler.index("▲") - (len(state_row.rstrip()) - 1)) <= 1
            assert labels.split()[:3] == ["06:00", "06:30", "07:00"]
            assert "▲ now 10:30" in legend
            assert "▒ idle" in legend
            # Each state has its own colour as well as its own glyph.
            timeline = screen.query_one(TimelineBar)
            state_strip = timeline.render_lines(Region(0, 1, *timeline.size))[0]
            colours = {
                segment.text[0]: segment.style.color if segment.style else None
                for segment in state_strip
                if segment.text.strip()
            }
            assert colours["█"] is not None
            assert colours["▒"] is not None
            assert len({colours["·"], colours["█"], colours["▒"]}) == 3
            metrics = drawn(screen.query_one("#detail-metrics", Static))
            assert "Utilization   65%" in metrics

            # On a narrow terminal the chart's caption takes its short form, neither cut nor
            # wrapped: all its rows stay.
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            chart = drawn(screen.query_one(OutputChart)).splitlines()
            assert len(chart) == 4
            assert chart[0].rstrip().endswith("(dim: still filling)")
            assert chart[-1].split()[0] == "0"
            assert len(drawn(timeline).splitlines()) == 5


# --- stations -------------------------------------------------------------------------------


class TestStations:
    async def test_rows_and_the_sort_that_keeps_the_cursor_on_its_station(
        self, console: ConsoleFactory
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            screen = await open_view(app, pilot, "2", StationsScreen)
            assert screen.shown_ids == ("S1", "S2", "S3", "S4", "S5", "S6")
            table = screen.query_one(DataTable)
            assert row_text(table, "S1") == [
                "S1",
                "Assembly 1",
                "4h25m",
                "98%",
                "26",
                "5.8",
                "Ana Silva",
            ]
            assert row_text(table, "S3")[2:] == ["4h00m", "89%", "19", "4.2", "—"]
            assert row_text(table, "S6")[2:] == ["0m", "0%", "0", "0.0", "—"]

            await pilot.press("down", "down")
            orders = [screen.shown_ids]
            for _ in range(4):
                await pilot.press("s")
                orders.append(screen.shown_ids)
                assert table_keys(table)[table.cursor_row] == "S3"
            _, by_util, by_units, by_rate, by_present = orders
            assert by_util == ("S1", "S3", "S4", "S5", "S2", "S6")
            assert by_units == ("S5", "S1", "S3", "S2", "S4", "S6")
            assert by_rate == by_units
            assert by_present[:3] == ("S1", "S2", "S5")
            assert "sort workers present ↓" in drawn(screen.query_one("#stations-heading", Static))
            # The view's own sort: the tiles' sort did not move.
            assert app.grid.sort_key == SORT_KEYS[0]
            await pilot.press("s")
            assert screen.shown_ids == orders[0]

    async def test_a_station_shared_over_the_shift_lists_both_workers(
        self, console: ConsoleFactory, clock: SetClock
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            # W6 takes over S3 from the absent W3.
            await send(
                listener_port(app),
                [line(AT, "W6", "S3", "working"), line(AT, "W6", "S3", "product_count", count=2)],
            )
            clock.advance(5 * 60)
            await press_and_tick(app, pilot, "2", "down", "down", "enter")
            screen = app.screen
            assert isinstance(screen, StationDetailScreen)
            assert screen.station_id == "S3"
            table = screen.query_one(DataTable)
            assert table_keys(table) == ["W3", "W6"]
            # W3's absent heartbeats from 10:00, the last (10:25) counted up to now.
            assert row_text(table, "W3")[2:] == ["4h00m", "0m", "35m", "19", "—"]
            assert row_text(table, "W6")[2:] == ["5m", "0m", "0m", "2", "here"]


# --- the event log --------------------------------------------------------------------------


class TestEventLog:
    async def test_latest_accepted_events_newest_first(
        self, console: ConsoleFactory, floor_db: Path
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            # Opened while paused, the log gets its list for the frozen Snapshot at once (not
            # the tiles' data, which has no event list and would read as a viewer's).
            await pilot.press("space", "3")
            await settle_paused(app, pilot)
            screen = app.screen
            assert isinstance(screen, EventLogScreen)
            assert screen.shown_accepted
            assert "viewer" not in drawn(screen.query_one("#rejected-title", Static))
            await pilot.press("space")
            await settle(app, pilot)
            assert "accepted 0" in drawn(screen.query_one("#log-heading", Static))
            assert "0 since start" in drawn(screen.query_one("#rejected-title", Static))
            with SqliteStore.open(floor_db, read_only=True) as store:
                latest = [event.id for event in store.latest_events(200)]
            assert list(screen.shown_accepted) == latest
            assert latest == sorted(latest, reverse=True)
            table = screen.query_one("#log-accepted", DataTable)
            assert table_keys(table) == [str(event_id) for event_id in latest]
            # The last stored line of the fixture: W5's low-confidence sighting.
            assert row_text(table, str(latest[0])) == [
                "10:30:00",
                "10:02:00",
                "W5",
                "S5",
                "working",
                "",
                "0.41",
                "yolo-v8.2",
                "—",
            ]
            # A live event goes on top.
            await send(listener_port(app), [line(AT, "W6", "S6", "idle")])
            await settle(app, pilot)
            newest = screen.shown_accepted[0]
            assert newest > latest[0]
            assert table_keys(table)[0] == str(newest)
            assert row_text(table, str(newest))[1:5] == ["10:30:00", "W6", "S6", "idle"]
            assert len(screen.shown_accepted) == 200

    async def test_rejected_lines_with_their_error_and_connection_and_the_filter(
        self, console: ConsoleFactory
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            screen = await open_view(app, pilot, "3", EventLogScreen)
            assert screen.shown_rejected == ()
            client = IngestClient("127.0.0.1", listener_port(app))
            await client.connect()
            try:
                assert client._writer is not None
                host, own_port = client._writer.get_extra_info("sockname")[:2]
                bad = line(AT, "W1", "S1", "working").replace(b'"W1"', b'"W1", "colour": 3')
                replies = await client.send([bad, line(AT, "W1", "S1", "working")])
            finally:
                await client.close()
            assert [reply["status"] for reply in replies] == ["rejected", "accepted"]
            await settle(app, pilot)
            (rejection,) = screen.shown_rejected
            assert rejection.peer == f"{host}:{own_port}"
            table = screen.query_one("#log-rejected", DataTable)
            (key,) = table_keys(table)
            _, peer, error, excerpt = row_text(table, key)
            assert peer == f"{host}:{own_port}"
            # Cut to the width (the line first, then the error); whole under the focused list.
            assert str(replies[0]["error"]).startswith(error.rstrip("…"))
            assert "colour" in error
            assert excerpt.endswith("…")
            table.focus()
            await pilot.pause()
            detail = " ".join(drawn(screen.query_one("#rejected-detail", Static)).split())
            assert " ".join(str(replies[0]["error"]).split()) in detail
            assert '"colour": 3' in detail
            assert "1 since start" in drawn(screen.query_one("#rejected-title", Static))
            everything = screen.shown_accepted

            # `/` and a word: only that worker's events, and no rejection has the word.
            await pilot.press("slash", "w", "3")
            assert screen.filter_text == "w3"
            accepted = screen.query_one("#log-accepted", DataTable)
            assert 0 < len(screen.shown_accepted) < len(everything)
            assert {row_text(accepted, row)[2] for row in table_keys(accepted)} == {"W3"}
            assert screen.shown_rejected == ()
            # Every word must match (typed the same way, set here to spare the keystrokes).
            field = screen.query_one("#log-filter", Input)
            field.value = "w3 absent"
            await pilot.pause()
            assert len(screen.shown_accepted) == 6  # the absent heartbeats 10:00-10:25
            for row in table_keys(accepted):
                assert row_text(accepted, row)[2:5] == ["W3", "S3", "absent"]
            assert "6 of 200 match" in drawn(screen.query_one("#accepted-title", Static))
            # The rejection is found by the connection it came from.
            field.value = str(own_port)
            await pilot.pause()
            assert len(screen.shown_rejected) == 1
            assert screen.shown_accepted == ()
            # esc clears the filter first, then goes back.
            await pilot.press("escape")
            assert screen.filter_text == ""
            assert screen.shown_accepted == everything
            assert len(screen.shown_rejected) == 1
            assert not screen.query_one("#log-filter", Input).display
            await pilot.press("escape")
            assert len(app.screen_stack) == 1


# --- alerts ---------------------------------------------------------------------------------


class TestAlerts:
    async def test_a_dark_camera_raises_an_alert_that_clears_when_it_is_back(
        self, console: ConsoleFactory, floor_db: Path, clock: SetClock
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            (dark,) = alerts_of(floor_db, CAMERA_DARK, "W4")
            (idle,) = alerts_of(floor_db, IDLE_TOO_LONG, "W2")
            assert dark.cleared_us is None
            # Dark from W4's last event (09:35) + max_gap; idle too long from 09:00 + idle_s.
            assert dark.started_us == to_utc_us(at(9, 50))
            assert idle.started_us == to_utc_us(at(9, 15))
            assert dark.details == "W4 (Dana Novak): no event for 55 min"
            # W4's and W2's (idle since 09:00); nobody else.
            assert app.summary.alerts == 2
            screen = await open_view(app, pilot, "4", AlertsScreen)
            assert "Active (2)" in drawn(screen.query_one("#active-title", Static))
            active = screen.query_one("#alerts-active", DataTable)
            history = screen.query_one("#alerts-history", DataTable)
            # Newest first: both raised on the first tick, the later id first.
            assert dark.id > idle.id
            assert table_keys(active) == [str(dark.id), str(idle.id)]
            assert row_text(active, str(dark.id)) == [
                "CAMERA DARK",
                "W4",
                "09:50",
                "40m",
                "W4 (Dana Novak): no event for 55 min",
            ]
            assert table_keys(history) == table_keys(active)

            # enter on it opens the worker; back on the alerts (paused, so no tick computed
            # for the alerts runs), the history is still listed.
            detail = await open_view(app, pilot, "enter", WorkerDetailScreen)
            assert detail.worker_id == "W4"
            await pilot.press("space", "escape")
            await pilot.pause()
            assert app.screen is screen
            assert table_keys(history) == table_keys(active)
            await pilot.press("space")

            await send(listener_port(app), [line(AT + timedelta(minutes=1), "W4", "S4", "working")])
            clock.advance(60)
            await settle(app, pilot)
            (back,) = alerts_of(floor_db, CAMERA_DARK, "W4")
            assert back.id == dark.id
            assert back.cleared_us == clock.now_us
            assert app.summary.alerts == 1
            assert table_keys(active) == [str(idle.id)]
            assert row_text(history, str(dark.id))[:5] == [
                "CAMERA DARK",
                "W4",
                "09:50",
                "10:31",
                "41m",
            ]

    async def test_an_idle_worker_raises_an_alert_kept_while_idle(
        self, console: ConsoleFactory, floor_db: Path, clock: SetClock
    ) -> None:
        app = console()
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            (idle,) = alerts_of(floor_db, IDLE_TOO_LONG, "W2")
            assert idle.details == "W2 (Bilal Khan): idle at S2 for 1 h 30 min"
            port = listener_port(app)
            await send(port, [line(AT + timedelta(minutes=5), "W2", "S2", "idle")])
            clock.advance(5 * 60)
            await settle(app, pilot)
            # Still the same alert, its text brought up to date.
            (still,) = alerts_of(floor_db, IDLE_TOO_LONG, "W2")
            assert (still.id, still.started_us, still.cleared_us) == (
                idle.id,
                idle.started_us,
                None,
            )
            assert still.details == "W2 (Bilal Khan): idle at S2 for 1 h 35 min"
            await send(port, [line(AT + timedelta(minutes=6), "W2", "S2", "working")])
            clock.advance(60)
            await settle(app, pilot)
            (ended,) = alerts_of(floor_db, IDLE_TOO_LONG, "W2")
            assert ended.cleared_us == clock.now_us


class TestViewer:
    async def test_a_viewer_reads_the_owners_alerts_and_cannot_see_rejected_lines(
        self, console: ConsoleFactory, floor_db: Path
    ) -> None:
        owner = console()
        async with owner.run_test(size=SIZE) as owner_pilot:
            await settle(owner, owner_pilot)
            await send(listener_port(owner), [b"not json"])
            viewer = console(port=listener_port(owner))
            async with viewer.run_test(size=SIZE) as pilot:
                await settle(viewer, pilot)
                assert viewer.role == "viewer"
                assert viewer.summary.alerts == owner.summary.alerts == 2
                await press_and_tick(viewer, pilot, "4")
                alerts = viewer.screen
                assert isinstance(alerts, AlertsScreen)
                with SqliteStore.open(floor_db, read_only=True) as store:
                    stored = store.alerts()
                assert table_keys(alerts.query_one("#alerts-active", DataTable)) == [
                    str(alert.id) for alert in stored
                ]

                await press_and_tick(viewer, pilot, "3")
                log = viewer.screen
                assert isinstance(log, EventLogScreen)
                assert len(log.shown_accepted) == 200
                assert log.shown_rejected == ()
                title = drawn(log.query_one("#rejected-title", Static))
                assert "read-only viewer" in title
                assert "rejected lines never reach the database" in title
                assert "read-only viewer" in drawn(log.query_one("#log-heading", Static))
        # Only the owner wrote: one row per alert, raised once.
        with SqliteStore.open(floor_db, read_only=True) as store:
            assert len(store.alerts()) == 2


class TestDrift:
    """A model whose confidence drops below its baseline, then recovers.

    W1 works at S1 from 09:00 with a sighting every 30 s at confidence 0.90: the model's first
    hour (its baseline) ends at 10:00. From 10:30 the confidence drops to 0.60. With a 5-minute
    rolling window, a 0.10 drop and a 5-minute sustain, the rolling mean is low from 10:32 on,
    so the alert fires at 10:37 and, once the confidence is back at 10:38, clears at 10:42.
    """

    @staticmethod
    def sightings(start: datetime, end: datetime, confidence: float) -> list[bytes]:
        """W1 working at S1 every 30 s in [start, end)."""
        lines = []
        moment = start
        while moment < end:
            lines.append(line(moment, "W1", "S1", "working", confidence=confidence))
            moment += timedelta(seconds=30)
        return lines

    def build(self, tmp_path: Path, clock: SetClock) -> tuple[FactoryApp, Path]:
        path = tmp_path / "drift.db"
        fill(str(path), self.sightings(at(9), at(10, 30), 0.9))
        settings = floor_settings(str(path), tick_s=60.0)
        settings.alerts = AlertSettings(
            drift_window_s=300, drift_drop=0.1, drift_sustain_s=300, baseline_s=3600
        )
        app = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)
        return app, path

    async def test_a_sustained_drop_alerts_and_recovery_clears_it(
        self, tmp_path: Path, clock: SetClock
    ) -> None:
        app, path = self.build(tmp_path, clock)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert app.summary.alerts == 0
            port = listener_port(app)

            async def run_until(minute: int, confidence: float) -> None:
                """Sightings from the clock's time up to 10:`minute`, then a tick there."""
                end = at(10, minute)
                await send(port, self.sightings(from_utc_us(clock.now_us), end, confidence))
                clock.now_us = to_utc_us(end)
                await settle(app, pilot)

            await run_until(35, 0.6)
            # Low for three minutes only: not sustained yet.
            assert alerts_of(path, CONFIDENCE_DRIFT, "yolo-v8.2") == []
            assert app.view_data is not None
            (model,) = app.view_data.alerts.drift
            assert model.baseline_confidence == 0.9
            assert model.rolling_confidence is not None
            assert round(model.rolling_confidence, 2) == 0.6
            assert not model.confidence_drifting

            await run_until(36, 0.6)
            assert alerts_of(path, CONFIDENCE_DRIFT, "yolo-v8.2") == []
            # Every window ending 10:32-10:37 is low: five minutes sustained.
            await run_until(37, 0.6)
            (alert,) = alerts_of(path, CONFIDENCE_DRIFT, "yolo-v8.2")
            assert alert.cleared_us is None
            assert alert.started_us == clock.now_us
            assert alert.details == "yolo-v8.2: mean confidence 0.60 vs baseline 0.90"
            assert app.summary.alerts == 1
            screen = await open_view(app, pilot, "4", AlertsScreen)
            drift = screen.query_one("#alerts-drift", DataTable)
            assert row_text(drift, "yolo-v8.2") == [
                "yolo-v8.2",
                "0.90",
                "0.60",
                "-0.30",
                "0.0",
                "0.0",
                "DRIFTING: confidence",
            ]

            await run_until(38, 0.6)
            await run_until(41, 0.9)
            # The window ending 10:41 still averages 0.78: the alert holds.
            assert alerts_of(path, CONFIDENCE_DRIFT, "yolo-v8.2")[0].cleared_us is None
            await run_until(42, 0.9)
            (cleared,) = alerts_of(path, CONFIDENCE_DRIFT, "yolo-v8.2")
            assert cleared.id == alert.id
            assert cleared.cleared_us == clock.now_us
            assert app.summary.alerts == 0
            assert table_keys(screen.query_one("#alerts-active", DataTable)) == []
            assert "Active: none" in drawn(screen.query_one("#active-title", Static))
