"""Model drift: baselines, rolling confidence and rate, sustained drops, order independence,
and the tracker against a brute-force reference (drift_reference.py)."""

from __future__ import annotations

import hashlib
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.engine.drift import UNKNOWN_MODEL, DriftSettings, DriftTracker, ModelDrift
from factory_tui.models import EventRecord
from tests.engine.drift_reference import ExpectedDrift, reference_drift

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


def every(period: int, units: int, start: int, stop: int) -> list[EventRecord]:
    """A product_count of `units` every `period` minutes (at second 30) in [start, stop)."""
    return [row(20_000 + m, m + 0.5, 0.9, units=units) for m in range(start, stop, period)]


@pytest.mark.parametrize("period", [1, 5])
def test_silence_after_data_is_not_rate_drift(period: int) -> None:
    """QA's night: 90 minutes of production at 120 units/h (events every minute, or every 5),
    then no events at all. Silence is not a rate (a camera that stopped is camera_dark's
    alert): at no minute of the edge, nor hours later, is the rate judged to drift, and
    nothing suggests retraining."""
    cfg = DriftSettings(rate_window_s=1800, rate_change=0.5, sustain_s=300, retrain_after_s=3600)
    tracker = DriftTracker(cfg)
    tracker.apply(every(period, 2 * period, 0, 90))
    for minute in [*range(60, 200), 600, 24 * 60]:
        (model,) = tracker.status(T0 + minute * MIN)
        assert not model.rate_drifting, minute
        assert not model.retrain_suggested, minute
        assert model.rate_held_s == 0, minute
    (night,) = tracker.status(T0 + 600 * MIN)
    assert night.baseline_uph == 120
    assert night.rolling_uph is None  # "—", like a thin confidence window


def test_events_every_few_minutes_are_read_at_their_real_rate() -> None:
    """A unit every 5 minutes is 12 units/h at every minute, though the last minutes of most
    windows hold no event (their longest gap widens the minutes the model was sending in)."""
    tracker = DriftTracker(DriftSettings(rate_window_s=1800, sustain_s=0, min_events=1))
    tracker.apply(every(5, 1, 0, 180))
    for minute in range(60, 180):
        (model,) = tracker.status(T0 + minute * MIN)
        assert model.rolling_uph == 12, minute
        assert not model.rate_drifting, minute


def test_a_shift_starting_after_silence_is_not_rate_drift() -> None:
    """The next morning the rate window fills up from nothing: its first minutes are not a
    slow rate."""
    cfg = DriftSettings(rate_window_s=1800, rate_change=0.5, sustain_s=300)
    tracker = DriftTracker(cfg)
    tracker.apply(steady(90, 0.9, per_minute=1, units=2))
    tracker.apply(steady(60, 0.9, start=24 * 60, per_minute=1, units=2))
    for minute in range(24 * 60, 24 * 60 + 61):
        (model,) = tracker.status(T0 + minute * MIN)
        assert not model.rate_drifting, minute
        assert model.rolling_uph in (None, 120), minute


@pytest.mark.parametrize(("min_events", "judged"), [(5, False), (4, True)])
def test_a_rate_window_with_too_few_events_is_not_judged(min_events: int, judged: bool) -> None:
    """Four events and no units in the last 30 minutes: with min_events 5 too thin to call a
    rate (shown as None, "—"), with min_events 4 a rate of 0 that drifts."""
    cfg = DriftSettings(rate_window_s=1800, rate_change=0.5, sustain_s=0, min_events=min_events)
    tracker = DriftTracker(cfg)
    tracker.apply(steady(60, 0.9, per_minute=1, units=2))
    tracker.apply([row(5000 + k, 60 + 7 * k, 0.9) for k in range(4)])  # minutes 60 .. 81
    (model,) = tracker.status(T0 + 90 * MIN)
    assert model.baseline_uph == 120
    assert model.rolling_uph == (0 if judged else None)
    assert model.rate_drifting is judged
    assert not model.retrain_suggested


def test_a_real_drop_with_events_still_flowing_drifts_and_suggests_retraining() -> None:
    """The model keeps seeing the workers (an event a minute) but counts a fifth of the units:
    real rate drift, raised after sustain_s and suggesting retraining after retrain_after_s."""
    cfg = DriftSettings(rate_window_s=1800, rate_change=0.5, sustain_s=300, retrain_after_s=3600)
    tracker = DriftTracker(cfg)
    tracker.apply(steady(60, 0.9, per_minute=2, units=1))  # 120 units/h
    slow = [row(7000 + m, m + 0.5, 0.9, units=1 if m % 5 == 0 else 0) for m in range(60, 240)]
    tracker.apply(slow)  # an event a minute, a unit every 5 minutes: 12 units/h
    (model,) = tracker.status(T0 + 120 * MIN)
    assert model.rolling_uph == 12
    assert model.rate_drifting
    (later,) = tracker.status(T0 + 200 * MIN)
    assert later.rate_drifting
    assert later.retrain_suggested


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


def test_production_rising_above_baseline_drifts_too() -> None:
    """README: the rate departs from its baseline "either way"."""
    cfg = DriftSettings(rate_window_s=1800, rate_change=0.5, sustain_s=300)
    tracker = DriftTracker(cfg)
    tracker.apply(steady(60, 0.9, per_minute=1, units=2))  # 120 units/h
    tracker.apply(steady(60, 0.9, start=60, per_minute=1, units=5))  # 300 units/h
    (model,) = tracker.status(T0 + 120 * MIN)
    assert model.baseline_uph == 120
    assert model.rolling_uph == 300
    assert model.rate_drifting
    assert not model.confidence_drifting


def minutes_of_units(units_by_minute: list[int], start: int = 0) -> list[EventRecord]:
    """One product_count per minute at second 30 with the given counts (0: a working event)."""
    return [
        row(10_000 + start + m, start + m + 0.5, 0.9, units=units)
        for m, units in enumerate(units_by_minute)
    ]


@pytest.mark.parametrize(
    ("rolling_units", "drifting"),
    [(15, False), (14, True), (45, False), (46, True), (30, False)],
)
def test_rate_drift_needs_more_than_rate_change_either_way(
    rolling_units: int, drifting: bool
) -> None:
    """Baseline 60 units/h (1 a minute for 60 min); the last 30 min hold `rolling_units`, i.e.
    twice that per hour. Exactly 50 % off (30 or 90 units/h) is not "more than" 50 % (the
    floats are exact here)."""
    cfg = DriftSettings(rate_window_s=1800, rate_change=0.5, sustain_s=0, baseline_s=3600)
    tracker = DriftTracker(cfg)
    per_minute = [rolling_units // 30 + (1 if m < rolling_units % 30 else 0) for m in range(30)]
    tracker.apply(minutes_of_units([1] * 60) + minutes_of_units(per_minute, start=60))
    (model,) = tracker.status(T0 + 90 * MIN)
    assert model.baseline_uph == 60
    assert model.rolling_uph == 2 * rolling_units
    assert model.rate_drifting is drifting


def test_a_zero_baseline_rate_never_drifts() -> None:
    tracker = DriftTracker(DriftSettings(rate_window_s=600, sustain_s=0, baseline_s=600))
    tracker.apply(minutes_of_units([0] * 10) + minutes_of_units([5] * 10, start=10))
    (model,) = tracker.status(T0 + 20 * MIN)
    assert model.baseline_uph == 0
    assert model.rolling_uph == 300
    assert not model.rate_drifting


@pytest.mark.parametrize(("mean", "drifting"), [(0.5, False), (0.25, True), (0.75, False)])
def test_confidence_drift_needs_more_than_drop_below_baseline(mean: float, drifting: bool) -> None:
    """Baseline 0.75; a drop of exactly `drop` (0.25, exact in binary) is not "more than"."""
    tracker = DriftTracker(
        DriftSettings(window_s=300, drop=0.25, sustain_s=0, baseline_s=600, min_events=1)
    )
    tracker.apply(steady(10, 0.75) + steady(5, mean, start=10))
    (model,) = tracker.status(T0 + 15 * MIN)
    assert model.baseline_confidence == 0.75
    assert model.rolling_confidence == mean
    assert model.confidence_drifting is drifting


@pytest.mark.parametrize(("low_minutes", "drifting"), [(6, True), (5, False)])
def test_sustain_means_every_minute_boundary_of_the_last_sustain_s(
    low_minutes: int, drifting: bool
) -> None:
    """window 1 min, sustain 5 min: the boundaries now, now-1 .. now-5 must all be low, and a
    boundary's window is the minute before it, so 6 low minutes are needed, 5 are not."""
    tracker = DriftTracker(
        DriftSettings(window_s=60, drop=0.1, sustain_s=300, baseline_s=600, min_events=1)
    )
    tracker.apply(steady(30 - low_minutes, 0.9) + steady(low_minutes, 0.5, start=30 - low_minutes))
    (model,) = tracker.status(T0 + 30 * MIN)
    assert model.confidence_drifting is drifting


@pytest.mark.parametrize(("events", "judged"), [(4, True), (3, False)])
def test_a_window_with_min_events_is_judged_and_one_fewer_is_not(events: int, judged: bool) -> None:
    tracker = DriftTracker(
        DriftSettings(window_s=120, drop=0.1, sustain_s=0, baseline_s=600, min_events=4)
    )
    low = [row(500 + k, 11 + k * 0.25, 0.5) for k in range(events)]
    tracker.apply(steady(10, 0.9) + low)
    (model,) = tracker.status(T0 + 12 * MIN)
    assert (model.rolling_confidence is not None) is judged
    assert model.confidence_drifting is judged


def test_nothing_is_judged_during_the_baseline_period() -> None:
    """A configured baseline shows at once, but drift waits for the baseline period to end."""
    cfg = DriftSettings(
        baselines={"m1": 0.99}, window_s=60, sustain_s=0, baseline_s=600, min_events=1
    )
    tracker = DriftTracker(cfg)
    tracker.apply(steady(12, 0.5))
    (early,) = tracker.status(T0 + 10 * MIN - 1)
    assert early.baseline_confidence == 0.99
    assert early.baseline_uph is None
    assert early.rolling_uph is None
    assert not early.confidence_drifting
    (late,) = tracker.status(T0 + 10 * MIN)
    assert late.baseline_uph == 0
    assert late.confidence_drifting


def test_figures_are_taken_at_the_last_whole_minute() -> None:
    """An event 1 µs before a minute boundary counts from that boundary on, one on it later."""
    tracker = DriftTracker(DriftSettings(window_s=60, min_events=1))
    first = row(1, 0, 0.5)
    edge = EventRecord(2, T0 + 2 * MIN - 1, "W1", "S1", "working", 0.7, 0, "m1", None, 0, "e")
    on = EventRecord(3, T0 + 2 * MIN, "W1", "S1", "working", 0.1, 0, "m1", None, 0, "o")
    tracker.apply([first, edge, on])
    (model,) = tracker.status(T0 + 2 * MIN)
    assert model.events == 2
    assert model.rolling_confidence == 0.7
    (model,) = tracker.status(T0 + 3 * MIN - 1)
    assert model.events == 2
    (model,) = tracker.status(T0 + 3 * MIN)
    assert model.events == 3
    assert model.mean_confidence == pytest.approx((0.5 + 0.7 + 0.1) / 3)


# --- the tracker against the brute-force reference ----------------------------------------------

CONFIDENCES = [0.3, 0.55, 0.62, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0]
"""Whole hundredths: with the thresholds below no drop or rate change can tie a threshold
exactly (a tie would test float rounding, not the rule; the exact edges are tested above)."""


@st.composite
def drift_histories(draw: st.DrawFn) -> list[EventRecord]:
    """Per model, phases of steady production and confidence that change from one to the next
    (drops and rises, faster and slower), at microsecond instants on and next to minute edges."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    models = draw(
        st.lists(st.sampled_from(["m1", "m2", None]), min_size=1, max_size=3, unique=True)
    )
    rows: list[EventRecord] = []
    for model in models:
        minute = draw(st.integers(0, 6))
        for _ in range(draw(st.integers(1, 3))):
            length = draw(st.integers(1, 25))
            per_minute = draw(st.integers(0, 4))
            level = draw(st.sampled_from(CONFIDENCES))
            units = draw(st.integers(0, 4))
            for m in range(minute, minute + length):
                for _ in range(per_minute):
                    offset = rng.choice([0, 1, MIN - 1, rng.randrange(MIN)])
                    hundredths = min(100, max(0, round(level * 100) + rng.choice([-3, 0, 0, 2])))
                    product = units > 0 and rng.random() < 0.6
                    ident = len(rows) + 1
                    rows.append(
                        EventRecord(
                            ident,
                            T0 + m * MIN + offset,
                            "W1",
                            "S1",
                            "product_count" if product else "working",
                            hundredths / 100,
                            units if product else 0,
                            model,
                            None,
                            0,
                            hashlib.sha256(str(ident).encode()).hexdigest(),
                        )
                    )
            minute += length
    return rows


drift_settings = st.builds(
    DriftSettings,
    window_s=st.sampled_from([60.0, 120.0, 300.0, 600.0]),
    drop=st.sampled_from([0.0500003, 0.1000003, 0.2500003]),
    sustain_s=st.sampled_from([0.0, 60.0, 120.0, 300.0]),
    baseline_s=st.sampled_from([60.0, 300.0, 600.0, 1200.0]),
    baselines=st.sampled_from([{}, {"m1": 0.9}, {UNKNOWN_MODEL: 0.75}]),
    rate_window_s=st.sampled_from([60.0, 180.0, 600.0]),
    rate_change=st.sampled_from([0.2500003, 0.5000003]),
    min_events=st.integers(1, 6),
)


@st.composite
def moments(draw: st.DrawFn, rows: list[EventRecord]) -> int:
    """An `at` on or next to a minute edge, mostly inside the history, sometimes on or next to
    one of its events."""
    if rows and draw(st.booleans()):
        instant = draw(st.sampled_from(rows)).ts_us
    else:
        last = max((row.ts_us for row in rows), default=T0) - T0
        instant = T0 + draw(st.integers(0, last // MIN + 3)) * MIN
    return instant + draw(st.sampled_from([0, 0, 1, -1, MIN // 2, MIN]))


def same(value: float | None, exact: Fraction | None) -> bool:
    if value is None or exact is None:
        return value is None and exact is None
    return value == pytest.approx(float(exact), rel=1e-12, abs=1e-12)


def agrees(model: ModelDrift, expected: ExpectedDrift) -> bool:
    return (
        model.model_version == expected.model_version
        and model.events == expected.events
        and same(model.mean_confidence, expected.mean_confidence)
        and same(model.baseline_confidence, expected.baseline_confidence)
        and same(model.rolling_confidence, expected.rolling_confidence)
        and model.confidence_drifting == expected.confidence_drifting
        and same(model.baseline_uph, expected.baseline_uph)
        and same(model.rolling_uph, expected.rolling_uph)
        and model.rate_drifting == expected.rate_drifting
    )


@settings(max_examples=100, deadline=None)
@given(
    rows=drift_histories(),
    cfg=drift_settings,
    data=st.data(),
    repeats=st.lists(st.integers(0, 10_000), max_size=5),
)
def test_tracker_agrees_with_the_reference(
    rows: list[EventRecord], cfg: DriftSettings, data: st.DataObject, repeats: list[int]
) -> None:
    at_us = data.draw(st.lists(moments(rows), min_size=1, max_size=4), label="at_us")
    tracker = DriftTracker(cfg)
    again = [rows[position % len(rows)] for position in repeats] if rows else []
    assert tracker.apply(rows + again) == len(rows)
    for moment in at_us:
        got = tracker.status(moment)
        want = reference_drift(rows, cfg, moment)
        assert [m.model_version for m in got] == [m.model_version for m in want]
        for model, expected in zip(got, want, strict=True):
            assert agrees(model, expected), (moment, model, expected)


def test_duration_settings_round_to_whole_minutes_half_to_even() -> None:
    """150 s is 2.5 minutes: a rate window of 2 minutes (Python's round), not 3."""
    tracker = DriftTracker(DriftSettings(rate_window_s=150, baseline_s=60, min_events=1))
    tracker.apply(minutes_of_units([0] * 9 + [5]))
    (model,) = tracker.status(T0 + 10 * MIN)
    assert model.rolling_uph == 5 / (2 / 60)


def test_a_sustain_under_a_minute_still_needs_two_boundaries() -> None:
    """sustain_s = 1 is one minute (the least): low at now and at now - 1 min."""
    cfg = DriftSettings(window_s=60, drop=0.1, sustain_s=1, baseline_s=600, min_events=1)
    once = DriftTracker(cfg)
    once.apply(steady(11, 0.9) + steady(1, 0.5, start=11))
    assert not once.status(T0 + 12 * MIN)[0].confidence_drifting
    twice = DriftTracker(cfg)
    twice.apply(steady(10, 0.9) + steady(2, 0.5, start=10))
    assert twice.status(T0 + 12 * MIN)[0].confidence_drifting


def test_a_long_window_over_few_minutes_leaves_out_the_current_minute() -> None:
    """With fewer minutes of data than the window is long, the current (unfinished) minute
    still does not count."""
    tracker = DriftTracker(DriftSettings(window_s=3600, baseline_s=60, min_events=1))
    tracker.apply([row(1, 0, 0.5), row(2, 2.5, 0.1)])
    (model,) = tracker.status(T0 + 2 * MIN + 30_000_000)
    assert model.events == 1
    assert model.rolling_confidence == 0.5
