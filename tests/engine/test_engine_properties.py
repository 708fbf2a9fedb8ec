"""The engine against a deliberately simple reference implementation of DESIGN.md (the oracle).

The oracle recomputes everything from the raw list of events on every question, one event at
a time, with no prefix sums, no caches and no incremental path. Hypothesis generates event sets
with ties, long gaps, product counts before any state, several workers per station, timestamps
to the microsecond, and model_version and camera_id values (the hash covers the model, so two
models' sightings at one instant are two events ordered by hash; it leaves the camera out, so
two cameras' are one). Windows and `at` fall on a grid, on event instants and on interval ends
(an event + max_gap), and one microsecond either side. The engine must agree with the oracle,
and must give identical snapshots whatever the arrival order, with any events repeated, and
when fed in any chunking (with snapshots taken in between, so cached blocks are invalidated and
rebuilt).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.engine import Engine, Segment, Window
from factory_tui.engine.alerts import idle_since
from factory_tui.models import EventRecord
from tests.engine.eventkit import MIN, S, at, ev

STATES = ("working", "idle", "absent")
BASE = at("06:00") + 17 * S  # off the five-minute grid, so block edges fall mid-interval


# --- the oracle ------------------------------------------------------------------------------


@dataclass
class Counted:
    """One stretch of counted (or not-yet-stated) time of a worker."""

    start: int
    end: int
    state: str | None
    station: str | None


def oracle_stretches(events: list[EventRecord], at_us: int, max_gap_us: int) -> list[Counted]:
    """DESIGN.md, read literally: sighting to sighting, capped at max_gap, the last one to `at`."""
    stretches = []
    state: str | None = None
    station: str | None = None
    for position, event in enumerate(events):
        if event.event_type in STATES:
            state, station = event.event_type, event.workstation_id
        following = events[position + 1].ts_us if position + 1 < len(events) else at_us
        end = min(following, event.ts_us + max_gap_us)
        stretches.append(Counted(event.ts_us, end, state, station))
    return stretches


def overlap(start: int, end: int, lo: int, hi: int) -> int:
    return max(0, min(end, hi) - max(start, lo))


def covered(spans: list[tuple[int, int]]) -> int:
    """Length of the union, the slow obvious way: test every elementary interval."""
    points = sorted({point for span in spans for point in span})
    return sum(
        right - left
        for left, right in zip(points, points[1:], strict=False)
        if any(start <= left and right <= end for start, end in spans)
    )


def oracle(
    events: Sequence[EventRecord],
    window: Window,
    at_us: int,
    max_gap_us: int,
    roster_workers: dict[str, str],
    roster_stations: dict[str, str],
) -> dict[str, Any]:
    unique: dict[str, EventRecord] = {}
    for event in events:
        unique.setdefault(event.event_hash, event)
    seen = [event for event in unique.values() if event.ts_us <= at_us]
    lo, hi = window.from_us, window.to_us
    by_worker: dict[str, list[EventRecord]] = defaultdict(list)
    for event in seen:
        by_worker[event.worker_id].append(event)
    occupied: dict[str, list[tuple[int, int]]] = defaultdict(list)
    workers: dict[str, dict[str, Any]] = {}
    for worker_id in sorted(set(roster_workers) | set(by_worker)):
        mine = sorted(by_worker.get(worker_id, []), key=lambda e: (e.ts_us, e.event_hash))
        stretches = oracle_stretches(mine, at_us, max_gap_us)
        totals = dict.fromkeys(STATES, 0)
        for stretch in stretches:
            if stretch.state is not None:
                totals[stretch.state] += overlap(stretch.start, stretch.end, lo, hi)
            if stretch.state == "working" and overlap(stretch.start, stretch.end, lo, hi):
                assert stretch.station is not None
                occupied[stretch.station].append((max(stretch.start, lo), min(stretch.end, hi)))
        in_window = [event for event in mine if lo <= event.ts_us < hi]
        units = sum(e.count for e in in_window if e.event_type == "product_count")
        stated = [event for event in mine if event.event_type in STATES]
        state = "unobserved"
        if stated and at_us - mine[-1].ts_us <= max_gap_us:
            state = stated[-1].event_type
        active, idle = totals["working"], totals["idle"]
        activity = []
        for bucket in range(12):
            start = at_us - 3600 * S + bucket * 300 * S
            working = sum(
                overlap(s.start, s.end, start, start + 300 * S)
                for s in stretches
                if s.state == "working"
            )
            activity.append(working / (300 * S))
        workers[worker_id] = {
            "name": roster_workers.get(worker_id, worker_id),
            "active_s": active / S,
            "idle_s": idle / S,
            "absent_s": totals["absent"] / S,
            "utilization": active / (active + idle) if active + idle else None,
            "units": units,
            "uph": units / (active / S / 3600) if active else None,
            "state": state,
            "station_id": stated[-1].workstation_id if stated else None,
            "last_seen_us": mine[-1].ts_us if mine else None,
            "events": len(in_window),
            "mean_confidence": (
                sum(e.confidence for e in in_window) / len(in_window) if in_window else None
            ),
            "activity": activity,
            "segments": stretches,
        }
    hours = (hi - lo) / S / 3600
    station_ids = set(roster_stations) | {event.workstation_id for event in seen}
    stations: dict[str, dict[str, Any]] = {}
    for station_id in sorted(station_ids):
        occupancy = covered(occupied.get(station_id, []))
        units = sum(
            e.count
            for e in seen
            if e.workstation_id == station_id and e.event_type == "product_count"
            if lo <= e.ts_us < hi
        )
        stations[station_id] = {
            "name": roster_stations.get(station_id, station_id),
            "occupancy_s": occupancy / S,
            "utilization": occupancy / (hi - lo) if hi > lo else None,
            "units": units,
            "throughput_uph": units / hours if hi > lo else None,
            "workers_present": tuple(
                worker_id
                for worker_id, row in workers.items()
                if row["station_id"] == station_id and row["state"] in ("working", "idle")
            ),
            "spans": occupied.get(station_id, []),
        }
    rows = list(workers.values())
    utilizations = [row["utilization"] for row in rows if row["utilization"] is not None]
    uphs = [row["uph"] for row in rows if row["uph"] is not None]
    units = sum(row["units"] for row in rows)
    factory = {
        "active_s": sum(row["active_s"] for row in rows),
        "idle_s": sum(row["idle_s"] for row in rows),
        "absent_s": sum(row["absent_s"] for row in rows),
        "units": units,
        "avg_utilization": sum(utilizations) / len(utilizations) if utilizations else None,
        "avg_uph": sum(uphs) / len(uphs) if uphs else None,
        "throughput_uph": units / hours if hi > lo else None,
        **{state: [row["state"] for row in rows].count(state) for state in (*STATES,)},
        "unobserved": [row["state"] for row in rows].count("unobserved"),
    }
    return {"workers": workers, "stations": stations, "factory": factory}


def oracle_timeline(stretches: list[Counted], lo: int, hi: int) -> list[Segment]:
    """Counted stretches clipped to [lo, hi), unobserved in between, equal neighbours joined."""
    pieces: list[Segment] = []
    position = lo
    for stretch in stretches:
        start, end = max(stretch.start, lo), min(stretch.end, hi)
        if end <= start:
            continue
        if start > position:
            pieces.append(Segment(position, start, "unobserved", None))
        if stretch.state is None:
            pieces.append(Segment(start, end, "unobserved", None))
        else:
            pieces.append(Segment(start, end, stretch.state, stretch.station))  # type: ignore[arg-type]
        position = end
    if position < hi:
        pieces.append(Segment(position, hi, "unobserved", None))
    joined: list[Segment] = []
    for piece in pieces:
        last = joined[-1] if joined else None
        if last and (last.state, last.station_id, last.end_us) == (
            piece.state,
            piece.station_id,
            piece.start_us,
        ):
            joined[-1] = Segment(last.start_us, piece.end_us, last.state, last.station_id)
        else:
            joined.append(piece)
    return joined


# --- strategies ------------------------------------------------------------------------------


WORKERS = ("W1", "W2", "W3", "W4", "W5")
STATIONS = ("S1", "S2", "S3", "S4", "S5")


SOURCES = st.sampled_from(
    [
        {"model_version": model, "camera_id": camera}
        for model in (None, None, "m1", "m2")
        for camera in (None, "C1", "C2")
    ]
)
"""model_version and camera_id, drawn together (one draw is cheaper than two)."""


@st.composite
def events(draw: st.DrawFn) -> EventRecord:
    minute = draw(st.integers(0, 240))
    second = draw(st.sampled_from([0, 0, 0, 1, 30, 59]))
    micro = draw(st.sampled_from([0, 0, 0, 1, 999_999]) | st.integers(0, 999_999))
    kind = draw(st.sampled_from(["working", "working", "idle", "absent", "product_count"]))
    return ev(
        BASE + minute * MIN + second * S + micro,
        kind,
        draw(st.sampled_from(WORKERS[:3]) | st.sampled_from(WORKERS)),
        draw(st.sampled_from(STATIONS[:3]) | st.sampled_from(STATIONS)),
        confidence=draw(st.sampled_from([0.33, 0.5, 0.75, 0.9, 1.0])),
        units=draw(st.integers(1, 5)) if kind == "product_count" else 0,
        **draw(SOURCES),
    )


@st.composite
def instants(
    draw: st.DrawFn, history: Sequence[EventRecord], max_gap_us: int, minutes: tuple[int, int]
) -> int:
    """A moment on the minute grid (or a few seconds off it), or on an event's instant or the
    end of its interval (the event + max_gap), or one microsecond either side of those."""
    kind = draw(st.sampled_from(["grid", "grid", "event", "event", "gap end", "last seen"]))
    if kind == "grid" or not history:
        offset = draw(st.sampled_from([0, 1, 7 * S, 29 * S]))
        return BASE + draw(st.integers(*minutes)) * MIN + offset
    event = draw(st.sampled_from(history))
    moment = event.ts_us
    if kind == "last seen":  # where the worker's last interval ends: it turns unobserved
        moment = max(e.ts_us for e in history if e.worker_id == event.worker_id) + max_gap_us
    elif kind == "gap end":
        moment += max_gap_us
    return moment + draw(st.sampled_from([-1, 0, 0, 1]))


@st.composite
def questions(
    draw: st.DrawFn, history: Sequence[EventRecord] = (), max_gap_us: int = 0
) -> tuple[Window, int]:
    """A window and an `at`; their edges land on and next to the history's instants too."""
    start = draw(instants(history, max_gap_us, (-20, 250)))
    if draw(st.booleans()):
        end = draw(instants(history, max_gap_us, (-20, 260)))
        start, end = min(start, end), max(start, end)
    else:
        end = start + draw(st.integers(0, 260)) * MIN + draw(st.sampled_from([0, 1, 13 * S]))
    return Window(start, end), draw(instants(history, max_gap_us, (-20, 270)))


@st.composite
def histories(draw: st.DrawFn) -> list[EventRecord]:
    """Up to 40 events, and a few bursts: another event of the same worker 1 µs to 1 s after
    one of them (two cameras, or a count right after a state change)."""
    history = draw(st.lists(events(), max_size=40))
    for _ in range(draw(st.integers(0, 3)) if history else 0):
        first = draw(st.sampled_from(history))
        kind = draw(st.sampled_from(["working", "idle", "absent", "product_count"]))
        history.append(
            ev(
                first.ts_us + draw(st.sampled_from([1, 2, S // 2, S - 1])),
                kind,
                first.worker_id,
                draw(st.sampled_from([first.workstation_id, "S1"])),
                units=2 if kind == "product_count" else 0,
            )
        )
    return history


max_gaps = st.sampled_from([45.0, 600.0, 900.0, 3600.0])
ROSTER_WORKERS = {"W1": "Ana", "W4": "Dan"}
ROSTER_STATIONS = {"S2": "Two", "S5": "Five"}


@st.composite
def scenarios(
    draw: st.DrawFn, count: int = 1
) -> tuple[list[EventRecord], float, list[tuple[Window, int]]]:
    """(history, max_gap_s, `count` questions about it)."""
    history = draw(histories())
    max_gap_s = draw(max_gaps)
    asked = [draw(questions(history, round(max_gap_s * S))) for _ in range(count)]
    return history, max_gap_s, asked


def build(history: Sequence[EventRecord], max_gap_s: float) -> Engine:
    engine = Engine(max_gap_s, ROSTER_WORKERS, ROSTER_STATIONS)
    engine.apply(history)
    return engine


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios())
def test_engine_agrees_with_the_oracle(
    scenario: tuple[list[EventRecord], float, list[tuple[Window, int]]],
) -> None:
    history, max_gap_s, [(window, moment)] = scenario
    max_gap_us = round(max_gap_s * S)
    engine = build(history, max_gap_s)
    snapshot = engine.snapshot(window, moment)
    expected = oracle(history, window, moment, max_gap_us, ROSTER_WORKERS, ROSTER_STATIONS)

    assert [w.worker_id for w in snapshot.workers] == list(expected["workers"])
    for worker in snapshot.workers:
        want = expected["workers"][worker.worker_id]
        for name in ("name", "units", "state", "station_id", "last_seen_us", "events"):
            assert getattr(worker, name) == want[name], name
        for name in ("active_s", "idle_s", "absent_s", "utilization", "uph", "mean_confidence"):
            assert getattr(worker, name) == pytest.approx(want[name], rel=1e-12), name
        assert list(worker.activity) == pytest.approx(want["activity"], rel=1e-12)
        segments = engine.timeline(worker.worker_id, window, moment)
        lo, hi = window.from_us, min(window.to_us, moment)
        assert list(segments) == oracle_timeline(want["segments"], lo, hi)

    assert [s.workstation_id for s in snapshot.stations] == list(expected["stations"])
    for station in snapshot.stations:
        want = expected["stations"][station.workstation_id]
        for name in ("name", "units", "workers_present", "occupancy_s"):
            assert getattr(station, name) == want[name], name
        for name in ("utilization", "throughput_uph"):
            assert getattr(station, name) == pytest.approx(want[name], rel=1e-12), name
        timeline = engine.station_timeline(station.workstation_id, window, moment)
        # It tiles [lo, hi) with pieces of positive length, working or not, at this station.
        edges = [window.from_us] + [seg.end_us for seg in timeline]
        assert [seg.start_us for seg in timeline] == edges[:-1]
        assert all(seg.end_us > seg.start_us for seg in timeline)
        if timeline:
            assert timeline[-1].end_us == min(window.to_us, moment)
        assert {seg.state for seg in timeline} <= {"working", "unobserved"}
        assert {seg.station_id for seg in timeline} <= {station.workstation_id}
        busy = [(seg.start_us, seg.end_us) for seg in timeline if seg.state == "working"]
        assert sum(end - start for start, end in busy) == covered(want["spans"])
        assert covered(busy + want["spans"]) == covered(want["spans"])  # the same stretches

    factory = snapshot.factory
    want = expected["factory"]
    for name in ("units", "working", "idle", "absent", "unobserved"):
        assert getattr(factory, name) == want[name], name
    for name in ("active_s", "idle_s", "absent_s", "avg_utilization", "avg_uph"):
        assert getattr(factory, name) == pytest.approx(want[name], rel=1e-12), name
    assert factory.throughput_uph == pytest.approx(want["throughput_uph"], rel=1e-12)


def test_the_worked_example_through_the_oracle() -> None:
    history = [
        ev(at("10:00"), "working"),
        ev(at("10:10"), "product_count"),
        ev(at("10:40"), "idle"),
    ]
    window = Window(at("10:00"), at("11:00"))
    expected = oracle(history, window, at("11:00"), 900 * S, {}, {})["workers"]["W1"]
    assert (expected["active_s"], expected["idle_s"], expected["utilization"]) == (
        1500.0,
        900.0,
        0.625,
    )
    worker = build(history, 900).snapshot(window, at("11:00")).worker("W1")
    assert worker is not None
    assert (worker.active_s, worker.idle_s, worker.utilization, worker.state) == (
        1500.0,
        900.0,
        0.625,
        "unobserved",
    )


@settings(max_examples=80, deadline=None)
@given(scenario=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_any_arrival_order_gives_the_same_snapshot(
    scenario: tuple[list[EventRecord], float, list[tuple[Window, int]]], seed: int
) -> None:
    history, max_gap_s, [(window, moment)] = scenario
    shuffled = list(history)
    random.Random(seed).shuffle(shuffled)
    assert build(shuffled, max_gap_s).snapshot(window, moment) == build(
        history, max_gap_s
    ).snapshot(window, moment)


@settings(max_examples=80, deadline=None)
@given(scenario=scenarios(), repeats=st.lists(st.integers(0, 39), max_size=30))
def test_duplicates_change_nothing(
    scenario: tuple[list[EventRecord], float, list[tuple[Window, int]]], repeats: list[int]
) -> None:
    history, max_gap_s, [(window, moment)] = scenario
    doubled = list(history)
    if history:
        for position in repeats:
            doubled.insert(position % (len(doubled) + 1), history[position % len(history)])
    engine = Engine(max_gap_s, ROSTER_WORKERS, ROSTER_STATIONS)
    assert engine.apply(doubled) == len({event.event_hash for event in history})
    assert engine.apply(history) == 0
    assert engine.snapshot(window, moment) == build(history, max_gap_s).snapshot(window, moment)


@settings(max_examples=80, deadline=None)
@given(
    scenario=st.integers(1, 4).flatmap(scenarios),
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 40), max_size=6),
)
def test_incremental_in_any_chunking_equals_all_at_once(
    scenario: tuple[list[EventRecord], float, list[tuple[Window, int]]],
    seed: int,
    cuts: list[int],
) -> None:
    history, max_gap_s, questions_ = scenario
    arrivals = list(history)
    random.Random(seed).shuffle(arrivals)
    bounds = sorted({0, len(arrivals), *(cut % (len(arrivals) + 1) for cut in cuts)})
    engine = Engine(max_gap_s, ROSTER_WORKERS, ROSTER_STATIONS)
    for left, right in zip(bounds, bounds[1:], strict=False):
        engine.apply(arrivals[left:right])
        for window, moment in questions_:
            # Asking in between fills the block cache that later chunks must invalidate.
            engine.snapshot(window, moment)
    whole = build(history, max_gap_s)
    for window, moment in questions_:
        assert engine.snapshot(window, moment) == whole.snapshot(window, moment)
        for worker_id in WORKERS:
            assert engine.timeline(worker_id, window, moment) == whole.timeline(
                worker_id, window, moment
            )
        for station_id in STATIONS:
            assert engine.station_timeline(station_id, window, moment) == (
                whole.station_timeline(station_id, window, moment)
            )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), max_gap_s=max_gaps)
def test_a_long_busy_history_in_ticks_equals_a_rebuild(seed: int, max_gap_s: float) -> None:
    """Hundreds of events over a day, many late, fed as a console would: tick by tick."""
    rng = random.Random(seed)
    history = []
    for worker in ("W1", "W2", "W3", "W4"):
        moment = BASE + rng.randrange(30) * MIN
        while moment < BASE + 20 * 60 * MIN:
            kind = rng.choice(["working", "working", "working", "idle", "absent", "product_count"])
            history.append(
                ev(moment, kind, worker, rng.choice(["S1", "S2"]), units=rng.randrange(1, 3))
            )
            moment += rng.choice([1, 2, 5, 10, 20, 40]) * MIN + rng.randrange(60) * S
            moment += rng.choice([0, 0, 1, rng.randrange(S)])
    arrivals = sorted(history, key=lambda e: e.ts_us + rng.choice([0, 0, 0, 1, 30]) * MIN)
    shift = Window(BASE + 60 * MIN, BASE + 9 * 60 * MIN)
    engine = Engine(max_gap_s, ROSTER_WORKERS, ROSTER_STATIONS)
    for first in range(0, len(arrivals), 25):
        engine.apply(arrivals[first : first + 25])
        engine.snapshot(shift, arrivals[min(first + 24, len(arrivals) - 1)].ts_us)
    moment = BASE + 8 * 60 * MIN
    whole = build(history, max_gap_s)
    assert engine.snapshot(shift, moment) == whole.snapshot(shift, moment)
    expected = oracle(history, shift, moment, round(max_gap_s * S), ROSTER_WORKERS, ROSTER_STATIONS)
    for station in whole.snapshot(shift, moment).stations:
        assert station.occupancy_s == expected["stations"][station.workstation_id]["occupancy_s"]


@settings(max_examples=100, deadline=None)
@given(scenario=scenarios())
def test_time_and_units_at_a_station_agree_with_the_oracle(
    scenario: tuple[list[EventRecord], float, list[tuple[Window, int]]],
) -> None:
    """`Engine.station_time`: each worker's counted time by state while at the station, and
    its units there, exactly as DESIGN.md's stretches say."""
    history, max_gap_s, [(window, moment)] = scenario
    max_gap_us = round(max_gap_s * S)
    engine = build(history, max_gap_s)
    unique = {event.event_hash: event for event in history}
    seen = sorted(
        (event for event in unique.values() if event.ts_us <= moment),
        key=lambda e: (e.ts_us, e.event_hash),
    )
    lo, hi = window.from_us, min(window.to_us, moment)
    for station in STATIONS:
        expected: dict[str, tuple[float, float, float, int]] = {}
        for worker_id in WORKERS:
            mine = [event for event in seen if event.worker_id == worker_id]
            totals = dict.fromkeys(STATES, 0)
            for stretch in oracle_stretches(mine, moment, max_gap_us):
                if stretch.state is not None and stretch.station == station:
                    totals[stretch.state] += overlap(stretch.start, stretch.end, lo, hi)
            units = sum(
                event.count
                for event in mine
                if event.event_type == "product_count"
                and event.workstation_id == station
                and window.from_us <= event.ts_us < window.to_us
            )
            if any(totals.values()) or units:
                expected[worker_id] = (
                    totals["working"] / S,
                    totals["idle"] / S,
                    totals["absent"] / S,
                    units,
                )
        assert engine.station_time(station, window, moment) == expected


@settings(max_examples=120, deadline=None)
@given(scenario=scenarios())
def test_idle_since_is_where_the_timelines_trailing_idle_begins(
    scenario: tuple[list[EventRecord], float, list[tuple[Window, int]]],
) -> None:
    """`Engine.idle_since` walks runs back; the timeline's trailing idle segments say the same."""
    history, max_gap_s, [(window, moment)] = scenario
    engine = build(history, max_gap_s)
    for worker_id in WORKERS:
        timeline = engine.timeline(worker_id, window, moment)
        assert engine.idle_since(worker_id, window, moment) == idle_since(timeline), worker_id
