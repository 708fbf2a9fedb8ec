"""The metrics engine: pure Python, no I/O, no clock reads, no UI imports.

`Engine` folds stored events in and answers `Snapshot`s for any window; see docs/metrics.md for the
metric definitions and docs/metrics.md for how they are computed.
"""

from __future__ import annotations

from factory_tui.engine.metrics import Engine
from factory_tui.engine.snapshot import (
    WORKER_STATES,
    FactoryMetrics,
    Segment,
    Snapshot,
    StationMetrics,
    Window,
    WorkerMetrics,
    WorkerState,
)

__all__ = [
    "WORKER_STATES",
    "Engine",
    "FactoryMetrics",
    "Segment",
    "Snapshot",
    "StationMetrics",
    "Window",
    "WorkerMetrics",
    "WorkerState",
]
