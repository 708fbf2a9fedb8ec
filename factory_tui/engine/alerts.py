"""Alert conditions, derived purely from a Snapshot, drift figures and worker timelines.

The app compares the conditions of each tick with the stored active alerts: a new condition
raises an alert, a condition that ended clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from factory_tui.engine.drift import ModelDrift
from factory_tui.engine.snapshot import US_PER_S, Segment, Snapshot

CAMERA_DARK: Final = "camera_dark"
IDLE_TOO_LONG: Final = "idle_too_long"
CONFIDENCE_DRIFT: Final = "confidence_drift"
RATE_DRIFT: Final = "rate_drift"
ALERT_KINDS: Final = (CAMERA_DARK, IDLE_TOO_LONG, CONFIDENCE_DRIFT, RATE_DRIFT)


@dataclass(frozen=True, slots=True)
class AlertCondition:
    """A condition that holds at `at`: what kind, about whom, and a one-line explanation."""

    kind: str
    subject: str
    details: str
    since_us: int | None = None
    """When the condition began to hold, where the data says so (a camera is dark from its
    last event + max_gap, an idle is too long from its start + idle_s); None: not known, the
    alert starts when it is first seen (drift)."""


def idle_since(timeline: Sequence[Segment]) -> int | None:
    """Start of the uninterrupted idle stretch that ends the timeline, or None when not idle."""
    start: int | None = None
    for segment in reversed(timeline):
        if segment.state != "idle":
            break
        start = segment.start_us
    return start


def evaluate_alerts(
    snapshot: Snapshot,
    drift: Sequence[ModelDrift],
    *,
    max_gap_s: float,
    idle_s: float,
    in_shift: bool,
    idle_since_of: Callable[[str], int | None],
) -> tuple[AlertCondition, ...]:
    """Every alert condition that holds at `snapshot.at_us`.

    - camera_dark: during a shift, a worker seen in this window has had no event for more than
      max_gap (its camera went dark).
    - idle_too_long: a worker has been idle, without a break in observation, for more than idle_s.
    - confidence_drift / rate_drift: a model version's rolling confidence or production rate
      departs from its baseline for a sustained period (see engine.drift).
    `idle_since_of(worker_id)` gives the start of the worker's unbroken idle stretch (what
    `idle_since` finds in its timeline; `Engine.idle_since`); only asked for idle workers.
    """
    at = snapshot.at_us
    found: list[AlertCondition] = []
    for worker in snapshot.workers:
        label = (
            f"{worker.worker_id} ({worker.name})"
            if worker.name != worker.worker_id
            else worker.worker_id
        )
        seen_here = (
            worker.last_seen_us is not None and worker.last_seen_us >= snapshot.window.from_us
        )
        if (
            in_shift
            and seen_here
            and worker.state == "unobserved"
            and worker.last_seen_us is not None
        ):
            silent = (at - worker.last_seen_us) / US_PER_S
            if silent > max_gap_s:
                found.append(
                    AlertCondition(
                        CAMERA_DARK,
                        worker.worker_id,
                        f"{label}: no event for {_span(silent)}",
                        worker.last_seen_us + round(max_gap_s * US_PER_S),
                    )
                )
        if worker.state == "idle":
            since = idle_since_of(worker.worker_id)
            if since is not None and (at - since) / US_PER_S > idle_s:
                station = f" at {worker.station_id}" if worker.station_id else ""
                found.append(
                    AlertCondition(
                        IDLE_TOO_LONG,
                        worker.worker_id,
                        f"{label}: idle{station} for {_span((at - since) / US_PER_S)}",
                        since + round(idle_s * US_PER_S),
                    )
                )
    for model in drift:
        if model.confidence_drifting and model.baseline_confidence is not None:
            found.append(
                AlertCondition(
                    CONFIDENCE_DRIFT,
                    model.model_version,
                    f"{model.model_version}: mean confidence {_num(model.rolling_confidence)} "
                    f"vs baseline {model.baseline_confidence:.2f}",
                )
            )
        if model.rate_drifting and model.baseline_uph is not None:
            found.append(
                AlertCondition(
                    RATE_DRIFT,
                    model.model_version,
                    f"{model.model_version}: {_num(model.rolling_uph, 1)} units/h "
                    f"vs baseline {model.baseline_uph:.1f}",
                )
            )
    return tuple(found)


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
