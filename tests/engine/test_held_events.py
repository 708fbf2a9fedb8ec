"""An engine's held events folded into another (`Engine.held_events` / `apply_held`: how a
report reads a long history in two processes) leave it exactly as one engine fed every row.

The two engines number their stations in the order each first saw them, so the codes are
renumbered on the way; parts may overlap (repeats), interleave in time, or reach an engine
that has pruned.
"""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.engine import Engine, Window
from factory_tui.engine.timeline import WorkerTimeline, hash_key
from factory_tui.models import EngineRow
from tests.engine.eventkit import at
from tests.engine.test_bulk_fold import GAP_S, state, stream


def bulk(rows: list[EngineRow]) -> Engine:
    engine = Engine(max_gap_s=GAP_S)
    engine.apply_tuples(rows)
    return engine


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    split=st.sampled_from(("by time", "later first", "at random", "overlapping")),
    late_share=st.sampled_from((0.0, 0.03, 0.3)),
)
def test_held_events_joined_equal_one_engine_fed_everything(
    seed: int, split: str, late_share: float
) -> None:
    rows = stream(seed, workers=3, length=250, late_share=late_share)
    rng = random.Random(seed)
    times = sorted(row[1] for row in rows)
    cut = times[rng.randrange(len(times))]
    if split in ("by time", "later first"):
        ours = [row for row in rows if row[1] < cut]
        theirs = [row for row in rows if row[1] >= cut]
        if split == "later first":
            ours, theirs = theirs, ours
    elif split == "at random":
        ours, theirs = [], []
        for row in rows:
            (ours if rng.random() < 0.5 else theirs).append(row)
    else:
        ours = rows[: len(rows) * 2 // 3]
        theirs = rows[len(rows) // 3 :]
    # The other part's stations are first seen in another order: its codes differ from ours.
    theirs.reverse()
    engine, other = bulk(ours), bulk(theirs)
    # Sent between processes as the report does.
    held = pickle.loads(pickle.dumps(other.held_events()))
    joined: list[str] = []
    extend_with = WorkerTimeline.extend_with

    def spied(timeline: WorkerTimeline, *args: Any) -> Any:
        joined.append("x")
        return extend_with(timeline, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WorkerTimeline, "extend_with", spied)
        added = engine.apply_held(held)
    if split == "by time" and ours:
        assert joined  # later events are joined on, not merged as rows
    reference = bulk(rows)
    assert state(engine) == state(reference)
    assert added == reference.events - bulk(ours).events
    last = times[-1]
    window = Window(at("06:00"), last + 1)
    assert engine.snapshot(window, last) == reference.snapshot(window, last)
    # Folding the same events again changes nothing.
    assert engine.apply_held(held) == 0
    assert state(engine) == state(reference)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut_share=st.floats(0.2, 0.8))
def test_held_events_reaching_a_pruned_engine_are_carried_as_rows_are(
    seed: int, cut_share: float
) -> None:
    rows = stream(seed, workers=2, length=200, late_share=0.03)
    times = sorted(row[1] for row in rows)
    cut = times[int(len(times) * cut_share)]
    half = len(rows) // 2
    engine, reference = bulk(rows[:half]), bulk(rows[:half])
    engine.prune(cut)
    reference.prune(cut)
    engine.apply_held(bulk(rows[half:]).held_events())
    reference.apply_tuples(rows[half:])
    assert state(engine) == state(reference)
    # Rows older than the horizon are counted as they come: here once each, repeats folded.
    older = {(row[1], hash_key(row[2])) for row in rows[half:] if row[1] < cut}
    assert engine.dropped == len(older)
