"""The console reads our own site (`[site] id`) with the config file as edited, as `report`
does: a viewer of a database of one site and the fleet show the file's time zone and shifts,
not the description our listener stored when `serve` last started. Another site, or ours with
no config file, is shown as its box described it. Real SQLite files, real config files read by
load_settings, the console in App.run_test."""

from __future__ import annotations

import asyncio
from pathlib import Path

from factory_tui.config import Settings, load_settings
from factory_tui.console.fleet import FleetPipeline
from factory_tui.console.screens.sites_screen import SitesScreen
from factory_tui.storage import SqliteStore
from tests.tui.conftest import SetClock
from tests.tui.fleet import fill_fleet, fleet_viewer
from tests.tui.floor import AT_US, fill

# What `serve` stored when it last started: UTC, a Day shift (10:30 UTC is in it).
STORED = """\
timezone = "UTC"

[site]
id = "{site}"
name = "Old name"

[[shifts]]
name = "Day"
start = "08:00"
end = "16:00"
"""

# The config file as the user edited it since (serve not restarted): 10:30 UTC is 16:00 in
# Kolkata, inside the Late shift.
EDITED = """\
timezone = "Asia/Kolkata"

[site]
id = "{site}"

[store]
path = "{db}"

[[shifts]]
name = "Late"
start = "14:00"
end = "22:00"
"""


def one_site_db(tmp_path: Path, site: str) -> Path:
    """A database of one site, `site`, described the old way, with the fixture's events."""
    db = tmp_path / "one.db"
    fill(str(db))
    then = tmp_path / "then.toml"
    then.write_text(STORED.format(site=site))
    stored = load_settings(then, environ={})
    with SqliteStore.open(db) as base:
        base.scoped(site).describe_site(stored.site.label, stored.site_description(), AT_US)
    return db


def edited(tmp_path: Path, db: Path, site: str = "main") -> Settings:
    config = tmp_path / "shifts.toml"
    config.write_text(EDITED.format(site=site, db=db))
    return load_settings(config, environ={})


async def viewed(settings: Settings) -> tuple[str, str | None, str]:
    """(zone, window title, site name) a viewer shows over `settings`."""
    app = fleet_viewer(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)
        await pilot.pause()
        assert app.error_message is None
        assert not isinstance(app.screen, SitesScreen)
        title = app.view_data.window_title if app.view_data is not None else None
        return str(app.zone), title, app.settings.site.label


async def test_a_viewer_of_our_site_reads_the_config_file_as_edited(tmp_path: Path) -> None:
    """`factory-tui --viewer -c shifts.toml` on a database of our one site: the file's zone
    and shift (it showed UTC and Day, what serve stored), the stored name when the file has
    none."""
    db = one_site_db(tmp_path, "main")
    zone, title, name = await viewed(edited(tmp_path, db))
    assert (zone, title) == ("Asia/Kolkata", "Shift Late")
    assert name == "Old name"


async def test_a_viewer_with_no_config_file_reads_the_stored_description(
    tmp_path: Path,
) -> None:
    db = one_site_db(tmp_path, "main")
    bare = Settings.model_validate({"store": {"path": str(db)}})
    assert bare.source is None
    zone, title, _ = await viewed(bare)
    assert (zone, title) == ("UTC", "Shift Day")


async def test_a_viewer_of_another_sites_database_reads_its_description(
    tmp_path: Path,
) -> None:
    """A box's file (site north) opened with our config (site main): north as it described
    itself, whatever our file says."""
    db = one_site_db(tmp_path, "north")
    zone, title, name = await viewed(edited(tmp_path, db, site="main"))
    assert (zone, title) == ("UTC", "Shift Day")
    assert name == "Old name"


def test_the_fleet_reads_our_site_with_the_config_file(tmp_path: Path) -> None:
    """north is ours: the edited file's zone and shift (it showed UTC and Shift A, as stored);
    pune and austin as their boxes described them."""
    db = tmp_path / "fleet.db"
    fill_fleet(str(db))
    fleet = FleetPipeline(
        edited(tmp_path, db, site="north"),
        SqliteStore.open(db, read_only=True),
        clock=SetClock(),
    )
    try:
        result = fleet.tick()
        assert result is not None
        rows = {row.site_id: row for row in result.view.fleet or ()}
        assert (rows["north"].timezone, rows["north"].window_title) == (
            "Asia/Kolkata",
            "Shift Late",
        )
        assert rows["north"].name == "North plant"  # the file names none: the stored name
        assert (rows["pune"].timezone, rows["pune"].window_title) == ("Asia/Kolkata", "Shift B")
        assert (rows["austin"].timezone, rows["austin"].window_title) == (
            "America/Chicago",
            "Shift C",
        )
        assert fleet.focus == "north"
        assert fleet.settings.timezone == "Asia/Kolkata"
        assert [shift.name for shift in fleet.settings.shifts] == ["Late"]
    finally:
        fleet.close()


async def test_the_fleet_console_opens_our_floor_as_the_file_says(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    fill_fleet(str(db))
    app = fleet_viewer(edited(tmp_path, db, site="north"))
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)
        await pilot.pause()
        assert isinstance(app.screen, SitesScreen)
        rows = {row.site_id: row for row in app.view_data.fleet or ()} if app.view_data else {}
        assert rows["north"].window_title == "Shift Late"
        await pilot.press("slash", *"north", "enter")
        await pilot.press("enter")
        await pilot.pause()
        await asyncio.wait_for(app.tick_now(), 10)
        await pilot.pause()
        assert not isinstance(app.screen, SitesScreen)
        assert str(app.zone) == "Asia/Kolkata"
        assert app.view_data is not None
        assert app.view_data.window_title == "Shift Late"
