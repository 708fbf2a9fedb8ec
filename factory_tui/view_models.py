"""What the console's views show, as frozen values: the contract between the tick pipeline,
which builds them in a worker thread, and the screens and widgets, which only render them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from factory_tui.engine.drift import ModelDrift
from factory_tui.engine.natural import natural_key as natural_key  # the console imports it here
from factory_tui.engine.snapshot import (
    US_PER_S,
    Segment,
    Snapshot,
    StationMetrics,
    Window,
    WorkerMetrics,
)
from factory_tui.models import EventRecord
from factory_tui.records import AlertRecord, AuditRecord, IngestStats

OUTPUT_BUCKET_US: Final = 15 * 60 * US_PER_S
"""The output chart's finest bucket; the chart merges buckets when the terminal is narrow."""
DETAIL_EVENTS: Final = 50
"""Events listed in a worker's detail."""
LOG_EVENTS: Final = 200
"""Accepted events kept in the event log view."""
LOG_AUDIT: Final = 100
"""Audit entries kept in the event log view."""


@dataclass(frozen=True, slots=True)
class ViewNeeds:
    """What the view on top needs beyond the Snapshot (set by the UI, read by the tick)."""

    worker_id: str | None = None
    station_id: str | None = None
    event_log: bool = False
    alert_history: bool = False


@dataclass(frozen=True, slots=True)
class OutputSeries:
    """A worker's units per fixed-length bucket, from `from_us` up to the tick's `at`."""

    from_us: int
    bucket_us: int
    units: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StationVisit:
    """A worker's counted time and units at one station over the window."""

    station_id: str
    name: str
    working_s: float
    idle_s: float
    absent_s: float
    units: int
    first_us: int
    """Start of the worker's first counted stretch (or first unit) there."""
    last_us: int
    """End of the worker's last counted stretch (or last unit) there."""


@dataclass(frozen=True, slots=True)
class WorkerDetail:
    """Everything the worker detail shows about one worker."""

    worker: WorkerMetrics
    segments: tuple[Segment, ...]
    """The worker's timeline over the shift so far (engine.timeline)."""
    output: OutputSeries
    stations: tuple[StationVisit, ...]
    events: tuple[EventRecord, ...]
    """The worker's latest events, newest first (timestamp order)."""


@dataclass(frozen=True, slots=True)
class StationWorker:
    """One worker's counted time and units at a station over the window."""

    worker_id: str
    name: str
    working_s: float
    idle_s: float
    absent_s: float
    units: int
    present: bool
    """The worker is at the station now (working or idle there)."""


@dataclass(frozen=True, slots=True)
class StationDetail:
    """Everything the station timeline view shows about one station."""

    station: StationMetrics
    segments: tuple[Segment, ...]
    """Occupied ("working") and unoccupied ("unobserved") stretches over the shift so far."""
    workers: tuple[StationWorker, ...]
    """Workers with counted time or units there, most working time first."""


@dataclass(frozen=True, slots=True)
class ActionFailure:
    """An alert action that failed (`[[alerts.actions]]`), for the alerts view."""

    at_us: int
    action: str
    """`webhook https://...` or `command /path/to/program`."""
    alert: str
    """`camera_dark W3 raised`."""
    error: str


@dataclass(frozen=True, slots=True)
class AlertsState:
    """What the views show about alerts after a tick."""

    active: tuple[AlertRecord, ...]
    """Alerts not cleared yet, newest first (read from the table: the owner's view of them)."""
    drift: tuple[ModelDrift, ...]
    """Every model's drift figures at the tick's `at`."""
    history: tuple[AlertRecord, ...] | None = None
    """Recent alerts, active and cleared, newest first; None when not read this tick (they
    are only read while the alerts view is on)."""
    error: str | None = None
    """Why the alerts could not be written or read this tick (the figures may be behind)."""
    action_failures: tuple[ActionFailure, ...] = ()
    """The last alert actions that failed, newest last."""

    @property
    def count(self) -> int:
        """Number of active alerts."""
        return len(self.active)


@dataclass(frozen=True, slots=True)
class SiteRow:
    """One site's line in the fleet view: its shift so far, in its own time zone."""

    site_id: str
    name: str
    timezone: str
    window_title: str
    """The site's running shift (or day), as its floor's title says it."""
    working: int
    idle: int
    absent: int
    unobserved: int
    units: int
    throughput_uph: float | None
    avg_utilization: float | None
    alerts: int
    behind_s: float | None
    """How far the site's newest data is behind now (None: no data yet)."""


@dataclass(frozen=True, slots=True)
class ViewData:
    """One tick's data for the drill-down views."""

    snapshot: Snapshot
    shift: Window
    """The whole running shift (or day); the Snapshot's window is its part so far."""
    window_title: str
    alerts: AlertsState
    max_gap_s: float
    worker: WorkerDetail | None = None
    station: StationDetail | None = None
    events: tuple[EventRecord, ...] | None = None
    """The latest accepted events, newest first (while the event log is on)."""
    audit: tuple[AuditRecord, ...] = ()
    """The latest audit entries, newest first (while the event log is on)."""
    fleet: tuple[SiteRow, ...] | None = None
    """Every site's row, when the database holds more than one site."""
    ingest: IngestStats | None = None
    """The listener's counters and recent rejections (None in a viewer: it has no listener).
    Set on the UI thread, where the listener lives."""
