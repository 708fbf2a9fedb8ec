"""Building what the drill-down views show, in the console's tick thread, from the engine and
the store.

The tick computes a `ViewData` for whichever view is on top (`ViewNeeds` says which, and about
whom): the views themselves only render these frozen values (`factory_tui.view_models`).
Everything here is a function of the engine, the store and the instant passed in — no Textual,
no clock reads.
"""

from __future__ import annotations

from collections import defaultdict

from factory_tui.engine import Engine
from factory_tui.engine.snapshot import US_PER_S, Segment, Snapshot, Window
from factory_tui.records import AuditRecord
from factory_tui.storage import Store
from factory_tui.view_models import (
    DETAIL_EVENTS,
    LOG_AUDIT,
    LOG_EVENTS,
    OUTPUT_BUCKET_US,
    AlertsState,
    OutputSeries,
    StationDetail,
    StationVisit,
    StationWorker,
    ViewData,
    ViewNeeds,
    WorkerDetail,
    natural_key,
)


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
    # Up to the engine's cursor: rows stored since this tick's read are not in the Snapshot,
    # and the chart must not count more units than the heading.
    rows = store.units_by_bucket(
        worker_id, window.from_us, end, OUTPUT_BUCKET_US, max_id=engine.cursor
    )
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
    visits.sort(key=lambda visit: (visit.first_us, natural_key(visit.station_id)))
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
    workers.sort(key=lambda item: (-item.working_s, natural_key(item.worker_id)))
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
    audit: tuple[AuditRecord, ...] = ()
    if needs.worker_id is not None:
        worker = worker_detail(engine, store, snapshot, shift, needs.worker_id)
    if needs.station_id is not None:
        station = station_detail(engine, store, snapshot, shift, needs.station_id)
    if needs.event_log:
        events = tuple(store.latest_events(LOG_EVENTS))
        audit = tuple(store.audit_entries(LOG_AUDIT))
    return ViewData(
        snapshot=snapshot,
        shift=shift,
        window_title=window_title,
        alerts=alerts,
        max_gap_s=max_gap_s,
        worker=worker,
        station=station,
        events=events,
        audit=audit,
    )
