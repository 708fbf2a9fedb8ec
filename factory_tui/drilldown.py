"""What the drill-down views show, built in the console's tick thread from the engine and store.

The app's tick computes a `ViewData` for whichever view is on top (`ViewNeeds` says which, and
about whom): the views themselves only render these frozen values. Everything here is a
function of the engine, the store and the instant passed in — no Textual, no clock reads.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Final

from factory_tui.alerting import AlertsState
from factory_tui.engine import Engine
from factory_tui.engine.snapshot import (
    US_PER_S,
    Segment,
    Snapshot,
    StationMetrics,
    Window,
    WorkerMetrics,
)
from factory_tui.ingest.server import IngestStats
from factory_tui.models import EventRecord
from factory_tui.store import Store

OUTPUT_BUCKET_US: Final = 15 * 60 * US_PER_S
"""The output chart's finest bucket; the chart merges buckets when the terminal is narrow."""
DETAIL_EVENTS: Final = 50
"""Events listed in a worker's detail."""
LOG_EVENTS: Final = 200
"""Accepted events kept in the event log view."""


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
    ingest: IngestStats | None = None
    """The listener's counters and recent rejections (None in a viewer: it has no listener).
    Set on the UI thread, where the listener lives."""


def worker_detail(
    engine: Engine, store: Store, snapshot: Snapshot, shift: Window, worker_id: str
) -> WorkerDetail | None:
    """The detail of one worker at the Snapshot's `at` (None when it is not in the Snapshot)."""
    worker = snapshot.worker(worker_id)
    if worker is None:
        return None
    at_us = snapshot.at_us
    window = snapshot.window
    segments = engine.timeline(worker_id, shift, at_us)
    end = window.instants_end(at_us)
    rows = store.db.conn.execute(
        "SELECT workstation_id, (ts_us - ?) / ?, sum(count), min(ts_us), max(ts_us) "
        "FROM events WHERE worker_id = ? AND event_type = 'product_count' "
        "AND ts_us >= ? AND ts_us < ? AND id <= ? GROUP BY 1, 2",
        # Up to the engine's cursor: rows stored since this tick's read are not in the
        # Snapshot, and the chart must not count more units than the heading.
        (window.from_us, OUTPUT_BUCKET_US, worker_id, window.from_us, end, engine.cursor),
    ).fetchall()
    buckets = max(0, -(-(end - window.from_us) // OUTPUT_BUCKET_US))
    per_bucket = [0] * buckets
    station_units: defaultdict[str, int] = defaultdict(int)
    unit_span: dict[str, tuple[int, int]] = {}
    for station_id, bucket, units, first, last in rows:
        per_bucket[bucket] += units
        station_units[station_id] += units
        low, high = unit_span.get(station_id, (first, last))
        unit_span[station_id] = (min(low, first), max(high, last))
    stations = _visits(segments, station_units, unit_span, snapshot)
    events = tuple(store.latest_events(DETAIL_EVENTS, worker_id=worker_id))
    return WorkerDetail(
        worker=worker,
        segments=segments,
        output=OutputSeries(window.from_us, OUTPUT_BUCKET_US, tuple(per_bucket)),
        stations=stations,
        events=events,
    )


def _visits(
    segments: tuple[Segment, ...],
    station_units: dict[str, int],
    unit_span: dict[str, tuple[int, int]],
    snapshot: Snapshot,
) -> tuple[StationVisit, ...]:
    """Per station: counted seconds by state, units, first and last moment there."""
    seconds: defaultdict[str, dict[str, float]] = defaultdict(
        lambda: {"working": 0.0, "idle": 0.0, "absent": 0.0}
    )
    span: dict[str, tuple[int, int]] = dict(unit_span)
    for segment in segments:
        if segment.station_id is None or segment.state == "unobserved":
            continue
        seconds[segment.station_id][segment.state] += (segment.end_us - segment.start_us) / US_PER_S
        low, high = span.get(segment.station_id, (segment.start_us, segment.end_us))
        span[segment.station_id] = (min(low, segment.start_us), max(high, segment.end_us))
    visits = [
        StationVisit(
            station_id=station_id,
            name=snapshot.station_name(station_id),
            working_s=seconds[station_id]["working"],
            idle_s=seconds[station_id]["idle"],
            absent_s=seconds[station_id]["absent"],
            units=station_units.get(station_id, 0),
            first_us=first,
            last_us=last,
        )
        for station_id, (first, last) in span.items()
    ]
    visits.sort(key=lambda visit: (visit.first_us, visit.station_id))
    return tuple(visits)


def station_detail(
    engine: Engine, store: Store, snapshot: Snapshot, shift: Window, station_id: str
) -> StationDetail | None:
    """The timeline of one station and who worked there (None when it is not in the Snapshot)."""
    station = snapshot.station(station_id)
    if station is None:
        return None
    at_us = snapshot.at_us
    window = snapshot.window
    segments = engine.station_timeline(station_id, shift, at_us)
    # From the engine, not the table: the same events as the Snapshot on screen.
    here = engine.station_time(station_id, window, at_us)
    present = set(station.workers_present)
    workers: list[StationWorker] = []
    for worker in snapshot.workers:
        if worker.worker_id not in here and worker.worker_id not in present:
            continue
        working_s, idle_s, absent_s, units = here.get(worker.worker_id, (0.0, 0.0, 0.0, 0))
        workers.append(
            StationWorker(
                worker_id=worker.worker_id,
                name=worker.name,
                working_s=working_s,
                idle_s=idle_s,
                absent_s=absent_s,
                units=units,
                present=worker.worker_id in present,
            )
        )
    workers.sort(key=lambda item: (-item.working_s, item.worker_id))
    return StationDetail(station=station, segments=segments, workers=tuple(workers))


def view_data(
    engine: Engine,
    store: Store,
    snapshot: Snapshot,
    shift: Window,
    window_title: str,
    alerts: AlertsState,
    needs: ViewNeeds,
    max_gap_s: float,
) -> ViewData:
    """One tick's `ViewData`: the parts `needs` asks for, computed in the tick thread."""
    worker = station = events = None
    if needs.worker_id is not None:
        worker = worker_detail(engine, store, snapshot, shift, needs.worker_id)
    if needs.station_id is not None:
        station = station_detail(engine, store, snapshot, shift, needs.station_id)
    if needs.event_log:
        events = tuple(store.latest_events(LOG_EVENTS))
    return ViewData(
        snapshot=snapshot,
        shift=shift,
        window_title=window_title,
        alerts=alerts,
        max_gap_s=max_gap_s,
        worker=worker,
        station=station,
        events=events,
    )
