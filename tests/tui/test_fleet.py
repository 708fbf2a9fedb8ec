"""The console over a database of several sites: the fleet pipeline without Textual, and the
Sites view driven with the pilot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import DataTable

from factory_tui.config import Settings
from factory_tui.console.app import make_app
from factory_tui.console.fleet import FleetPipeline
from factory_tui.console.health import fixed_health
from factory_tui.console.screens.sites_screen import SitesScreen, data_age
from factory_tui.console.screens.view_screen import ViewScreen
from factory_tui.console.screens.worker_detail_screen import WorkerDetailScreen
from factory_tui.models import parse_event
from factory_tui.storage import SqliteStore
from tests.tui.conftest import READING, SetClock
from tests.tui.fleet import fill_fleet, fleet_viewer, site_lines, site_settings
from tests.tui.floor import AT_US


@pytest.fixture
def fleet_db(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.db"
    fill_fleet(str(path))
    return path


def test_every_site_has_its_row_in_its_own_zone_and_shift(fleet_db: Path) -> None:
    settings = site_settings(str(fleet_db), "north")
    fleet = FleetPipeline(settings, SqliteStore.open(fleet_db, read_only=True), clock=SetClock())
    try:
        result = fleet.tick()
        assert result is not None
        rows = {row.site_id: row for row in result.view.fleet or ()}
        assert list(rows) == ["austin", "north", "pune"]
        assert rows["north"].window_title == "Shift A"  # 10:30 UTC
        assert rows["pune"].window_title == "Shift B"  # 16:00 in Kolkata
        assert rows["austin"].window_title == "Shift C"  # 04:30 in Chicago
        assert (rows["pune"].working, rows["pune"].idle) == (1, 1)
        assert rows["pune"].units == 19  # one every 6 minutes, 08:36 to 10:24
        assert rows["austin"].behind_s == pytest.approx(15 * 60)  # last heartbeat 10:15
        assert rows["north"].name == "North plant"
        # The floor shown first is our own site's (the settings'); another site on request.
        assert fleet.focus == "north"
        fleet.set_focus("pune")
        pune = fleet.tick()
        assert pune is not None
        assert [w.name for w in pune.view.snapshot.workers] == ["Ravi Kumar", "Priya Nair"]
        assert fleet.settings.timezone == "Asia/Kolkata"
    finally:
        fleet.close()


def test_a_site_gone_quiet_raises_its_alert_in_the_fleet(fleet_db: Path) -> None:
    """Austin's only camera went dark at 10:20: at 10:40 its row counts the dark camera, which
    this console evaluated itself (site boxes do not forward their alerts)."""
    settings = site_settings(str(fleet_db), "north")
    clock = SetClock()
    clock.advance(10 * 60)
    fleet = FleetPipeline(settings, SqliteStore.open(fleet_db, read_only=True), clock=clock)
    try:
        result = fleet.tick()
        assert result is not None
        rows = {row.site_id: row for row in result.view.fleet or ()}
        assert rows["austin"].alerts >= 1
        assert rows["austin"].unobserved == 1
    finally:
        fleet.close()


def test_data_age_reads_like_a_clock() -> None:
    assert data_age(None) == "—"
    assert data_age(12.4) == "12s"
    assert data_age(600) == "10m"
    assert data_age(3 * 3600 + 5 * 60) == "3h05m"


async def test_the_console_opens_on_the_sites_and_enter_opens_a_floor(fleet_db: Path) -> None:
    settings = site_settings(str(fleet_db), "north")
    app = fleet_viewer(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.tick_now()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SitesScreen)
        assert screen.shown_ids == ("austin", "north", "pune")
        assert "site" not in app.sub_title  # on the Sites list no site is open
        await pilot.press("s", "s", "s")  # by units/h, highest first
        assert screen.data is not None
        by_rate = {row.site_id: row.throughput_uph or 0.0 for row in screen.data.fleet or ()}
        assert list(screen.shown_ids) == sorted(by_rate, key=lambda site: -by_rate[site])
        await pilot.press("slash", *"pune", "enter")
        assert screen.shown_ids == ("pune",)
        await pilot.press("enter")
        await pilot.pause()
        await app.tick_now()
        await pilot.pause()
        assert not isinstance(app.screen, SitesScreen)
        assert "site Pune" in app.sub_title
        names = {worker.name for worker in app.snapshot.workers} if app.snapshot else set()
        assert names == {"Ravi Kumar", "Priya Nair"}
        await pilot.press("enter")  # the first tile: a worker's detail, in Kolkata time
        await pilot.pause()
        assert isinstance(app.screen, WorkerDetailScreen)
        assert str(app.screen.zone) == "Asia/Kolkata"
        await pilot.press("0")
        await pilot.pause()
        assert isinstance(app.screen, SitesScreen)
        assert "site" not in app.sub_title


async def test_one_site_keeps_todays_start(tmp_path: Path) -> None:
    """A database of one site opens on its tiles, with no Sites key."""
    from tests.tui.floor import fill, floor_settings

    path = tmp_path / "one.db"
    fill(str(path))
    app = fleet_viewer(floor_settings(str(path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.tick_now()
        await pilot.press("0")
        await pilot.pause()
        assert not isinstance(app.screen, SitesScreen)
        assert app.check_action("show_view", ("sites",)) is False


async def test_demo_sites_feeds_three_sites_into_one_database(tmp_path: Path) -> None:
    """`demo --sites 3`'s parts: three sites described up front, fed by their own listeners
    (the first is the console's), and the console opens on all three with data."""
    from factory_tui.commands.demo import demo_settings
    from factory_tui.commands.demo_sites import describe_sites, fleet_feeder, fleet_settings

    path = tmp_path / "demo.db"
    base = demo_settings(port=0)
    base = base.model_copy(update={"store": base.store.model_copy(update={"path": path})})
    sites = fleet_settings(base, 3)
    assert [site.site.id for site in sites] == ["north", "pune", "austin"]
    assert len({site.timezone for site in sites}) == 3
    describe_sites(path, sites)
    clock, feeder = fleet_feeder(sites, speed=60, seed=1)
    app = make_app(
        sites[0], clock=clock.now_us, feeder=feeder, animations=False, health=fixed_health(READING)
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.services.feed_caught_up.wait(), 60)
        await app.tick_now()
        await pilot.pause()
        assert isinstance(app.screen, SitesScreen)
        rows = {row.site_id: row for row in app.view_data.fleet or ()} if app.view_data else {}
        assert set(rows) == {"north", "pune", "austin"}
        assert all(row.behind_s is not None for row in rows.values())
        await pilot.press("q")
    with SqliteStore.open(path, read_only=True) as store:
        counts = {site.id: store.scoped(site.id).count_events() for site in store.sites()}
    assert set(counts) == {"north", "pune", "austin"}
    assert all(count > 0 for count in counts.values())


async def test_a_chosen_site_opens_on_its_floor(fleet_db: Path) -> None:
    """`factory-tui --db fleet.db --site pune`: pune's tiles, the Sites list a key away."""
    settings = site_settings(str(fleet_db), "north").for_site("pune", "", {})
    app = make_app(
        settings,
        clock=SetClock(),
        health=fixed_health(READING),
        role="viewer",
        animations=False,
        site_chosen=True,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)
        await pilot.pause()
        assert not isinstance(app.screen, SitesScreen)
        assert "site Pune" in app.sub_title
        await pilot.press("0")
        await pilot.pause()
        assert isinstance(app.screen, SitesScreen)


@pytest.mark.parametrize("view", ["stations", "alerts", "events"])
async def test_a_start_view_opens_over_the_chosen_site(fleet_db: Path, view: str) -> None:
    """`--view stations --site pune` on a fleet (a wall screen's `?view=stations&site=pune`):
    that site's view, directly, not a crash on the Sites list's header."""
    settings = site_settings(str(fleet_db), "north").for_site("pune", "", {})
    app = make_app(
        settings,
        clock=SetClock(),
        health=fixed_health(READING),
        role="viewer",
        view=view,  # type: ignore[arg-type]
        animations=False,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)  # it used to crash before starting
        await pilot.pause()
        assert app.error_message is None
        assert isinstance(app.screen, ViewScreen)
        assert view == app.screen.VIEW
        assert "site Pune" in app.sub_title
        assert str(app.zone) == "Asia/Kolkata"
        await pilot.press("0")  # the Sites list is still a key away
        await pilot.pause()
        assert isinstance(app.screen, SitesScreen)


@pytest.mark.parametrize("site", [None, "pune"])
async def test_a_viewer_reads_a_database_of_one_other_site_as_that_site(
    tmp_path: Path, site: str | None
) -> None:
    """`pune.db` written by pune's box, opened without its config (`--viewer`, with or without
    `--site pune`): pune's floor, in its own zone, shifts and max_gap_s (as `report` reads it)."""
    path = tmp_path / "pune.db"
    pune = site_settings(str(path), "pune")
    description = {**pune.site_description(), "max_gap_s": 600}
    with SqliteStore.open(path) as base:
        store = base.scoped("pune")
        store.describe_site(pune.site.label, description, AT_US)
        store.upsert_roster(pune.roster_workers(), pune.roster_workstations())
        store.insert_batch([parse_event(raw) for raw in site_lines("pune")], AT_US)
    data: dict[str, object] = {"store": {"path": str(path)}}
    if site is not None:
        data["site"] = {"id": site}
    app = fleet_viewer(Settings.model_validate(data))
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)
        await pilot.pause()
        assert app.error_message is None
        assert app.pipeline is not None
        assert app.pipeline.settings.site.id == "pune"
        assert app.pipeline.settings.timezone == "Asia/Kolkata"
        assert app.pipeline.settings.metrics.max_gap_s == 600
        assert app.view_data is not None
        assert app.view_data.window_title == "Shift B"  # 16:00 in Kolkata, not "Day"
        names = {worker.name for worker in app.snapshot.workers} if app.snapshot else set()
        assert names == {"Ravi Kumar", "Priya Nair"}


async def test_a_fleet_sites_alerts_view_lists_each_held_alert(fleet_db: Path) -> None:
    """A fleet's alerts are held in memory, without the table's ids: each one still gets its
    row (they all had the key "0", and a second alert ended the console)."""
    clock = SetClock()
    clock.advance(20 * 60)  # every camera of north and austin quiet for a while
    app = make_app(
        site_settings(str(fleet_db), "north"),
        clock=clock,
        health=fixed_health(READING),
        role="viewer",
        view="alerts",
        animations=False,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)
        await app.tick_now()
        await pilot.pause()
        assert app.error_message is None
        assert app.view_data is not None
        assert app.view_data.alerts.count > 1
        table = app.screen.query_one("#alerts-active", DataTable)
        assert table.row_count == app.view_data.alerts.count
