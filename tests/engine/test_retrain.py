"""retrain_suggested: a confidence or rate drift held for `retrain_after_s` suggests retraining
the model, with the evidence a retraining pipeline is handed; a supervisor can ask by hand."""

from __future__ import annotations

import pytest

from factory_tui.engine.alerts import (
    BY_HAND,
    CONFIDENCE_DRIFT,
    RATE_DRIFT,
    RETRAIN_SUGGESTED,
    AlertCondition,
    evaluate_alerts,
)
from factory_tui.engine.drift import DriftSettings, DriftTracker
from factory_tui.engine.snapshot import FactoryMetrics, Snapshot, Window
from tests.engine.test_drift import MIN, T0, row, steady

SETTINGS = DriftSettings(
    window_s=600, drop=0.1, sustain_s=300, baseline_s=3600, retrain_after_s=1800
)


def snapshot_at(at_us: int) -> Snapshot:
    factory = FactoryMetrics(0.0, 0.0, 0.0, 0, None, None, None, 0, 0, 0, 0)
    return Snapshot(Window(T0, at_us, "day"), at_us, (), (), factory, 0, 0)


def conditions(
    tracker: DriftTracker, minute: int, by_hand: frozenset[str] = frozenset()
) -> tuple[AlertCondition, ...]:
    at = T0 + minute * MIN
    return evaluate_alerts(
        snapshot_at(at),
        tracker.status(at),
        max_gap_s=900,
        idle_s=900,
        in_shift=False,
        idle_since_of=lambda _worker: None,
        drift_settings=tracker.settings,
        retrain_by_hand=by_hand,
    )


def kinds(tracker: DriftTracker, minute: int) -> set[str]:
    return {item.kind for item in conditions(tracker, minute)}


def test_retrain_is_suggested_once_the_drift_has_held_retrain_after_s() -> None:
    tracker = DriftTracker(SETTINGS)
    # An hour at 0.90 (the baseline), then two hours at 0.60.
    tracker.apply(steady(60, 0.90) + steady(120, 0.60, start=60))
    first_drift = next(m for m in range(60, 180) if CONFIDENCE_DRIFT in kinds(tracker, m))
    (model,) = tracker.status(T0 + first_drift * MIN)
    assert model.confidence_held_s == 300  # sustained: held for drift_sustain_s
    (drift,) = [item for item in conditions(tracker, first_drift) if item.kind == CONFIDENCE_DRIFT]
    assert dict(drift.evidence)["confidence_drift_s"] == 300  # drift alerts carry it too
    assert dict(drift.evidence)["by_hand"] is False
    assert RETRAIN_SUGGESTED not in kinds(tracker, first_drift)
    # The drift began to hold 5 minutes before it was sustained; 30 minutes after that start:
    start = first_drift - 5
    assert RETRAIN_SUGGESTED not in kinds(tracker, start + 29)
    assert RETRAIN_SUGGESTED in kinds(tracker, start + 30)
    assert RETRAIN_SUGGESTED in kinds(tracker, start + 90)


def test_the_evidence_is_baseline_versus_now_with_window_and_event_counts() -> None:
    tracker = DriftTracker(SETTINGS)
    tracker.apply(steady(60, 0.90) + steady(120, 0.60, start=60))
    (alert,) = [item for item in conditions(tracker, 150) if item.kind == RETRAIN_SUGGESTED]
    evidence = dict(alert.evidence)
    assert alert.subject == "m1"
    assert evidence["model_version"] == "m1"
    assert evidence["by_hand"] is False
    assert evidence["baseline_confidence"] == pytest.approx(0.90)
    assert evidence["rolling_confidence"] == pytest.approx(0.60)
    assert evidence["confidence_drifting"] is True
    assert evidence["confidence_drift_s"] == 1800  # counted up to retrain_after_s
    assert evidence["window_s"] == 600
    assert evidence["retrain_after_s"] == 1800
    assert evidence["window_events"] == 20  # 10 minutes, two events a minute
    assert evidence["baseline_events"] == 120
    assert evidence["events"] == 300
    assert "confidence 0.60 vs baseline 0.90 for 30 min" in alert.details


def test_a_rate_drift_held_as_long_suggests_it_too() -> None:
    tracker = DriftTracker(SETTINGS)
    # 2 units a minute for the baseline hour, then none: the rate departs, confidence holds.
    tracker.apply(steady(60, 0.9, units=1) + steady(120, 0.9, start=60))
    found = {item.kind: item for item in conditions(tracker, 175)}
    assert CONFIDENCE_DRIFT not in found
    retrain = found[RETRAIN_SUGGESTED]
    assert dict(retrain.evidence)["rate_drift_s"] == 1800
    assert "units/h vs baseline 120.0" in retrain.details


def test_a_recovered_model_is_no_longer_suggested() -> None:
    tracker = DriftTracker(SETTINGS)
    tracker.apply(steady(60, 0.90) + steady(60, 0.60, start=60) + steady(30, 0.90, start=120))
    assert RETRAIN_SUGGESTED in kinds(tracker, 120)
    assert RETRAIN_SUGGESTED not in kinds(tracker, 150)


def test_raised_by_hand_without_drift_and_marked_so() -> None:
    tracker = DriftTracker(SETTINGS)
    tracker.apply(steady(90, 0.90))
    assert RETRAIN_SUGGESTED not in kinds(tracker, 80)
    (alert,) = conditions(tracker, 80, frozenset({"m1"}))
    assert alert.kind == RETRAIN_SUGGESTED
    assert alert.details.endswith(BY_HAND)
    assert dict(alert.evidence)["by_hand"] is True
    assert dict(alert.evidence)["confidence_drifting"] is False
    # A model the tracker does not know is not raised (the key works on listed models).
    assert conditions(tracker, 80, frozenset({"other"})) == ()


def test_never_before_the_drift_itself_is_sustained() -> None:
    short = DriftSettings(
        window_s=600, drop=0.1, sustain_s=600, baseline_s=3600, retrain_after_s=60
    )
    tracker = DriftTracker(short)
    tracker.apply(steady(60, 0.90) + steady(60, 0.60, start=60))
    for minute in range(60, 120):
        (model,) = tracker.status(T0 + minute * MIN)
        assert model.retrain_suggested == model.confidence_drifting, minute
    assert tracker.status(T0 + 119 * MIN)[0].retrain_suggested


def test_a_floor_gone_silent_raises_no_drift_and_suggests_no_retraining() -> None:
    """QA's night: 90 minutes at 124 units/h, then the cameras stop (an outage, the end of the
    shift). Silence is not drift: no rate_drift and no retrain_suggested, at the edge or all
    night (a stopped camera is camera_dark's alert, during shifts)."""
    tracker = DriftTracker(SETTINGS)
    rows = []
    for m in range(90):  # 124 units/h: 2 units a minute, 4 more over the hour
        units = 3 if m % 15 == 0 else 2
        rows.append(row(50_000 + m, m + 0.5, 0.9, units=units))
        rows.append(row(60_000 + m, m + 0.75, 0.9))
    tracker.apply(rows)
    assert tracker.status(T0 + 60 * MIN)[0].baseline_uph == 124
    for minute in [*range(60, 240), 600, 14 * 60]:
        assert kinds(tracker, minute) == set(), minute


def test_a_rate_drop_with_events_still_flowing_suggests_retraining() -> None:
    """The model keeps sending (two events a minute) but counts no units: rate drift, and
    retrain_suggested once it has held retrain_after_s."""
    tracker = DriftTracker(SETTINGS)
    tracker.apply(steady(60, 0.9, units=1) + steady(120, 0.9, start=60))
    assert RATE_DRIFT in kinds(tracker, 100)
    assert RETRAIN_SUGGESTED in kinds(tracker, 175)
