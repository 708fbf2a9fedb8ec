"""`factory-tui demo --sites N`: several simulated sites in one demo database, seen as a fleet.

Each site has its own roster (names, size), time zone and listener; they all write into
`factory-demo.db` (one SQLite file can hold several sites, as a small company's central box
does), and the console opens on the Sites view. The first site's listener is the console's own
(its usual demo port); the others listen on free ports and are started, fed and stopped by the
feeder the console runs, so one `q` ends everything in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from factory_tui.config import Settings, demo_data
from factory_tui.models import from_utc_us, now_us, to_utc_us
from factory_tui.storage import open_store

if TYPE_CHECKING:
    from factory_tui.console.services import Feeder, SubmitLines
    from factory_tui.ingest.simulator import SimClock


@dataclass(frozen=True, slots=True)
class DemoSite:
    """One simulated site."""

    id: str
    name: str
    timezone: str
    workers: tuple[str, ...]
    stations: int


DEMO_SITES: Final = (
    DemoSite(
        "north",
        "North plant",
        "Europe/Berlin",
        ("Ana Silva", "Bilal Khan", "Chen Wei", "Dana Novak", "Emeka Obi", "Freya Lind"),
        6,
    ),
    DemoSite(
        "pune",
        "Pune",
        "Asia/Kolkata",
        (
            "Ravi Kumar",
            "Priya Nair",
            "Arjun Rao",
            "Meera Iyer",
            "Kiran Das",
            "Sunita Patil",
            "Vikram Shah",
            "Anjali Gupta",
        ),
        5,
    ),
    DemoSite(
        "austin",
        "Austin",
        "America/Chicago",
        ("Sam Ortiz", "Jordan Lee", "Maria Lopez", "Tyler Brooks"),
        3,
    ),
    DemoSite(
        "sendai",
        "Sendai",
        "Asia/Tokyo",
        ("Haruto Sato", "Yui Suzuki", "Ren Takahashi", "Aoi Tanaka", "Sota Ito"),
        4,
    ),
    DemoSite(
        "leeds",
        "Leeds",
        "Europe/London",
        (
            "Olivia Smith",
            "Harry Jones",
            "Amelia Brown",
            "George Wilson",
            "Isla Evans",
            "Jack Taylor",
            "Mia Davies",
        ),
        5,
    ),
)
MAX_SITES: Final = len(DEMO_SITES)


def site_settings(base: Settings, site: DemoSite, *, port: int) -> Settings:
    """The demo settings of one site: its id, name, zone and roster, the shared demo file."""
    data: dict[str, Any] = base.model_dump(exclude={"source"})
    data["site"] = {"id": site.id, "name": site.name}
    data["timezone"] = site.timezone
    data["workers"] = [{"id": f"W{n}", "name": name} for n, name in enumerate(site.workers, 1)]
    data["workstations"] = [
        {"id": f"S{n}", "name": f"Cell {n}"} for n in range(1, site.stations + 1)
    ]
    data["ingest"] = {**data["ingest"], "port": port}
    return Settings.model_validate(data)


def fleet_settings(demo: Settings, count: int) -> list[Settings]:
    """The settings of the first `count` demo sites; the first listens on the demo's port."""
    if not 2 <= count <= MAX_SITES:
        raise ValueError(f"--sites takes 2 to {MAX_SITES}, got {count}")
    base = Settings.model_validate({**demo_data(), "store": {"path": str(demo.store.path)}})
    return [
        site_settings(base, site, port=demo.ingest.port if index == 0 else 0)
        for index, site in enumerate(DEMO_SITES[:count])
    ]


def describe_sites(path: Path, sites: Sequence[Settings]) -> None:
    """Write every site's description and roster first, so the console opens on the fleet."""
    for settings in sites:
        with open_store(path, site=settings.site.id) as store:
            store.describe_site(settings.site.label, settings.site_description(), now_us())
            store.upsert_roster(settings.roster_workers(), settings.roster_workstations())


def fleet_feeder(sites: Sequence[Settings], *, speed: float, seed: int) -> tuple[SimClock, Feeder]:
    """One simulated clock for every site, and a feeder that runs each site's cameras into its
    own listener: the first site's is the console's (the `submit` it is handed), the others
    are started here and stopped when the feed stops."""
    from factory_tui.ingest.listener import Listener
    from factory_tui.ingest.simulator import CameraFleet, SimClock, fleet_config_for, run_fleet

    clock = SimClock(now_us(), speed)
    now = clock.now_us()
    plans: list[tuple[Settings, CameraFleet, int]] = []
    for number, settings in enumerate(sites):
        fleet = CameraFleet(
            settings.roster_workers(),
            settings.roster_workstations(),
            seed=seed + number,
            config=fleet_config_for(settings, now),
        )
        window_start = to_utc_us(settings.current_window(from_utc_us(now))[0])
        plans.append((settings, fleet, min(now, window_start)))

    async def feed(submit: SubmitLines, stop: asyncio.Event, caught_up: asyncio.Event) -> object:
        listeners = [Listener(settings) for settings, _, _ in plans[1:]]
        for listener in listeners:
            await listener.start()
        submits = [submit, *(listener.submit for listener in listeners)]
        ready = [asyncio.Event() for _ in plans]
        runs = [
            asyncio.create_task(
                run_fleet(fleet, clock, send, stop=stop, from_us=start, caught_up=flag),
                name=f"demo site {settings.site.id}",
            )
            for (settings, fleet, start), send, flag in zip(plans, submits, ready, strict=True)
        ]

        async def all_caught_up() -> None:
            await asyncio.gather(*(flag.wait() for flag in ready))
            caught_up.set()

        watcher = asyncio.create_task(all_caught_up())
        try:
            return await asyncio.gather(*runs)
        finally:
            watcher.cancel()
            for listener in listeners:
                await listener.stop()

    return clock, feed
