"""Screenshots of the console, compared with the approved SVGs in __snapshots__/.

Every screen is the fixture morning (tests/tui/floor.py) at 10:30 on 2025-03-04 with fixed
machine readings, so the pictures only change when the console's look changes. After changing
the look on purpose: run with `--snapshot-update`, open snapshot_report.html or the SVGs, and
check each picture against its test's docstring before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from factory_tui.config import Settings
from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.records import HealthReading
from factory_tui.widgets.worker_grid import ListenAddress
from tests.tui.conftest import READING, ConsoleFactory, SetClock

SnapCompare = Callable[..., bool]


async def first_tick(pilot: Pilot[None]) -> None:
    """Wait until the first Snapshot is on screen."""
    app = pilot.app
    assert isinstance(app, FactoryApp)
    await app.tick_now()
    await pilot.pause()


class TestMainScreen:
    def test_dark_80x24(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """Title "factory-tui — console"; a green LIVE marker, Shift A 4h30m of 8h00m, 2 working,
        1 idle, 1 absent, 2 unobserved, 106 units, a red "2 alerts" chip (W2 idle since 09:00,
        W4's camera dark since 09:40) without "press 4" (it would take a fourth line) beside
        "sort name": the bar keeps three lines; the health badge CPU 23% RAM 41% RSS 95 MB OK;
        three columns of tiles, Ana Silva's (W1) drawn heavy as the cursor; the third row is
        cut by the footer (the grid scrolls); the footer lists the keys, the view keys as one
        "1234 Views" item."""
        assert snap_compare(console(), terminal_size=(80, 24), run_before=first_tick)

    def test_light_80x24(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """The same screen in the light theme: every state label still readable, the state
        also written as a word."""
        assert snap_compare(
            console(theme="textual-light"), terminal_size=(80, 24), run_before=first_tick
        )

    def test_dark_120x40(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """Summary in two lines; four tiles per row over two rows: W4 Dana Novak UNOBSERVED
        (last S4 Inspection, 55m ago), W6 Freya Lind UNOBSERVED and not seen, W2 IDLE, W3
        ABSENT, W1 and W5 WORKING with full activity sparklines."""
        assert snap_compare(console(), terminal_size=(120, 40), run_before=first_tick)

    def test_light_120x40(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """The 120x40 screen in the light theme."""
        assert snap_compare(
            console(theme="textual-light"), terminal_size=(120, 40), run_before=first_tick
        )


class TestFilter:
    def test_typing_a_filter_80x24(
        self, snap_compare: SnapCompare, console: ConsoleFactory
    ) -> None:
        """The filter field under the summary holds "working"; only Ana Silva (W1) and Emeka
        Obi (W5) are shown; the summary keeps its 3 lines, abbreviated (`23.6/h`, `util`), and
        ends /“working” 2/6."""
        assert snap_compare(
            console(),
            terminal_size=(80, 24),
            run_before=first_tick,
            press=["slash", *"working"],
        )

    def test_filter_applied_120x40(
        self, snap_compare: SnapCompare, console: ConsoleFactory
    ) -> None:
        """After enter the field stays visible with "s3" and the grid has the keys: one tile,
        Chen Wei (W3) ABSENT at S3 Soldering, drawn heavy as the cursor."""
        assert snap_compare(
            console(),
            terminal_size=(120, 40),
            run_before=first_tick,
            press=["slash", "s", "3", "enter"],
        )


class TestPaused:
    def test_paused_80x24(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """An amber PAUSED marker replaces LIVE; the bar keeps its three lines, so the "as of"
        gives way (the title reads "factory-tui — console · PAUSED", the footer has space)."""
        assert snap_compare(
            console(), terminal_size=(80, 24), run_before=first_tick, press=["space"]
        )

    def test_paused_light_120x40(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """The paused screen in the light theme at 120x40: "as of 10:30:00" (short of "space
        resumes", to keep the bar at two lines)."""
        assert snap_compare(
            console(theme="textual-light"),
            terminal_size=(120, 40),
            run_before=first_tick,
            press=["space"],
        )


class TestNavigation:
    def test_sorted_by_units_with_the_cursor_moved(
        self, snap_compare: SnapCompare, console: ConsoleFactory
    ) -> None:
        """Sort is "units ↓": W5 (41), W1 (26), W3 (19), W2 (11) on the first row, W4 and W6
        on the second; the cursor (heavy border) is on W3, two to the right of the first."""
        assert snap_compare(
            console(),
            terminal_size=(120, 40),
            run_before=first_tick,
            press=["s", "s", "right", "right"],
        )

    def test_help_80x24(self, snap_compare: SnapCompare, console: ConsoleFactory) -> None:
        """The Keys box over the dimmed console lists / esc s space t arrows enter ? q with
        what they do, then two notes on the tiles and the averages."""
        assert snap_compare(
            console(), terminal_size=(80, 24), run_before=first_tick, press=["question_mark"]
        )


class TestEmptyFloor:
    def test_roster_but_no_events_yet(
        self, snap_compare: SnapCompare, console: ConsoleFactory, tmp_path: Path
    ) -> None:
        """A database with no events: six UNOBSERVED tiles, each "not seen", util and UPH
        as dashes, 0 units; the summary shows 0 working and 6 unobserved."""
        assert snap_compare(
            console(db=tmp_path / "empty.db"), terminal_size=(80, 24), run_before=first_tick
        )

    def test_first_run_no_config_80x24(
        self, snap_compare: SnapCompare, tmp_path: Path, clock: SetClock
    ) -> None:
        """No config and an empty database: no tiles and no invented names; the summary says
        Day 2025-03-04 and 0 of everything; the grid says "No workers yet.", that cameras send
        to 127.0.0.1:7878 (no token needed), that with no roster unknown ids (W1 below too) are
        rejected unless --auto-register / [ingest] auto_register = true or a roster from
        factory-tui init, then the example in three lines the shell joins (echo '{...W1",'
        and a backslash, '"workstation_id"...0.9}' |, factory-tui send -p 7878 -) stamped
        2025-03-04T10:30Z,
        and that factory-tui demo shows a simulated floor."""
        settings = Settings.model_validate(
            {"store": {"path": str(tmp_path / "factory.db")}, "ingest": {"port": 0}}
        )
        app = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)

        async def first_tick_on_7878(pilot: Pilot[None]) -> None:
            await first_tick(pilot)
            # The listener took a free port; the picture shows the default one.
            app.grid.listening = ListenAddress("127.0.0.1", 7878, False, False)
            await pilot.pause()

        assert snap_compare(app, terminal_size=(80, 24), run_before=first_tick_on_7878)


class TestHealthAndColour:
    def test_a_red_health_reading_80x24(
        self, snap_compare: SnapCompare, console: ConsoleFactory
    ) -> None:
        """The dark 80x24 screen with the machine at CPU 95%: the health badge reads CPU 95%
        RAM 41% RSS 95 MB in red, with the word CRIT (reversed) where OK stands; the rest
        of the screen is unchanged."""
        hot = HealthReading(cpu_percent=95.0, ram_percent=41.0, rss_bytes=95_000_000)
        assert snap_compare(
            console(health=fixed_health(hot)), terminal_size=(80, 24), run_before=first_tick
        )

    def test_a_low_database_disk_80x24(
        self, snap_compare: SnapCompare, console: ConsoleFactory
    ) -> None:
        """The dark 80x24 screen with the database's disk 6 % free: the health badge reads CPU
        23% RAM 41%, then DSK 94% in place of the RSS, in amber, with the word DISK (reversed)
        where OK stands; the rest of the screen is unchanged."""
        low = HealthReading(
            cpu_percent=23.0, ram_percent=41.0, rss_bytes=95_000_000, disk_free_percent=6.0
        )
        assert snap_compare(
            console(health=fixed_health(low)), terminal_size=(80, 24), run_before=first_tick
        )

    def test_no_color_80x24(
        self, snap_compare: SnapCompare, console: ConsoleFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """NO_COLOR set: the 80x24 screen in black, white and greys only (no green LIVE, no
        red alerts chip, no coloured state labels), and every state still readable as a word:
        LIVE, WORKING, IDLE, ABSENT, UNOBSERVED, OK; Ana Silva's tile still drawn heavy."""
        monkeypatch.setenv("NO_COLOR", "1")  # Textual reads it when the App is built
        app = console()
        assert app.no_color
        assert snap_compare(app, terminal_size=(80, 24), run_before=first_tick)
