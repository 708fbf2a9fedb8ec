"""Alert conditions from a snapshot: dark cameras, long idles, drift."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from factory_tui.engine.alerts import (
    CAMERA_DARK,
    CONFIDENCE_DRIFT,
    IDLE_TOO_LONG,
    RATE_DRIFT,
    evaluate_alerts,
    idle_since,
)
from factory_tui.engine.drift import ModelDrift
from factory_tui.engine.snapshot import (
    FactoryMetrics,
    Segment,
    Snapshot,
    Window,
    WorkerMetrics,
    WorkerState,
)

S = 1_000_000
WINDOW = Window(0, 8 * 3600 * S, "A")
FACTORY = FactoryMetrics(0, 0, 0, 0, None, None, None, 0, 0, 0, 0)


def worker(worker_id: str, state: WorkerState, last_seen_s: float | None) -> WorkerMetrics:
    return WorkerMetrics(
        worker_id,
        "Ana" if worker_id == "W1" else worker_id,
        0,
        0,
        0,
        None,
        0,
        None,
        state,
        "S1",
        None if last_seen_s is None else int(last_seen_s * S),
        None,
        0,
    )


def snapshot(at_s: float, *workers: WorkerMetrics) -> Snapshot:
    return Snapshot(WINDOW, int(at_s * S), tuple(workers), (), FACTORY, 0, 0)


def no_timeline(worker_id: str) -> Sequence[Segment]:
    raise AssertionError(f"timeline of {worker_id} was not needed")


def evaluate(
    snap: Snapshot, drift: Sequence[ModelDrift] = (), *, in_shift: bool = True, timeline=no_timeline
):  # type: ignore[no-untyped-def]
    return evaluate_alerts(
        snap,
        drift,
        max_gap_s=900,
        idle_s=600,
        in_shift=in_shift,
        idle_since_of=lambda worker_id: idle_since(timeline(worker_id)),
    )


def test_dark_camera_during_the_shift() -> None:
    (alert,) = evaluate(snapshot(3000, worker("W1", "unobserved", 1000)))
    assert alert.kind == CAMERA_DARK
    assert alert.subject == "W1"
    assert alert.details == "W1 (Ana): no event for 33 min"


def test_no_dark_alert_off_shift_or_for_workers_not_seen_this_window() -> None:
    assert evaluate(snapshot(3000, worker("W1", "unobserved", 1000)), in_shift=False) == ()
    assert evaluate(snapshot(3000, worker("W2", "unobserved", -5000))) == ()
    assert evaluate(snapshot(3000, worker("W3", "unobserved", None))) == ()
    assert evaluate(snapshot(3000, worker("W1", "working", 2990))) == ()


def test_idle_since_walks_back_over_idle_segments() -> None:
    timeline = [
        Segment(0, 10, "working", "S1"),
        Segment(10, 20, "idle", "S1"),
        Segment(20, 30, "idle", "S2"),
    ]
    assert idle_since(timeline) == 10
    assert idle_since(timeline[:1]) is None
    assert idle_since([*timeline, Segment(30, 40, "unobserved", None)]) is None


def test_idle_longer_than_the_threshold() -> None:
    def timeline(worker_id: str) -> Sequence[Segment]:
        return [Segment(0, 1000 * S, "working", "S1"), Segment(1000 * S, 1700 * S, "idle", "S1")]

    (alert,) = evaluate(snapshot(1700, worker("W1", "idle", 1690)), timeline=timeline)
    assert (alert.kind, alert.subject) == (IDLE_TOO_LONG, "W1")
    assert alert.details == "W1 (Ana): idle at S1 for 11 min"
    assert evaluate(snapshot(1500, worker("W1", "idle", 1490)), timeline=timeline) == ()


def test_drift_conditions() -> None:
    drifting = ModelDrift("m2", 500, 0.7, 0.9, 0.65, True, 100.0, 20.0, True)
    calm = ModelDrift("m1", 500, 0.9, 0.9, 0.9, False, 100.0, 100.0, False)
    alerts = evaluate(snapshot(3000), [calm, drifting])
    assert [(a.kind, a.subject) for a in alerts] == [(CONFIDENCE_DRIFT, "m2"), (RATE_DRIFT, "m2")]
    assert alerts[0].details == "m2: mean confidence 0.65 vs baseline 0.90"
    assert alerts[1].details == "m2: 20.0 units/h vs baseline 100.0"


def test_conditions_say_when_they_began() -> None:
    """A dark camera from its last event + max_gap; a long idle from its start + idle_s."""
    snap = snapshot(3 * 3600, worker("W1", "unobserved", 3600), worker("W2", "idle", 3 * 3600 - 60))
    found = {
        condition.kind: condition.since_us
        for condition in evaluate_alerts(
            snap,
            (),
            max_gap_s=900,
            idle_s=600,
            in_shift=True,
            idle_since_of=lambda _: 3600 * S,
        )
    }
    assert found == {CAMERA_DARK: (3600 + 900) * S, IDLE_TOO_LONG: (3600 + 600) * S}


def test_thresholds_are_strict_and_the_window_start_counts_as_seen() -> None:
    """More than max_gap silent (not exactly), idle more than idle_s (not exactly); a worker
    last seen exactly at the window's start was seen in it."""
    exactly = snapshot(1900, worker("W1", "unobserved", 1000))
    assert evaluate(exactly) == ()
    (dark,) = evaluate(snapshot(1900.000001, worker("W1", "unobserved", 1000)))
    assert dark.kind == CAMERA_DARK
    (at_start,) = evaluate(snapshot(3000, worker("W1", "unobserved", 0)))
    assert at_start.kind == CAMERA_DARK

    def timeline(worker_id: str) -> Sequence[Segment]:
        return [Segment(100 * S, 700 * S, "idle", "S1")]

    assert evaluate(snapshot(700, worker("W1", "idle", 690)), timeline=timeline) == ()
    (idle,) = evaluate(snapshot(700.000001, worker("W1", "idle", 690)), timeline=timeline)
    assert idle.kind == IDLE_TOO_LONG


def test_each_idle_worker_is_asked_about_by_id() -> None:
    starts = {"W1": 0, "W2": 2000 * S}
    alerts = evaluate_alerts(
        snapshot(2500, worker("W1", "idle", 2490), worker("W2", "idle", 2490)),
        (),
        max_gap_s=900,
        idle_s=600,
        in_shift=True,
        idle_since_of=starts.__getitem__,
    )
    assert [(a.kind, a.subject) for a in alerts] == [(IDLE_TOO_LONG, "W1")]


def test_details_name_the_worker_once_and_the_station_when_known() -> None:
    def timeline(worker_id: str) -> Sequence[Segment]:
        return [Segment(0, 700 * S, "idle", None)]

    nameless = dataclasses.replace(worker("W2", "idle", 690), station_id=None)
    (alert,) = evaluate(snapshot(700, nameless), timeline=timeline)
    assert alert.details == "W2: idle for 11 min"


@pytest.mark.parametrize(
    ("silent_s", "text"),
    [
        (59 * 60 + 59, "59 min"),
        (60 * 60, "1 h 00 min"),
        (61 * 60 + 30, "1 h 01 min"),
        (125 * 60, "2 h 05 min"),
    ],
)
def test_durations_read_in_minutes_then_hours(silent_s: int, text: str) -> None:
    (alert,) = evaluate(snapshot(5000 + silent_s, worker("W1", "unobserved", 5000)))
    assert alert.details == f"W1 (Ana): no event for {text}"


@pytest.mark.parametrize(("silent_s", "text"), [(31.5, "31 s"), (59.9, "59 s"), (60, "1 min")])
def test_spans_under_a_minute_read_in_seconds(silent_s: float, text: str) -> None:
    # A floor may set thresholds of seconds: "no event for 0 min" would say nothing.
    (alert,) = evaluate_alerts(
        snapshot(5000 + silent_s, worker("W1", "unobserved", 5000)),
        (),
        max_gap_s=30,
        idle_s=30,
        in_shift=True,
        idle_since_of=lambda worker_id: None,
    )
    assert alert.details == f"W1 (Ana): no event for {text}"


def test_missing_drift_figures_read_n_a() -> None:
    model = ModelDrift("m3", 10, 0.5, 0.9, None, True, 50.0, None, True)
    alerts = evaluate(snapshot(3000), [model])
    assert [a.details for a in alerts] == [
        "m3: mean confidence n/a vs baseline 0.90",
        "m3: n/a units/h vs baseline 50.0",
    ]
