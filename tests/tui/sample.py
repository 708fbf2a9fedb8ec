"""Hand-built Snapshots for widget tests: every figure is chosen, none is computed."""

from __future__ import annotations

from datetime import UTC, datetime

from factory_tui.engine.snapshot import (
    FactoryMetrics,
    Snapshot,
    StationMetrics,
    Window,
    WorkerMetrics,
    WorkerState,
)
from factory_tui.models import to_utc_us

AT_US = to_utc_us(datetime(2025, 3, 4, 10, 30, tzinfo=UTC))
SHIFT_A = Window(
    to_utc_us(datetime(2025, 3, 4, 6, 0, tzinfo=UTC)),
    to_utc_us(datetime(2025, 3, 4, 14, 0, tzinfo=UTC)),
    "A",
)
STATIONS = {
    "S1": "Assembly 1",
    "S2": "Assembly 2",
    "S3": "Soldering",
    "S4": "Inspection",
}


def worker(
    worker_id: str,
    name: str,
    *,
    state: WorkerState = "working",
    station: str | None = "S1",
    utilization: float | None = 0.5,
    units: int = 10,
    uph: float | None = 12.0,
    seen_s_ago: float | None = 30.0,
    confidence: float | None = 0.9,
    activity: tuple[float, ...] = (0.5,) * 12,
) -> WorkerMetrics:
    """A worker's metrics with the given display-relevant figures."""
    return WorkerMetrics(
        worker_id=worker_id,
        name=name,
        active_s=3600.0,
        idle_s=600.0,
        absent_s=0.0,
        utilization=utilization,
        units=units,
        uph=uph,
        state=state,
        station_id=station,
        last_seen_us=None if seen_s_ago is None else AT_US - int(seen_s_ago * 1_000_000),
        mean_confidence=confidence,
        events=42,
        activity=activity,
    )


def snapshot(workers: list[WorkerMetrics], *, at_us: int = AT_US) -> Snapshot:
    """A Snapshot of `workers` in shift A; factory counts follow the workers' states."""
    states = [w.state for w in workers]
    return Snapshot(
        window=SHIFT_A,
        at_us=at_us,
        workers=tuple(sorted(workers, key=lambda w: w.worker_id)),
        stations=tuple(
            StationMetrics(sid, name, 0.0, 0.0, 0, 0.0, ()) for sid, name in STATIONS.items()
        ),
        factory=FactoryMetrics(
            active_s=0.0,
            idle_s=0.0,
            absent_s=0.0,
            units=sum(w.units for w in workers),
            avg_utilization=0.5,
            avg_uph=12.0,
            throughput_uph=48.0,
            working=states.count("working"),
            idle=states.count("idle"),
            absent=states.count("absent"),
            unobserved=states.count("unobserved"),
        ),
        cursor=100,
        total_events=100,
    )


def floor() -> list[WorkerMetrics]:
    """Six workers covering every state and the null metrics."""
    return [
        worker("W1", "Ana Silva", utilization=0.81, units=120, uph=21.5, seen_s_ago=20),
        worker("W2", "Bilal Khan", state="idle", station="S2", utilization=0.4, units=40),
        worker("W3", "Chen Wei", state="absent", station="S3", utilization=0.65, units=75),
        worker(
            "W4",
            "Dana Novak",
            state="unobserved",
            station="S4",
            utilization=None,
            units=0,
            uph=None,
            seen_s_ago=1900,
            confidence=None,
            activity=(0.0,) * 12,
        ),
        worker("W5", "Emeka Obi", station="S2", utilization=0.95, units=200, uph=30.25),
        worker(
            "W6",
            "Freya Lind",
            state="unobserved",
            station=None,
            utilization=None,
            units=0,
            uph=None,
            seen_s_ago=None,
            confidence=None,
            activity=(),
        ),
    ]
