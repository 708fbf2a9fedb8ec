"""A shift report's contents: which window a shift is, and everything its page shows.

`gather` reads the store once (the engine loaded as `report` loads it, each worker's units per
hour, the alerts raised in the window, the per-model confidence) and returns frozen values;
`reports.html` only renders them. The figures are those of `report --format json` for the same
window and instant, because they come from the same `load_engine` and the same Snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Final

from factory_tui.config import Settings, Shift
from factory_tui.engine.natural import natural_key
from factory_tui.engine.snapshot import US_PER_S, Segment, Snapshot, Window
from factory_tui.models import to_utc_us
from factory_tui.records import AlertRecord, ModelSummary
from factory_tui.storage import Store
from factory_tui.warm_start import load_engine

HOUR_US: Final = 3600 * US_PER_S
"""The units-per-hour chart's bucket: one bar per hour of the shift."""


class ShiftNotFound(ValueError):
    """The shift asked for does not exist or has not started; the message says why."""


@dataclass(frozen=True, slots=True)
class WorkerCharts:
    """What a worker's row draws: its timeline and its units per hour of the window."""

    worker_id: str
    segments: tuple[Segment, ...]
    """The worker's counted and unobserved stretches over the window up to `at`."""
    hourly_units: tuple[int, ...]
    """Units in each hour from the window start (the last hour may be cut short by `at`)."""


@dataclass(frozen=True, slots=True)
class ShiftReport:
    """Everything one shift report shows, as computed at `snapshot.at_us`."""

    title: str
    """"Shift B, 2026-03-02" (or the label of a custom window)."""
    zone: tzinfo
    snapshot: Snapshot
    charts: tuple[WorkerCharts, ...]
    """One per worker of the Snapshot, in its order."""
    alerts: tuple[AlertRecord, ...]
    """Alerts raised in the window, oldest first (at one instant: by kind, then subject)."""
    models: tuple[ModelSummary, ...]
    """In counting order of version (`natural_models`)."""
    max_gap_s: float
    generated_us: int | None = None
    """When the file was written (None: not shown, as in tests)."""


# --- which window ------------------------------------------------------------------------------


def _shift_bounds(shift: Shift, day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The [start, end) of `shift` starting on `day` (an end before the start is the next day)."""
    start = datetime.combine(day, shift.start, zone)
    end_day = day if shift.end > shift.start else day + timedelta(days=1)
    return start, datetime.combine(end_day, shift.end, zone)


def named_shift(settings: Settings, name: str, day: date | None, at_us: int) -> Window:
    """Shift `name` starting on `day` (None: the latest one started by `at_us`), up to `at_us`.

    The window is the whole shift once it has ended; while it runs, its part so far (as the
    console and the default `report` show it). Raises ShiftNotFound.
    """
    by_name = {shift.name.lower(): shift for shift in settings.shifts}
    shift = by_name.get(name.lower())
    if shift is None:
        known = ", ".join(item.name for item in settings.shifts) or "none"
        raise ShiftNotFound(f"no shift named {name!r} (configured: {known})")
    zone = settings.tz
    if day is None:
        today = datetime.fromtimestamp(at_us / US_PER_S, zone).date()
        candidates = (_shift_bounds(shift, today - timedelta(days=n), zone) for n in range(3))
        started = [bounds for bounds in candidates if to_utc_us(bounds[0]) <= at_us]
        start, end = max(started)
    else:
        start, end = _shift_bounds(shift, day, zone)
    return _up_to(start, end, shift.name, at_us)


def previous_shift(settings: Settings, at_us: int) -> Window:
    """The latest configured shift that had ended by `at_us`. Raises ShiftNotFound."""
    if not settings.shifts:
        raise ShiftNotFound("no shifts are configured ([[shifts]] in the config file)")
    zone = settings.tz
    today = datetime.fromtimestamp(at_us / US_PER_S, zone).date()
    ended = [
        (end, start, shift.name)
        for shift in settings.shifts
        for n in range(3)
        for start, end in [_shift_bounds(shift, today - timedelta(days=n), zone)]
        if to_utc_us(end) <= at_us
    ]
    end, start, name = max(ended)
    return Window(to_utc_us(start), to_utc_us(end), name)


def _up_to(start: datetime, end: datetime, label: str, at_us: int) -> Window:
    from_us, to_us = to_utc_us(start), to_utc_us(end)
    if at_us < from_us:
        raise ShiftNotFound(f"shift {label} of {start:%Y-%m-%d %H:%M} has not started yet")
    return Window(from_us, min(to_us, at_us), label)


def report_instant(window: Window, at_us: int) -> int:
    """The instant a shift's report is computed at: its end once it is over, else `at_us`."""
    return min(window.to_us, at_us)


def shift_title(window: Window, zone: tzinfo, settings: Settings) -> str:
    """ "Shift B, 2026-03-02" for a shift (its start's local date), else the window's label."""
    day = datetime.fromtimestamp(window.from_us / US_PER_S, zone).date()
    if any(shift.name == window.label for shift in settings.shifts):
        return f"Shift {window.label}, {day.isoformat()}"
    return window.label or f"{day.isoformat()}"


def file_name(window: Window, zone: tzinfo) -> str:
    """A report's file name: `shift-report-2026-03-02-B.html` (the window's local start)."""
    start = datetime.fromtimestamp(window.from_us / US_PER_S, zone)
    label = "".join(char if char.isalnum() or char in "-_" else "_" for char in window.label)
    return f"shift-report-{start:%Y-%m-%d}-{label or start.strftime('%H%M')}.html"


# --- what the page shows -------------------------------------------------------------------------


def natural_models(models: Iterable[ModelSummary]) -> list[ModelSummary]:
    """The models in counting order of version (v1.9 before v1.10), events that named no model
    first (the store gives them in text order)."""
    return sorted(
        models,
        key=lambda m: (m.model_version is not None, natural_key(m.model_version or "")),
    )


def gather(
    store: Store,
    settings: Settings,
    window: Window,
    at_us: int,
    *,
    generated_us: int | None = None,
) -> ShiftReport:
    """Read everything the report of `window` at `at_us` shows (the store stays read-only)."""
    engine = load_engine(store, settings, window, at_us, until_us=at_us, every_station=True)
    snapshot = engine.snapshot(window, at_us, once=True)
    end = window.instants_end(at_us)
    hours = max(0, -(-(end - window.from_us) // HOUR_US))
    charts = []
    for worker in snapshot.workers:
        per_hour = [0] * hours
        for row in store.units_by_bucket(
            worker.worker_id, window.from_us, end, HOUR_US, max_id=engine.cursor
        ):
            per_hour[row.bucket] += row.units
        charts.append(
            WorkerCharts(
                worker.worker_id,
                engine.timeline(worker.worker_id, window, at_us),
                tuple(per_hour),
            )
        )
    raised = sorted(
        store.alerts_raised(window.from_us, end),
        key=lambda alert: (alert.started_us, alert.kind, natural_key(alert.subject), alert.id),
    )
    return ShiftReport(
        title=shift_title(window, settings.tz, settings),
        zone=settings.tz,
        snapshot=snapshot,
        charts=tuple(charts),
        alerts=tuple(raised),
        models=tuple(natural_models(store.model_summary(window.from_us, end))),
        max_gap_s=settings.metrics.max_gap_s,
        generated_us=generated_us,
    )
