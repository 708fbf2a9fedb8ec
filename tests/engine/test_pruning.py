"""`Engine.prune`: a console that forgets old events answers every window it still holds
exactly as an engine that never forgot anything (docs/metrics.md, "Forgetting old shifts").

The property tests draw histories and questions as tests/engine/test_engine_properties.py does,
prune at or before every question's `history_floor`, and fold the rest in (late rows from
before the cut-off among them).
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.engine import Engine, Snapshot, Window
from factory_tui.engine.drift import DriftTracker
from factory_tui.models import EventRecord
from factory_tui.warm_start import drift_keep_floor, history_floor
from tests.engine.eventkit import MIN, S, at, ev
from tests.engine.test_engine_properties import (
    ROSTER_STATIONS,
    ROSTER_WORKERS,
    STATIONS,
    WORKERS,
    build,
    histories,
    max_gaps,
    questions,
)

Question = tuple[Window, int]


def comparable(snapshot: Snapshot) -> Snapshot:
    """The Snapshot without `total_events`: after a prune, a row older than the horizon is
    not counted (the engine cannot tell it from a repeat of a pruned one)."""
    return replace(snapshot, total_events=0)


def assert_same_answers(pruned: Engine, whole: Engine, asked: list[Question]) -> None:
    """Every query the views make agrees, for every worker and station."""
    for window, moment in asked:
        assert comparable(pruned.snapshot(window, moment)) == comparable(
            whole.snapshot(window, moment)
        )
        for worker_id in WORKERS:
            assert pruned.timeline(worker_id, window, moment) == whole.timeline(
                worker_id, window, moment
            )
            assert pruned.idle_since(worker_id, window, moment) == whole.idle_since(
                worker_id, window, moment
            )
        for station_id in STATIONS:
            assert pruned.station_timeline(station_id, window, moment) == (
                whole.station_timeline(station_id, window, moment)
            )
            assert pruned.station_time(station_id, window, moment) == (
                whole.station_time(station_id, window, moment)
            )


@st.composite
def pruned_scenarios(
    draw: st.DrawFn,
) -> tuple[list[EventRecord], float, list[Question], int, int]:
    """(history, max_gap_s, questions, cut-off, seed): the cut-off is at or before the
    `history_floor` of every question, sometimes exactly on it."""
    history = draw(histories())
    max_gap_s = draw(max_gaps)
    max_gap_us = round(max_gap_s * S)
    asked = [draw(questions(history, max_gap_us)) for _ in range(draw(st.integers(1, 3)))]
    floor = min(history_floor(window, moment, max_gap_s) for window, moment in asked)
    cut = floor - draw(st.sampled_from([0, 0, 1, S, 7 * MIN, 90 * MIN]))
    return history, max_gap_s, asked, cut, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=100, deadline=None)
@given(scenario=pruned_scenarios(), splits=st.lists(st.integers(0, 50), min_size=2, max_size=2))
def test_pruning_then_folding_equals_never_pruning(
    scenario: tuple[list[EventRecord], float, list[Question], int, int], splits: list[int]
) -> None:
    """Rows arrive in any order; the engine is pruned twice on the way (an earlier cut-off,
    then the final one), asked in between, and still answers as the engine fed everything."""
    history, max_gap_s, asked, cut, seed = scenario
    arrivals = list(history) + history[: len(history) // 3]  # some repeats too
    random.Random(seed).shuffle(arrivals)
    first, second = sorted(split % (len(arrivals) + 1) for split in splits)
    engine = Engine(max_gap_s, ROSTER_WORKERS, ROSTER_STATIONS)
    engine.apply(arrivals[:first])
    engine.prune(cut - 30 * MIN)
    engine.apply(arrivals[first:second])
    for window, moment in asked:
        engine.snapshot(window, moment)  # fills the block cache later rows must invalidate
    engine.prune(cut)
    engine.apply(arrivals[second:])
    held = engine.oldest_held_us()
    assert held is None or held >= cut
    assert_same_answers(engine, build(history, max_gap_s), asked)


@settings(max_examples=40, deadline=None)
@given(scenario=pruned_scenarios())
def test_a_pruned_engine_holds_only_what_is_after_the_cut_off(
    scenario: tuple[list[EventRecord], float, list[Question], int, int],
) -> None:
    """Pruning a full engine keeps exactly the events from the cut-off on."""
    history, max_gap_s, _asked, cut, _seed = scenario
    engine = build(history, max_gap_s)
    before = engine.held()
    dropped = engine.prune(cut)
    after = len({event.event_hash for event in history if event.ts_us >= cut})
    assert engine.held() == after
    assert dropped == before - after
    assert engine.prune(cut) == 0  # a cut-off at the horizon changes nothing


def test_a_late_state_row_before_the_horizon_carries_its_state_without_being_held() -> None:
    """W1 works at S1 from 06:00; after pruning at 08:00, a row sent late says it turned idle
    at 07:50. It is not held, but the time after is idle, as in an unpruned engine."""
    history = [ev(at("06:00"), "working")]
    history += [
        ev(at("06:00") + minute * MIN, "product_count", units=1) for minute in range(5, 240)
    ]
    late = ev(at("07:50"), "idle")
    whole = build([*history, late], 900.0)
    engine = build(history, 900.0)
    engine.prune(at("08:00"))
    held = engine.held()
    engine.apply([late])
    assert engine.held() == held
    assert engine.dropped == 1
    window, moment = Window(at("09:00"), at("09:30")), at("09:30")  # its floor is 08:15
    snapshot = engine.snapshot(window, moment)
    assert snapshot.worker("W1").state == "idle"  # type: ignore[union-attr]
    assert snapshot.worker("W1").idle_s == 30 * 60  # type: ignore[union-attr]
    assert_same_answers(engine, whole, [(window, moment)])


def test_a_worker_seen_only_before_the_horizon_keeps_its_last_sighting() -> None:
    """W2's only events are pruned: it still shows, unobserved, with its station and last seen."""
    engine = build(
        [ev(at("06:00"), "working", "W2", "S3"), ev(at("06:05"), "idle", "W2", "S3")], 900
    )
    engine.prune(at("07:00"))
    assert engine.held() == 0
    worker = engine.snapshot(Window(at("08:15"), at("09:00")), at("09:00")).worker("W2")
    assert worker is not None
    assert (worker.state, worker.station_id, worker.last_seen_us) == (
        "unobserved",
        "S3",
        at("06:05"),
    )


def test_a_settled_drift_tracker_ignores_rows_it_read_past_and_still_dedups_the_rest() -> None:
    """`DriftTracker.settle(id)`: the console's cursor is past those rows, so their ids are
    forgotten (flat memory) and a repeat of one changes nothing; later rows still dedup."""
    rows = [ev(at("10:00") + minute * MIN, "working", model_version="m1") for minute in range(20)]
    whole = DriftTracker()
    whole.apply(rows)
    tracker = DriftTracker()
    assert tracker.apply(rows[:10]) == 10
    tracker.settle(rows[9].id)
    assert tracker.apply(rows[:12]) == 2  # the first ten are past the mark
    assert tracker.apply(rows[10:]) == 8  # 10 and 11 are remembered by id
    assert tracker.status(at("10:30")) == whole.status(at("10:30"))


def test_a_drift_tracker_that_forgot_old_minutes_keeps_its_baseline_and_its_checks() -> None:
    """`DriftTracker.forget_before`: the minute sums of the baseline hour stay, the middle of
    the day goes, and the checks after the cut-off (confidence falling at the end, held long
    enough to suggest a retrain) come out as with everything kept."""
    rows = [
        ev(
            at("06:00") + minute * MIN,
            "product_count" if minute % 3 else "working",
            units=1,
            confidence=0.6 if minute >= 600 else 0.9,
            model_version="m1",
        )
        for minute in range(720)
    ]
    whole, forgetful = DriftTracker(), DriftTracker()
    whole.apply(rows)
    forgetful.apply(rows)
    moment = at("18:00")
    forgetful.forget_before(drift_keep_floor(forgetful, moment))
    [kept], [full] = forgetful.status(moment), whole.status(moment)
    assert full.confidence_drifting
    assert full.retrain_suggested
    assert forgetful.status(moment) == (
        replace(full, events=kept.events, mean_confidence=kept.mean_confidence),
    )
    assert kept.events < full.events  # the middle of the day is gone
