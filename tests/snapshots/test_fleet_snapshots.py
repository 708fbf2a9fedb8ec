"""Screenshot of the fleet view: three sites in one database (tests/tui/fleet.py) at 10:30 UTC
on 2025-03-04, fixed machine readings, 120x40. After changing its look on purpose: run with
`--snapshot-update`, look at the SVG against the docstring, then commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from factory_tui.console.app import FactoryApp
from factory_tui.console.screens.sites_screen import SitesScreen
from tests.tui.fleet import fill_fleet, fleet_viewer, site_settings

SnapCompare = Callable[..., bool]


async def first_tick(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, FactoryApp)
    await asyncio.wait_for(app.tick_now(), 10)
    await pilot.pause()
    assert isinstance(app.screen, SitesScreen)


class TestFleet:
    def test_sites_view(self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """Title "factory-tui — viewer (read-only)" (no site is open on the Sites list);
        heading "Sites · 3 sites · 125 units · 3 alerts · sort site", under it the dim legend
        "W I A U: workers working, idle, absent, unobserved now · Age: since last event";
        three rows, the cursor on austin: austin Austin
        Shift C (04:30 in Chicago), W I A U "1 0 0 0", age 15m (its camera's last heartbeat was
        10:15, the limit of max_gap), 0 alerts; north North plant Shift A, the fixture morning:
        W I A U "2 1 1 2", 106 units, 23.6 units/h, 93%, 2 alerts;
        pune Pune Shift B (16:00 in Kolkata), "1 1 0 0", 19 units, 1 alert (the idle
        worker). The footer shows esc Floor, / Filter, s Sort, the views and 0 Sites."""
        path = tmp_path / "fleet.db"
        fill_fleet(str(path))
        app = fleet_viewer(site_settings(str(path), "north"))
        assert snap_compare(app, terminal_size=(120, 40), run_before=first_tick)
