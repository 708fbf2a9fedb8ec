"""A tick's data that reaches a view before the view has mounted its widgets is kept and shown
once they are there. The console pushes a view (the Sites list a fleet opens on, a view key)
while a tick may be running in its thread; on a busy machine the tick's answer came first and
`render_data` found no widgets: NoMatches ended the console (seen in a parallel test run as
tests/tui/test_fleet.py failing about 1 run in 20, and once as a test waiting forever for a
tick of the app that had ended)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Static

from factory_tui.console.screens.sites_screen import SitesScreen
from tests.tui.fleet import fill_fleet, fleet_viewer, site_settings


@pytest.fixture
def fleet_db(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.db"
    fill_fleet(str(path))
    return path


async def test_a_tick_that_reaches_a_view_before_it_has_mounted_is_shown_once_it_has(
    fleet_db: Path,
) -> None:
    app = fleet_viewer(site_settings(str(fleet_db), "north"))
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)
        await pilot.pause()
        data = app.view_data
        assert data is not None
        assert data.fleet is not None
        screen = SitesScreen(zone=app.zone)
        mounted = app.push_screen(screen)  # on top now, its widgets not yet mounted
        assert app.screen is screen
        assert not screen.is_mounted
        screen.show(data)  # what the app does with a tick's answer for the screen on top
        await mounted
        await pilot.pause()
        heading = str(screen.query_one("#sites-heading", Static).render())
        assert f"{len(data.fleet)} sites" in heading, heading
        assert screen.shown_ids == tuple(sorted(row.site_id for row in data.fleet))
