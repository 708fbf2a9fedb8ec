"""The console over many sites, without Textual: one tick pipeline per site, each with that
site's own time zone, shifts and max_gap_s, and one row of figures per site for the Sites view.
Our own site (`[site] id`) read with a config file has that file's; every other site (and ours
with no config file) what its box described (`Settings.as_read`, as `report` reads them).

A database holding more than one site (a central PostgreSQL fed by site boxes, or one SQLite
file of a small company or the demo) opens on the fleet. Every tick brings every site up to
date (so the fleet rows are live), and the site whose floor is open also gets its view data.
The sites' boxes do not forward their alerts tables, so each site's alerts are evaluated here,
in memory (`AlertKeeper(in_memory=True)`), and never written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final, TypeVar

from factory_tui.config import Settings
from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.console.health import HealthReader
from factory_tui.console.pipeline import Clock, TickPipeline, TickResult
from factory_tui.engine.snapshot import US_PER_S, Snapshot
from factory_tui.records import SiteRecord
from factory_tui.storage import Store, mask_url
from factory_tui.view_models import SiteRow, ViewData, ViewNeeds, natural_key

T = TypeVar("T")
REDISCOVER_TICKS: Final = 30
SITES_NAMED: Final = 12
"""Sites an unknown site's notice names; the rest are counted."""
"""Look for sites that appeared (a new box started forwarding) every this many ticks."""


def site_row(site: SiteRecord, settings: Settings, view: ViewData) -> SiteRow:
    """One site's line in the fleet view, from its tick."""
    snapshot: Snapshot = view.snapshot
    factory = snapshot.factory
    seen = [worker.last_seen_us for worker in snapshot.workers if worker.last_seen_us is not None]
    newest = max(seen, default=None)
    return SiteRow(
        site_id=site.id,
        name=site.name or site.id,
        timezone=settings.timezone,
        window_title=view.window_title,
        working=factory.working,
        idle=factory.idle,
        absent=factory.absent,
        unobserved=factory.unobserved,
        units=factory.units,
        throughput_uph=factory.throughput_uph,
        avg_utilization=factory.avg_utilization,
        alerts=view.alerts.count,
        behind_s=None if newest is None else max(0.0, (snapshot.at_us - newest) / US_PER_S),
    )


@dataclass(slots=True)
class _Site:
    record: SiteRecord
    pipeline: TickPipeline


class FleetPipeline:
    """Every site of one database, ticked together; `focus` is the site whose floor is shown.

    It offers what the app uses of a `TickPipeline` (`tick`, `view_for`, `needs`, `settings`,
    `close`), so the floor and every drill-down view work for the focused site unchanged.
    """

    def __init__(
        self,
        settings: Settings,
        reader: Store,
        *,
        clock: Clock,
        health: HealthReader | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_settings = settings
        self._database = mask_url(str(settings.store.location))
        self._reader = reader
        self._clock = clock
        self._health = health
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self._sites: dict[str, _Site] = {}
        self._ticks = 0
        self._discover()
        ours = settings.site.id
        self.focus = ours if ours in self._sites else next(iter(self._sites))
        """The site whose floor and views are shown (ours, or `--site`, when it is there)."""

    # --- what the app uses of a pipeline ------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The focused site's settings (its time zone, shifts, max_gap_s, roster)."""
        return self._focused().settings

    @property
    def needs(self) -> ViewNeeds:
        """What the view on top needs (for the focused site)."""
        return self._focused().needs

    @needs.setter
    def needs(self, needs: ViewNeeds) -> None:
        self._focused().needs = needs

    @property
    def store(self) -> Store | None:
        """The focused site's read-only store (None once closed)."""
        return self._focused().store

    @property
    def site_ids(self) -> tuple[str, ...]:
        """Every site, in id order."""
        return tuple(self._sites)

    def set_focus(self, site_id: str) -> None:
        """Show this site's floor from the next tick on (its view needs start empty)."""
        with self._lock:
            if site_id in self._sites:
                self._focused().needs = ViewNeeds()
                self.focus = site_id

    def tick(self, *, evaluate_alerts: bool = True) -> TickResult | None:
        """Tick every site; the focused site's result, carrying every site's row."""
        with self._lock:
            self._ticks += 1
            if self._ticks % REDISCOVER_TICKS == 0:
                self._discover()
            results: dict[str, TickResult] = {}
            for site_id, site in self._sites.items():
                result = site.pipeline.tick(evaluate_alerts=evaluate_alerts)
                if result is None:
                    return None  # closed
                results[site_id] = result
            rows = tuple(
                site_row(site.record, site.pipeline.settings, results[site_id].view)
                for site_id, site in self._sites.items()
            )
            focused = results[self.focus]
            # One machine reading per tick, not one per site.
            health = self._health() if self._health is not None else None
            return replace(focused, view=replace(focused.view, fleet=rows), health=health)

    def view_for(self, shown: ViewData, needs: ViewNeeds) -> ViewData | None:
        """What a newly opened view needs, for the focused site's frozen Snapshot."""
        with self._lock:
            return self._focused().view_for(shown, needs)

    def read(self, reader: Callable[[Store], T]) -> T | None:
        """Run `reader` on the focused site's store between two ticks (None once closed)."""
        with self._lock:
            return self._focused().read(reader)

    def close(self) -> None:
        """Close the store every site reads through (after a running tick)."""
        with self._lock:
            for site in self._sites.values():
                site.pipeline.store = None  # scoped copies: the connection is closed once
            self._reader.close()

    # --- the sites ----------------------------------------------------------------------------

    def _focused(self) -> TickPipeline:
        return self._sites[self.focus].pipeline

    def _discover(self) -> None:
        """Add a pipeline for every site not yet known (sites are never removed)."""
        for record in self._reader.sites():
            if record.id in self._sites:
                continue
            settings = self._base_settings.as_read(record, self._database)
            pipeline = TickPipeline(
                settings,
                self._reader.scoped(record.id),
                AlertKeeper(settings, None, in_memory=True),
                clock=self._clock,
                monotonic=self._monotonic,
            )
            self._sites[record.id] = _Site(record, pipeline)
        self._sites = dict(sorted(self._sites.items(), key=lambda item: natural_key(item[0])))


def unknown_site_notice(requested: str, shown: str, known: Sequence[str]) -> str | None:
    """What a console asked for a site the database does not hold (`--site`, a tab's `?site=`)
    says, naming the sites it holds and the one shown instead; None when it was there."""
    if requested == shown or requested in known:
        return None
    listed = ", ".join(known[:SITES_NAMED])
    if len(known) > SITES_NAMED:
        listed += f" and {len(known) - SITES_NAMED} more"
    return f"No site “{requested}” in this database (it holds {listed}): showing {shown}."
