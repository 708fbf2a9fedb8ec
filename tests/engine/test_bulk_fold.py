"""The bulk fold's shortcuts (late rows put back by bisection, new events split at the last one
held, runs found at C speed) leave the engine exactly as folding one event at a time does.

Streams are long enough (hundreds of rows per worker) for the shortcuts to be taken: nearly in
time order with a few late rows, tied instants, repeats, digests as text or raw bytes, gaps over
max_gap, and chunks that overlap what is held.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.engine import Engine, Window
from factory_tui.models import EngineRow
from tests.engine.eventkit import MIN, S, at

KINDS = ("working", "idle", "absent", "product_count")
GAP_S = 600.0


def stream(seed: int, workers: int, length: int, late_share: float) -> list[EngineRow]:
    """Rows in arrival order: mostly in time order, some late, some instants shared."""
    rng = random.Random(seed)
    rows: list[EngineRow] = []
    for number in range(workers):
        now = at("06:00") + rng.randrange(MIN)
        for _ in range(length):
            now += rng.choice((0, rng.randrange(1, 90 * S), rng.randrange(1, 40 * MIN)))
            kind = rng.choice(KINDS)
            digest = hashlib.sha256(f"{number}/{now}/{rng.random()}".encode()).digest()
            rows.append(
                EngineRow(
                    f"W{number}",
                    now,
                    digest if rng.random() < 0.5 else digest.hex(),
                    kind,
                    f"S{rng.randrange(3)}",
                    rng.choice((1, 2)) if kind == "product_count" else 0,
                    rng.choice((0.5, 0.75, 0.93)),
                    0,
                )
            )
    rows.sort(key=lambda row: row[1])
    # Late rows: a few move later in the arrival order; some rows arrive twice.
    for _ in range(int(len(rows) * late_share)):
        position = rng.randrange(len(rows))
        rows.insert(min(len(rows), position + rng.randrange(1, 40)), rows.pop(position))
    rows += rng.sample(rows, len(rows) // 50)
    return [row._replace(id=number + 1) for number, row in enumerate(rows)]


def state(engine: Engine) -> dict[str, Any]:
    """Everything the engine holds, station indexes replaced by station ids (they are numbered
    in the order stations are first seen, which depends on the arrival order)."""
    ids = engine._station_ids

    def named(code: int) -> object:
        return (ids[code >> 2], code & 3) if code >= 0 else code

    held: dict[str, Any] = {}
    for worker_id, timeline in engine._timelines.items():
        columns = {
            name: list(getattr(timeline, name))
            for name in ("ts", "hk", "count", "conf", "lost", "units", "conf_sum")
            + ("run_start", "run_work", "run_idle", "run_absent")
        }
        for name in ("own", "cur", "run_code"):
            columns[name] = [named(code) for code in getattr(timeline, name)]
        held[worker_id] = columns
    stations = {
        station_id: (
            engine._station_first[index],
            sorted(engine._station_workers[index]),
            sorted(engine._station_visitors[index]),
            units_by_instant(engine, index),
        )
        for index, station_id in enumerate(ids)
    }
    return {"held": held, "stations": stations, "totals": (engine.events, engine.cursor)}


def units_by_instant(engine: Engine, index: int) -> list[tuple[int, int]]:
    """A station's (ts, count) of product events, sorted: the order of one instant's events
    within its prefix sum depends on arrival and is never read (queries bisect by time)."""
    held = engine._station_units[index]
    counts = [after - before for before, after in zip(held.units, held.units[1:], strict=False)]
    return sorted(zip(held.ts, counts, strict=True))


def one_at_a_time(rows: list[EngineRow]) -> Engine:
    engine = Engine(max_gap_s=GAP_S)
    for row in rows:
        engine.apply_tuples([row])
    return engine


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    late_share=st.sampled_from((0.0, 0.005, 0.03, 0.3)),
    chunks=st.integers(1, 4),
)
def test_bulk_fold_equals_folding_one_event_at_a_time(
    seed: int, late_share: float, chunks: int
) -> None:
    rows = stream(seed, workers=3, length=300, late_share=late_share)
    bulk = Engine(max_gap_s=GAP_S)
    size = -(-len(rows) // chunks)
    for first in range(0, len(rows), size):
        bulk.apply_tuples(rows[first : first + size])
    reference = one_at_a_time(rows)
    assert state(bulk) == state(reference)
    distinct = {(row[1], row[2] if isinstance(row[2], str) else row[2].hex()) for row in rows}
    assert bulk.events == bulk.held() == len(distinct)
    # Repeats of what is held, the latest events included, change nothing.
    before = state(bulk)
    latest = sorted(rows, key=lambda row: row[1])[-3:]
    assert bulk.apply_tuples(latest) == 0
    assert bulk.apply_tuples(rows[: len(rows) // 3]) == 0
    assert state(bulk) == before
    last = max(row[1] for row in rows)
    window = Window(at("06:00"), last + 1)
    assert bulk.snapshot(window, last) == reference.snapshot(window, last)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut_share=st.floats(0.1, 0.9))
def test_rows_older_than_the_horizon_are_carried_alike(seed: int, cut_share: float) -> None:
    rows = stream(seed, workers=2, length=200, late_share=0.03)
    times = sorted(row[1] for row in rows)
    cut = times[int(len(times) * cut_share)]
    half = len(rows) // 2
    bulk, reference = Engine(max_gap_s=GAP_S), one_at_a_time(rows[:half])
    bulk.apply_tuples(rows[:half])
    bulk.prune(cut)
    reference.prune(cut)
    bulk.apply_tuples(rows[half:])
    for row in rows[half:]:
        reference.apply_tuples([row])
    assert state(bulk) == state(reference)
    assert bulk.dropped == reference.dropped


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), edges=st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_a_one_off_snapshot_sums_occupancy_as_the_cached_one(seed: int, edges: list[float]) -> None:
    """`snapshot(once=True)` (a report: occupancy in one sweep, no five-minute blocks filled)
    answers as the live views' cached path does, for windows of any length and alignment."""
    rows = stream(seed, workers=3, length=200, late_share=0.03)
    engine = Engine(max_gap_s=GAP_S)
    engine.apply_tuples(rows)
    first, last = min(row[1] for row in rows), max(row[1] for row in rows)
    start, end, now = sorted(first + int((last - first) * edge) for edge in edges)
    window = Window(start, end + 1)
    once = engine.snapshot(window, now, once=True)
    assert not engine._blocks
    assert once == engine.snapshot(window, now)
    assert once.stations == engine.snapshot(window, now).stations  # from the filled cache too
