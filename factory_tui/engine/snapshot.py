"""The immutable result of the metrics engine: what every view and `report` renders.

Field names follow the metric table in docs/metrics.md. Durations are seconds (float), instants are
UTC epoch microseconds (int), and `None` stands exactly where docs/metrics.md says a metric is null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

WorkerState = Literal["working", "idle", "absent", "unobserved"]
WORKER_STATES: tuple[WorkerState, ...] = ("working", "idle", "absent", "unobserved")

US_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class Window:
    """A metrics window `[from_us, to_us)`; `label` names it (a shift name, or a date)."""

    from_us: int
    to_us: int
    label: str = ""

    def __post_init__(self) -> None:
        if self.to_us < self.from_us:
            raise ValueError("window ends before it starts")

    @property
    def seconds(self) -> float:
        """The window length in seconds."""
        return (self.to_us - self.from_us) / US_PER_S

    def instants_end(self, at_us: int) -> int:
        """Exclusive end of the instants (product counts, events) counted at `at_us`: those
        with `ts < to` and `ts <= at` (events after `at` are not seen yet)."""
        return min(self.to_us, at_us + 1)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of one worker's timeline: a state (or unobserved) at a station."""

    start_us: int
    end_us: int
    state: WorkerState
    station_id: str | None


@dataclass(frozen=True, slots=True)
class WorkerMetrics:
    """One worker's metrics over the window, and its state at `at`."""

    worker_id: str
    name: str
    active_s: float
    idle_s: float
    absent_s: float
    utilization: float | None
    units: int
    uph: float | None
    state: WorkerState
    """Current state at `at`: unobserved when the latest event is older than max_gap."""
    station_id: str | None
    """Station of the latest state event (None when the worker was never seen in a state)."""
    last_seen_us: int | None
    """Timestamp of the worker's latest event at or before `at`, whatever its window."""
    mean_confidence: float | None
    """Mean confidence of the worker's events in the window; None when there are none."""
    events: int
    """Number of the worker's events in the window."""
    activity: tuple[float, ...] = ()
    """Working fraction of each of the last 12 five-minute buckets before `at`, oldest first."""


@dataclass(frozen=True, slots=True)
class StationMetrics:
    """One workstation's metrics over the window."""

    workstation_id: str
    name: str
    occupancy_s: float
    utilization: float | None
    units: int
    throughput_uph: float | None
    workers_present: tuple[str, ...]
    """Workers whose current (observed) state at `at` places them at this station."""


@dataclass(frozen=True, slots=True)
class FactoryMetrics:
    """Factory totals over the window and the count of workers in each current state."""

    active_s: float
    idle_s: float
    absent_s: float
    units: int
    avg_utilization: float | None
    avg_uph: float | None
    throughput_uph: float | None
    working: int
    idle: int
    absent: int
    unobserved: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the views show at one instant; built by `Engine.snapshot`, never mutated."""

    window: Window
    at_us: int
    workers: tuple[WorkerMetrics, ...]
    stations: tuple[StationMetrics, ...]
    factory: FactoryMetrics
    cursor: int
    """Id of the last stored row folded in."""
    total_events: int
    """Events folded in so far (all windows)."""
    _workers_by_id: dict[str, WorkerMetrics] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _stations_by_id: dict[str, StationMetrics] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._workers_by_id.update((worker.worker_id, worker) for worker in self.workers)
        self._stations_by_id.update((item.workstation_id, item) for item in self.stations)

    def worker(self, worker_id: str) -> WorkerMetrics | None:
        """The metrics of one worker, or None when it is not in the snapshot."""
        return self._workers_by_id.get(worker_id)

    def station(self, workstation_id: str) -> StationMetrics | None:
        """The metrics of one workstation, or None when it is not in the snapshot."""
        return self._stations_by_id.get(workstation_id)

    def station_name(self, workstation_id: str) -> str:
        """A workstation's name (its id when the snapshot does not know it)."""
        station = self._stations_by_id.get(workstation_id)
        return workstation_id if station is None else station.name
