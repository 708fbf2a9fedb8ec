"""Screenshots of the drill-down views, compared with the approved SVGs in __snapshots__/.

Every view is the fixture morning (tests/tui/floor.py) at 10:30 on 2025-03-04 with fixed
machine readings, at 120x40. After changing a view's look on purpose: run with
`--snapshot-update`, open snapshot_report.html or the SVGs, and check each picture against its
test's docstring before committing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from textual.pilot import Pilot

from factory_tui.console.app import FactoryApp
from factory_tui.console.screens.view_screen import ViewScreen
from tests.tui.conftest import ConsoleFactory

SnapCompare = Callable[..., bool]
SIZE = (120, 40)
TICK_TIMEOUT_S = 10.0


def open_view(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Wait for the first tick, press `keys`, then wait until the view on top has its data."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, FactoryApp)
        await asyncio.wait_for(app.tick_now(), TICK_TIMEOUT_S)
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()
        # The view's own data comes with the tick that runs once the view is on top.
        await asyncio.wait_for(app.tick_now(), TICK_TIMEOUT_S)
        await pilot.pause()
        assert isinstance(app.screen, ViewScreen)

    return run_before


class TestWorkerDetail:
    def test_idle_worker(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """Bilal Khan W2 with an amber IDLE badge "at S2 Assembly 2 · last event 5m ago · Shift
        A, as of 10:30:00". The output chart (15-minute buckets, peak "4 u/h") has blue bars
        from 06:15 to 09:00 and a grey zero line before and after them up to 10:30; below, on
        the same columns, the timeline: "S2" where the station run starts, two grey · (06:00 to
        06:10), green █ working up to 09:00, amber ▒ idle up to the ▲ at 10:30, blank after;
        the axis labelled every half hour 06:00..13:30 and the legend. Metrics beside Stations
        visited, neither wrapped nor cut: Active 2h50m, Idle 1h30m, Absent 0m, Unobserved 10m,
        Utilization 65%, Units 11, UPH 3.9, Confidence 0.90, Events 63, each with its
        definition; S2 Assembly 2 working 2h50m, idle 1h30m, absent 0m, 11 units, 06:10–10:30.
        Then "Last 50 events, newest first" from the 10:25:00 idle heartbeat down, cut by the
        footer (the page scrolls)."""
        assert snap_compare(console(), terminal_size=SIZE, run_before=open_view("right", "enter"))


class TestStations:
    def test_stations_table(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """Heading "Stations · Shift A so far · 6 stations · as of 10:30:00 · sort station";
        one row per station with name, occupied time, utilization, units, units/h and who is
        present: S1 Assembly 1 4h25m 98% 26 5.8 Ana Silva (the cursor row); S2 Assembly 2 2h50m
        63% 11 Bilal Khan; S3 Soldering and S4 Inspection nobody (—); S5 Packing 3h30m 78% 41
        9.1 Emeka Obi; S6 Rework 0m 0% 0 0.0. The footer shows esc Workers and s Sort."""
        assert snap_compare(console(), terminal_size=SIZE, run_before=open_view("2"))

    def test_station_detail(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """S2 Assembly 2 · Shift A so far, as of 10:30:00; a dim second line "occupied 2h50m
        (63%) · 11 units · 2.4 units/h · present now: Bilal Khan". The timeline has no station row:
        green █ occupied from 06:10 to 09:00, grey · not occupied before and after it up to the
        ▲ at 10:30 (W2 is idle there: idle does not occupy), blank after; the legend says
        occupied and not occupied. The workers table, full width, has one row: W2 Bilal Khan,
        working 2h50m, idle 1h30m, absent 0m, 11 units, "here"."""
        assert snap_compare(
            console(), terminal_size=SIZE, run_before=open_view("2", "down", "enter")
        )


class TestEventLog:
    def test_event_log(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """Heading "Event log · 0.0 ev/s · since start: accepted 0 · duplicates 0 · rejected 0 ·
        0 connected now"; "Accepted events, newest first (last 200)": the last
        stored line first, W5's low-confidence (0.41) working event stamped 10:02:00, then W5's
        product counts of 10:25, 10:20 and so on; every row received 10:30:00, model
        yolo-v8.2, camera —. The rejected table below is empty and titled "(last 0; 0 since
        start)"; under it "Audit trail, newest first (last 0)" on one line over an empty table
        with columns At, What, Peer, Detail."""
        assert snap_compare(console(), terminal_size=SIZE, run_before=open_view("3"))


class TestAlerts:
    def test_alerts_view(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """Heading "Alerts · 2 active · as of 10:30:00" and two dim lines of thresholds. Active
        (2): CAMERA DARK W4 since 09:50 (last event 09:35 + 15 min) for 40m, "W4 (Dana Novak):
        no event for 55 min", the cursor row; IDLE TOO LONG W2 since 09:15 (idle from 09:00 +
        15 min) for 1h15m, "W2 (Bilal Khan): idle at S2 for 1 h 30 min". Model drift:
        yolo-v8.2, baseline 0.90, now 0.91, +0.01, 13.0 and 18.0 units/h, ok. Recent alerts,
        newest first: the same two, both "active". Footer: esc Back, h Report, r Retrain."""
        assert snap_compare(console(), terminal_size=SIZE, run_before=open_view("4"))
