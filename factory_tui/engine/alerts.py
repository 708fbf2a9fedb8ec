"""Alert conditions, derived purely from a Snapshot, drift figures and worker timelines.

The app compares the conditions of each tick with the stored active alerts: a new condition
raises an alert, a condition that ended clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Final

from factory_tui.engine.drift import DriftSettings, ModelDrift
from factory_tui.engine.snapshot import US_PER_S, Segment, Snapshot

CAMERA_DARK: Final = "camera_dark"
IDLE_TOO_LONG: Final = "idle_too_long"
CONFIDENCE_DRIFT: Final = "confidence_drift"
RATE_DRIFT: Final = "rate_drift"
RETRAIN_SUGGESTED: Final = "retrain_suggested"
ALERT_KINDS: Final = (CAMERA_DARK, IDLE_TOO_LONG, CONFIDENCE_DRIFT, RATE_DRIFT, RETRAIN_SUGGESTED)
BY_HAND: Final = "raised by hand"
"""The end of a hand-raised retrain_suggested alert's details (how a restart knows it)."""

Evidence = tuple[tuple[str, float | int | str | bool | None], ...]
"""Named figures behind an alert, in order (a retraining pipeline's input)."""


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
    evidence: Evidence = field(default=(), compare=False)
    """The figures behind it (retrain_suggested); not compared, so figures that move every
    minute do not count as a changed alert."""


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
    drift_settings: DriftSettings | None = None,
    retrain_by_hand: Collection[str] = (),
) -> tuple[AlertCondition, ...]:
    """Every alert condition that holds at `snapshot.at_us`.

    - camera_dark: during a shift, a worker seen in this window has had no event for more than
      max_gap (its camera went dark).
    - idle_too_long: a worker has been idle, without a break in observation, for more than idle_s.
    - confidence_drift / rate_drift: a model version's rolling confidence or production rate
      departs from its baseline for a sustained period (see engine.drift).
    - retrain_suggested: either drift has held for `retrain_after_s`, or a supervisor asked
      for it (`retrain_by_hand`: model versions); with the evidence.
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
    settings = drift_settings or DriftSettings()
    for model in drift:
        if model.confidence_drifting and model.baseline_confidence is not None:
            found.append(
                AlertCondition(
                    CONFIDENCE_DRIFT,
                    model.model_version,
                    f"{model.model_version}: mean confidence {_num(model.rolling_confidence)} "
                    f"vs baseline {model.baseline_confidence:.2f}",
                    evidence=drift_evidence(model, settings, by_hand=False),
                )
            )
        if model.rate_drifting and model.baseline_uph is not None:
            found.append(
                AlertCondition(
                    RATE_DRIFT,
                    model.model_version,
                    f"{model.model_version}: {_num(model.rolling_uph, 1)} units/h "
                    f"vs baseline {model.baseline_uph:.1f}",
                    evidence=drift_evidence(model, settings, by_hand=False),
                )
            )
        by_hand = model.model_version in retrain_by_hand
        if model.retrain_suggested or by_hand:
            found.append(retrain_condition(model, settings, by_hand))
    return tuple(found)


def retrain_condition(model: ModelDrift, settings: DriftSettings, by_hand: bool) -> AlertCondition:
    """The retrain_suggested alert of a model: why, in one line, and the evidence."""
    why = []
    if model.confidence_held_s >= settings.retrain_after_s:
        why.append(
            f"confidence {_num(model.rolling_confidence)} vs baseline "
            f"{_num(model.baseline_confidence)} for {_span(model.confidence_held_s)}"
        )
    if model.rate_held_s >= settings.retrain_after_s:
        why.append(
            f"{_num(model.rolling_uph, 1)} units/h vs baseline {_num(model.baseline_uph, 1)} "
            f"for {_span(model.rate_held_s)}"
        )
    if by_hand:
        why.append(BY_HAND)
    return AlertCondition(
        RETRAIN_SUGGESTED,
        model.model_version,
        f"{model.model_version}: retrain suggested: {'; '.join(why)}",
        evidence=drift_evidence(model, settings, by_hand),
    )


def drift_evidence(model: ModelDrift, settings: DriftSettings, by_hand: bool) -> Evidence:
    """A model's drift figures as named values: baseline against now for confidence and
    units/h, how long each drift has held (up to `retrain_after_s`), windows, event counts."""
    return (
        ("model_version", model.model_version),
        ("by_hand", by_hand),
        ("baseline_confidence", model.baseline_confidence),
        ("rolling_confidence", model.rolling_confidence),
        ("confidence_drifting", model.confidence_drifting),
        ("confidence_drift_s", model.confidence_held_s),
        ("baseline_units_per_hour", model.baseline_uph),
        ("rolling_units_per_hour", model.rolling_uph),
        ("rate_drifting", model.rate_drifting),
        ("rate_drift_s", model.rate_held_s),
        ("window_s", settings.window_s),
        ("rate_window_s", settings.rate_window_s),
        ("baseline_s", settings.baseline_s),
        ("retrain_after_s", settings.retrain_after_s),
        ("window_events", model.window_events),
        ("baseline_events", model.baseline_events),
        ("events", model.events),
    )


def _span(seconds: float) -> str:
    # Seconds under a minute: thresholds may be set that short, and "0 min" says nothing.
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
