"""Model drift: baselines, rolling confidence and rate, sustained drops, order independence."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.engine.drift import UNKNOWN_MODEL, DriftSettings, DriftTracker
from factory_tui.models import EventRecord

MIN = 60_000_000
T0 = 1_800_000_000 * 1_000_000 // MIN * MIN  # a whole minute


def row(
    i: int, minute: float, confidence: float, model: str | None = "m1", units: int = 0
) -> EventRecord:
    kind = "product_count" if units else "working"
    digest = hashlib.sha256(f"{i}-{minute}-{confidence}-{model}-{units}".encode()).hexdigest()
    return EventRecord(
        i, T0 + int(minute * MIN), "W1", "S1", kind, confidence, units, model, None, 0, digest
    )


def steady(
    minutes: int, confidence: float, *, start: int = 0, per_minute: int = 2, units: int = 0
) -> list[EventRecord]:
    rows = []
    for m in range(start, start + minutes):
        for k in range(per_minute):
            rows.append(row(len(rows) + m * 100 + k, m + k / per_minute, confidence, units=units))
    return rows


def test_no_figures_before_the_first_whole_minute() -> None:
    tracker = DriftTracker()
    tracker.apply([row(1, 0.5, 0.9)])
    assert tracker.status(T0 + 30_000_000) == ()
    (model,) = tracker.status(T0 + MIN)
    assert model.model_version == "m1"
    assert model.events == 1
    assert model.baseline_confidence is None  # the first hour is not over


def test_baseline_is_the_first_hour_and_a_sustained_drop_drifts() -> None:
    tracker = DriftTracker(DriftSettings(window_s=600, drop=0.1, sustain_s=300, baseline_s=3600))
    tracker.apply(steady(60, 0.90))
    tracker.apply(steady(30, 0.70, start=60))
    (early,) = tracker.status(T0 + 62 * MIN)  # the rolling mean still holds good minutes
    assert early.baseline_confidence is not None
    assert abs(early.baseline_confidence - 0.90) < 1e-9
    assert not early.confidence_drifting
    (late,) = tracker.status(T0 + 90 * MIN)
    assert late.rolling_confidence is not None
    assert abs(late.rolling_confidence - 0.70) < 1e-9
    assert late.confidence_drifting


def test_a_short_dip_is_not_drift() -> None:
    tracker = DriftTracker(DriftSettings(window_s=120, drop=0.1, sustain_s=300, baseline_s=3600))
    tracker.apply(steady(60, 0.90) + steady(3, 0.50, start=60) + steady(30, 0.90, start=63))
    for minute in range(61, 93):
        (model,) = tracker.status(T0 + minute * MIN)
        assert not model.confidence_drifting, minute


def test_recovery_clears_drift() -> None:
    tracker = DriftTracker(DriftSettings(window_s=300, sustain_s=120))
    tracker.apply(steady(60, 0.9) + steady(20, 0.6, start=60))
    assert tracker.status(T0 + 80 * MIN)[0].confidence_drifting
    tracker.apply(steady(10, 0.9, start=80))
    assert not tracker.status(T0 + 90 * MIN)[0].confidence_drifting


def test_configured_baseline_overrides_the_first_hour() -> None:
    tracker = DriftTracker(DriftSettings(baselines={"m1": 0.99}, window_s=300, sustain_s=0))
    tracker.apply(steady(70, 0.85))
    (model,) = tracker.status(T0 + 70 * MIN)
    assert model.baseline_confidence == 0.99
    assert model.confidence_drifting


def test_thin_windows_are_not_judged() -> None:
    tracker = DriftTracker(DriftSettings(window_s=300, sustain_s=0, min_events=5))
    tracker.apply(steady(60, 0.9) + [row(9999, 65, 0.1)])
    (model,) = tracker.status(T0 + 66 * MIN)
    assert model.rolling_confidence is None
    assert not model.confidence_drifting


def test_production_rate_departing_from_baseline() -> None:
    cfg = DriftSettings(rate_window_s=1800, rate_change=0.5, sustain_s=300)
    tracker = DriftTracker(cfg)
    tracker.apply(steady(60, 0.9, per_minute=1, units=2))  # 120 units/h
    tracker.apply(steady(60, 0.9, start=60, per_minute=1, units=2))
    (normal,) = tracker.status(T0 + 120 * MIN)
    assert normal.baseline_uph == 120
    assert normal.rolling_uph == 120
    assert not normal.rate_drifting
    slow = DriftTracker(cfg)
    slow.apply(steady(60, 0.9, per_minute=1, units=2))
    slow.apply(steady(60, 0.9, start=60, per_minute=1, units=0))  # production stops
    (stopped,) = slow.status(T0 + 120 * MIN)
    assert stopped.rolling_uph == 0
    assert stopped.rate_drifting


def test_models_are_tracked_apart_and_missing_versions_grouped() -> None:
    tracker = DriftTracker()
    tracker.apply([row(1, 0, 0.9, "b"), row(2, 0, 0.8, "a"), row(3, 0, 0.7, None)])
    names = [m.model_version for m in tracker.status(T0 + MIN)]
    assert names == sorted(["a", "b", UNKNOWN_MODEL])


def test_duplicates_are_ignored() -> None:
    tracker = DriftTracker()
    rows = steady(5, 0.9)
    assert tracker.apply(rows) == len(rows)
    assert tracker.apply(rows) == 0
    assert tracker.status(T0 + 5 * MIN)[0].events == len(rows)


@settings(max_examples=40, deadline=None)
@given(
    confidences=st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=150),
    seed=st.integers(0, 10_000),
    at_minute=st.integers(1, 200),
)
def test_result_does_not_depend_on_arrival_order_or_chunking(
    confidences: list[float], seed: int, at_minute: int
) -> None:
    rows = [row(i, i * 1.3, c, "m" + str(i % 2), units=i % 3) for i, c in enumerate(confidences)]
    ordered = DriftTracker(
        DriftSettings(baseline_s=600, window_s=300, sustain_s=120, rate_window_s=300)
    )
    ordered.apply(rows)
    shuffled = rows * 2
    random.Random(seed).shuffle(shuffled)
    chunked = DriftTracker(ordered.settings)
    step = 1 + seed % 7
    for start in range(0, len(shuffled), step):
        chunked.apply(shuffled[start : start + step])
    at = T0 + at_minute * MIN
    assert ordered.status(at) == chunked.status(at)
