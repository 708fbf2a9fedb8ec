"""The sparkline's one-pass bucket edges (`Engine._activity`) against their definition: the
working time before each of the 13 edges, asked of the timeline one edge at a time."""

from __future__ import annotations

import random

import pytest

from factory_tui.engine import Engine
from factory_tui.engine.metrics import ACTIVITY_BUCKET_US, ACTIVITY_BUCKETS
from factory_tui.engine.timeline import WorkerTimeline
from tests.engine.eventkit import MIN, S, at, ev

BASE = at("06:00") + 17 * S


def by_definition(timeline: WorkerTimeline, at_us: int) -> tuple[float, ...]:
    origin = at_us - ACTIVITY_BUCKETS * ACTIVITY_BUCKET_US
    marks = [
        timeline.working_before(origin + number * ACTIVITY_BUCKET_US)
        for number in range(ACTIVITY_BUCKETS + 1)
    ]
    return tuple(
        (marks[number + 1] - marks[number]) / ACTIVITY_BUCKET_US
        for number in range(ACTIVITY_BUCKETS)
    )


@pytest.mark.parametrize("seed", range(12))
def test_the_one_pass_edges_equal_working_before_at_each_edge(seed: int) -> None:
    """Busy and sparse stretches, long gaps, several stations, a pruned history; `at` before
    the first event, inside the history, on an event and long after the last one."""
    rng = random.Random(seed)
    events = []
    moment = BASE + rng.randrange(90) * MIN
    while moment < BASE + 10 * 60 * MIN:
        kind = rng.choice(["working", "working", "working", "idle", "absent", "product_count"])
        events.append(ev(moment, kind, "W1", rng.choice(["S1", "S2"]), units=1))
        moment += rng.choice([S, 7 * S, MIN, 4 * MIN, 9 * MIN, 45 * MIN]) + rng.randrange(S)
    engine = Engine(rng.choice([60.0, 300.0, 900.0]), {"W1": "Ana"}, {"S1": "S1", "S2": "S2"})
    engine.apply(events)
    if seed % 3 == 0:
        engine.prune(BASE + 3 * 60 * MIN)
    timeline = engine._timelines["W1"]
    instants = [BASE - 2 * 60 * MIN, BASE + 12 * 60 * MIN + rng.randrange(S)]
    instants += [rng.randrange(BASE, BASE + 11 * 60 * MIN) for _ in range(40)]
    instants += [event.ts_us for event in rng.sample(events, 10)]
    for at_us in instants:
        assert Engine._activity(timeline, at_us) == by_definition(timeline, at_us), at_us
