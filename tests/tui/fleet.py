"""Three sites in one database, for the fleet view's tests: the fixture morning (floor.py) at
`north` (UTC), a smaller floor at `pune` (Asia/Kolkata, 16:00 local at the console's 10:30 UTC:
shift B) and one at `austin` (America/Chicago, 04:30 local: shift C), each with its own roster
in which the worker ids repeat (W1 is a different person at each site)."""

from __future__ import annotations

from datetime import timedelta

from factory_tui.config import Settings
from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.models import RosterEntry, parse_event
from factory_tui.storage import SqliteStore
from tests.tui.conftest import READING, SetClock
from tests.tui.floor import AT, AT_US, at, floor_lines, floor_settings, spell, units

SITES = {
    "north": ("North plant", "UTC"),
    "pune": ("Pune", "Asia/Kolkata"),
    "austin": ("Austin", "America/Chicago"),
}
ROSTERS = {
    "pune": [("W1", "Ravi Kumar"), ("W2", "Priya Nair")],
    "austin": [("W1", "Sam Ortiz")],
}


def site_lines(site_id: str) -> list[bytes]:
    """Each site's events up to 10:30 UTC."""
    if site_id == "north":
        return floor_lines()
    if site_id == "pune":
        return [
            *spell("W1", "S1", "working", at(8, 30), AT),
            *units("W1", "S1", at(8, 30), AT, timedelta(minutes=6)),
            *spell("W2", "S2", "idle", at(9), AT),
        ]
    return [*spell("W1", "S1", "working", at(10), at(10, 20))]  # austin: went quiet at 10:20


def site_settings(path: str, site_id: str) -> Settings:
    """The settings of one site's box (its id, name, zone and roster)."""
    base = floor_settings(path)
    name, zone = SITES[site_id]
    data = base.model_dump(exclude={"source"})
    data["site"] = {"id": site_id, "name": name}
    data["timezone"] = zone
    if site_id in ROSTERS:
        data["workers"] = [{"id": i, "name": n} for i, n in ROSTERS[site_id]]
        data["workstations"] = [{"id": "S1", "name": "Line 1"}, {"id": "S2", "name": "Line 2"}]
    return Settings.model_validate(data)


def fill_fleet(path: str) -> None:
    """Store every site's roster, description and events, as their listeners would."""
    with SqliteStore.open(path) as base:
        for site_id in SITES:
            settings = site_settings(path, site_id)
            store = base.scoped(site_id)
            store.describe_site(settings.site.label, settings.site_description(), AT_US)
            store.upsert_roster(settings.roster_workers(), settings.roster_workstations())
            store.insert_batch([parse_event(raw) for raw in site_lines(site_id)], AT_US)


__all__ = ["SITES", "RosterEntry", "fill_fleet", "site_settings"]


def fleet_viewer(settings: Settings) -> FactoryApp:
    """A console viewing the database of `settings` (a fleet's, usually), on a fixed clock and
    health reading, without animations."""
    return make_app(
        settings, clock=SetClock(), health=fixed_health(READING), role="viewer", animations=False
    )
