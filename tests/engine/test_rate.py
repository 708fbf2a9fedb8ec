"""RateMeter: counts per second over a sliding window, with time passed in."""

from __future__ import annotations

from factory_tui.engine.rate import RateMeter


def test_the_default_window_is_five_seconds() -> None:
    meter = RateMeter()
    meter.add(0.0, 10)
    assert meter.per_second(0.0) == 2.0


def test_samples_leave_the_window_only_when_older_than_it() -> None:
    meter = RateMeter(window_s=5.0)
    meter.add(0.0, 10)
    meter.add(2.0, 5)
    assert meter.per_second(4.0) == 3.0
    assert meter.per_second(5.0) == 3.0  # exactly window_s old: still in
    assert meter.per_second(5.5) == 1.0
    assert meter.per_second(7.5) == 0.0


def test_a_young_meter_divides_by_its_age_but_at_least_one_second() -> None:
    meter = RateMeter(window_s=5.0, started_s=100.0)
    meter.add(100.5, 4)
    assert meter.per_second(100.5) == 4.0  # 0.5 s old: divided by 1 s, not 0.5
    assert meter.per_second(102.0) == 2.0  # 2 s old
    assert meter.per_second(105.0) == 0.8  # as old as the window
    meter.add(109.0, 10)
    assert meter.per_second(110.0) == 2.0  # older than the window: the window again


def test_a_meter_without_a_start_always_divides_by_the_window() -> None:
    meter = RateMeter(window_s=4.0)
    meter.add(1.0, 2)
    assert meter.per_second(1.0) == 0.5
