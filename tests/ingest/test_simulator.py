"""The camera simulator's generator: valid events, determinism, and the shape of the floor."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.config import load_settings
from factory_tui.ingest.simulator import (
    CameraFleet,
    Emission,
    FleetConfig,
    SimClock,
    extend_roster,
    fleet_config_for,
    write_jsonl,
)
from factory_tui.ingest.simulator_model import plan_drift
from factory_tui.models import RosterEntry, parse_event, to_utc_us

US = 1_000_000
HOUR = 3600 * US
# A shift start under the default anchor (06:00 UTC).
SHIFT = to_utc_us(datetime(2025, 3, 3, 6, 0, tzinfo=UTC))
WORKERS = extend_roster([], 6, "W")
STATIONS = extend_roster([], 6, "S")
QUIET = {"dark_per_hour": 0.0, "duplicate_rate": 0.0, "late_rate": 0.0}
"""No dark periods, duplicates or late lines: the lines are exactly the floor's truth."""


def fleet(
    workers: int | Sequence[RosterEntry] = 6,
    stations: int = 6,
    *,
    seed: int = 1,
    **config: Any,
) -> CameraFleet:
    roster = extend_roster([], workers, "W") if isinstance(workers, int) else workers
    return CameraFleet(
        roster, extend_roster([], stations, "S"), seed=seed, config=FleetConfig(**config)
    )


def by_camera(emissions: Sequence[Emission]) -> dict[str, list[Emission]]:
    cameras: dict[str, list[Emission]] = defaultdict(list)
    for emission in emissions:
        cameras[emission.camera_id].append(emission)
    return cameras


def observed_time(
    emissions: Sequence[Emission], end_us: int, max_gap_us: int = 900 * US
) -> tuple[Counter[str], dict[str, dict[str, int]], Counter[str]]:
    """Time per state as DESIGN.md counts it (sighting to sighting, capped at max_gap).

    Returns (total per state, per worker per state, units per worker).
    """
    events: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for emission in emissions:
        data = json.loads(emission.line)
        events[data["worker_id"]].append((emission.ts_us, data["event_type"], data.get("count", 0)))
    totals: Counter[str] = Counter()
    per_worker: dict[str, dict[str, int]] = {}
    units: Counter[str] = Counter()
    for worker, items in events.items():
        items.sort()
        mine: Counter[str] = Counter()
        state: str | None = None
        for (ts, kind, count), following in zip(items, [*items[1:], (end_us, "", 0)], strict=True):
            if kind == "product_count":
                units[worker] += count
            else:
                state = kind
            if state is not None:
                mine[state] += min(following[0] - ts, max_gap_us)
        totals.update(mine)
        per_worker[worker] = dict(mine)
    return totals, per_worker, units


@cache
def reference_lines() -> tuple[bytes, ...]:
    """Two shifts and a bit of a busy fleet, generated in one call."""
    busy = fleet(4, 3, seed=11, duplicate_rate=0.05, late_rate=0.05, dark_per_hour=0.3)
    return tuple(busy.events_between(SHIFT - HOUR, SHIFT + 17 * HOUR))


# --- the lines themselves -----------------------------------------------------------------


def test_every_line_is_a_valid_event_with_a_model_and_a_camera() -> None:
    floor = fleet(seed=3)
    lines = floor.events_between(SHIFT, SHIFT + 8 * HOUR)
    assert len(lines) > 6 * 8 * 60, "every camera repeats its state at least once a minute"
    types: Counter[str] = Counter()
    for line in lines:
        assert b"\n" not in line
        event = parse_event(line)
        types[event.event_type] += 1
        assert event.worker_id in {w.id for w in WORKERS}
        assert event.workstation_id in {s.id for s in STATIONS}
        assert event.model_version in {"yolo-v8.2", "yolo-v9.0"}
        assert event.camera_id == f"cam-{event.worker_id}"
        assert 0.0 <= event.confidence <= 1.0
        assert event.count == (1 if event.event_type == "product_count" else 0)
        assert SHIFT <= event.ts_us < SHIFT + 8 * HOUR
    assert set(types) == {"working", "idle", "absent", "product_count"}


def test_the_same_seed_gives_the_same_lines_and_another_seed_others() -> None:
    first = fleet(seed=5).events_between(SHIFT, SHIFT + 2 * HOUR)
    again = fleet(seed=5).events_between(SHIFT, SHIFT + 2 * HOUR)
    other = fleet(seed=6).events_between(SHIFT, SHIFT + 2 * HOUR)
    assert first == again
    assert first != other
    assert len(set(first) & set(other)) < len(first) // 4


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=18 * HOUR - 1), max_size=25))
def test_cutting_time_into_any_spans_gives_the_same_lines(cuts: list[int]) -> None:
    """Tick by tick or all at once: the lines, and their order, are the same."""
    busy = fleet(4, 3, seed=11, duplicate_rate=0.05, late_rate=0.05, dark_per_hour=0.3)
    bounds = [SHIFT - HOUR, *sorted(SHIFT - HOUR + cut for cut in cuts), SHIFT + 17 * HOUR]
    pieces: list[bytes] = []
    for t0, t1 in zip(bounds, bounds[1:], strict=False):
        pieces.extend(busy.events_between(t0, t1))
    assert pieces == list(reference_lines())


def test_spans_asked_for_in_any_order_are_regenerated_exactly() -> None:
    busy = fleet(4, 3, seed=11, duplicate_rate=0.05, late_rate=0.05, dark_per_hour=0.3)
    fresh = fleet(4, 3, seed=11, duplicate_rate=0.05, late_rate=0.05, dark_per_hour=0.3)
    later = busy.events_between(SHIFT + 9 * HOUR, SHIFT + 10 * HOUR)
    earlier = busy.events_between(SHIFT + HOUR, SHIFT + 2 * HOUR)
    overlapping = busy.events_between(SHIFT + 90 * 60 * US, SHIFT + 9 * HOUR + 30 * 60 * US)
    assert later == fresh.events_between(SHIFT + 9 * HOUR, SHIFT + 10 * HOUR)
    assert earlier == fresh.events_between(SHIFT + HOUR, SHIFT + 2 * HOUR)
    assert overlapping == fresh.events_between(
        SHIFT + 90 * 60 * US, SHIFT + 9 * HOUR + 30 * 60 * US
    )
    assert busy.events_between(SHIFT, SHIFT) == []
    with pytest.raises(ValueError, match="ends before it starts"):
        busy.events_between(SHIFT, SHIFT - 1)


def test_a_workers_lines_do_not_depend_on_the_rest_of_the_fleet() -> None:
    small = fleet(WORKERS[:3], seed=2)
    large = fleet([*WORKERS[:3], RosterEntry("E-100", "Extra")], seed=2)
    span = (SHIFT, SHIFT + 4 * HOUR)
    mine = [e for e in small.emissions_between(*span) if e.camera_id == "cam-W2"]
    same = [e for e in large.emissions_between(*span) if e.camera_id == "cam-W2"]
    assert mine == same
    assert any(e.camera_id == "cam-E-100" for e in large.emissions_between(*span))


def test_lines_come_in_send_order_inside_the_span_and_never_cross_a_shift_end() -> None:
    busy = fleet(4, 3, seed=4, duplicate_rate=0.1, late_rate=0.1)
    t0, t1 = SHIFT + 7 * HOUR + 50 * 60 * US, SHIFT + 8 * HOUR + 10 * 60 * US
    emissions = busy.emissions_between(t0, t1)
    sends = [e.send_us for e in emissions]
    assert sends == sorted(sends)
    assert all(t0 <= send < t1 for send in sends)
    shift_end = SHIFT + 8 * HOUR
    for emission in emissions:
        # A line stamped in one shift is sent in that shift (blocks stay independent).
        assert (emission.ts_us < shift_end) == (emission.send_us < shift_end)
        assert emission.send_us >= emission.ts_us


def test_write_jsonl_writes_the_same_lines_as_events_between(tmp_path: Path) -> None:
    floor = fleet(3, 2, seed=9)
    path = tmp_path / "shift.jsonl"
    progress: list[tuple[int, int]] = []
    count = write_jsonl(
        floor, path, SHIFT, SHIFT + 2 * HOUR, progress=lambda n, done: progress.append((n, done))
    )
    written = path.read_bytes().splitlines()
    assert count == len(written)
    assert written == fleet(3, 2, seed=9).events_between(SHIFT, SHIFT + 2 * HOUR)
    assert progress[-1] == (count, 2 * HOUR)
    assert [done for _, done in progress] == sorted(done for _, done in progress)


# --- the shape of the floor ---------------------------------------------------------------


def test_each_camera_repeats_its_state_more_often_than_max_gap() -> None:
    floor = fleet(10, 4, seed=8, **QUIET)
    emissions = floor.emissions_between(SHIFT, SHIFT + 8 * HOUR)
    for camera, mine in by_camera(emissions).items():
        stamps = [e.ts_us for e in mine]
        assert stamps[0] == SHIFT, f"{camera} reports from the shift start"
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert max(gaps) <= 60 * US, f"{camera} went quiet for {max(gaps) / US:.0f} s"


def test_time_in_each_state_matches_the_configured_behaviour() -> None:
    """Shares of working / idle / absent over 180 worker-shifts within 2 points of expected."""
    floor = fleet(60, 6, seed=21, **QUIET)
    end = SHIFT + 3 * 8 * HOUR
    totals, _, _ = observed_time(floor.emissions_between(SHIFT, end), end)
    expected = floor.config.expected_shares()
    whole = sum(totals.values())
    assert whole == 60 * 3 * 8 * HOUR, "with heartbeats, every moment is observed"
    for state, share in expected.items():
        assert totals[state] / whole == pytest.approx(share, abs=0.02), state
    # The expectation itself is believable: mostly working, a real share idle and absent.
    assert 0.6 < expected["working"] < 0.75
    assert expected["idle"] > 0.1
    assert expected["absent"] > 0.1


def test_units_per_hour_match_each_workers_rate() -> None:
    floor = fleet(60, 6, seed=22, **QUIET)
    end = SHIFT + 3 * 8 * HOUR
    _, per_worker, units = observed_time(floor.emissions_between(SHIFT, end), end)
    expected_total = 0.0
    for worker, states in per_worker.items():
        rate = floor.camera(worker).units_per_hour
        working_h = states["working"] / HOUR
        expected_total += rate * working_h
        assert units[worker] / working_h == pytest.approx(rate, rel=0.25), worker
    assert sum(units.values()) == pytest.approx(expected_total, rel=0.03)
    rates = [camera.units_per_hour for camera in floor.cameras]
    assert statistics.mean(rates) == pytest.approx(30.0, rel=0.1)
    assert statistics.pstdev(rates) > 2.0, "workers differ in pace"


def test_breaks_arrivals_and_station_changes_happen() -> None:
    floor = fleet(40, 6, seed=23, **QUIET)
    end = SHIFT + 8 * HOUR
    emissions = floor.emissions_between(SHIFT, end)
    first_work: dict[str, int] = {}
    stations: dict[str, set[str]] = defaultdict(set)
    state_at: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for emission in emissions:
        data = json.loads(emission.line)
        worker = data["worker_id"]
        if data["event_type"] == "working":
            first_work.setdefault(worker, emission.ts_us)
            stations[worker].add(data["workstation_id"])
        if data["event_type"] != "product_count":
            state_at[worker].append((emission.ts_us, data["event_type"]))
    # Everyone starts absent and arrives within the first ten minutes (or a little later when
    # the first spell after arriving is idle or a walk away).
    assert all(json.loads(e.line)["event_type"] == "absent" for e in emissions[:40])
    assert statistics.median(first_work[w] - SHIFT for w in first_work) < 15 * 60 * US
    assert sum(len(seen) > 1 for seen in stations.values()) >= 5, "some workers change station"

    def absent_share(at_us: int) -> float:
        absent = 0
        for history in state_at.values():
            current = [state for ts, state in history if ts <= at_us][-1]
            absent += current == "absent"
        return absent / len(state_at)

    # Lunch sits at mid-shift: at its centre nearly everyone is away; mid-morning most work.
    assert absent_share(SHIFT + 4 * HOUR) > 0.8
    assert absent_share(SHIFT + 3 * HOUR) < 0.35


def test_most_cameras_run_the_main_model_and_a_share_the_newer_one() -> None:
    profiles = fleet(400, 6, seed=24).cameras
    versions = Counter(camera.model_version for camera in profiles)
    assert set(versions) == {"yolo-v8.2", "yolo-v9.0"}
    assert versions["yolo-v9.0"] / len(profiles) == pytest.approx(0.25, abs=0.06)
    for camera in profiles:
        assert 0.86 <= camera.confidence_mean <= 0.99


def test_confidence_stays_near_each_cameras_mean_with_occasional_dips() -> None:
    floor = fleet(6, 6, seed=25, drift_chance=0.0, **QUIET)
    emissions = floor.emissions_between(SHIFT, SHIFT + 8 * HOUR)
    dips = 0
    for camera, mine in by_camera(emissions).items():
        values = [json.loads(e.line)["confidence"] for e in mine]
        mean = next(p.confidence_mean for p in floor.cameras if p.camera_id == camera)
        assert statistics.median(values) == pytest.approx(mean, abs=0.01)
        dips += sum(value < 0.65 for value in values)
    assert dips / len(emissions) == pytest.approx(0.02, abs=0.01)


def test_a_drift_episode_lowers_the_newer_models_confidence_only() -> None:
    floor = fleet(80, 6, seed=26, drift_chance=1.0, dip_chance=0.0, **QUIET)
    episode = plan_drift(26, "yolo-v9.0", floor.block_of(SHIFT), floor.config)
    assert episode is not None
    assert plan_drift(26, "yolo-v8.2", floor.block_of(SHIFT), floor.config) is None
    start, end = SHIFT + episode[0], SHIFT + episode[1]
    inside: dict[str, list[float]] = defaultdict(list)
    outside: dict[str, list[float]] = defaultdict(list)
    for emission in floor.emissions_between(SHIFT, SHIFT + 8 * HOUR):
        data = json.loads(emission.line)
        bucket = inside if start <= emission.ts_us < end else outside
        bucket[data["model_version"]].append(data["confidence"])
    new_drop = statistics.mean(outside["yolo-v9.0"]) - statistics.mean(inside["yolo-v9.0"])
    old_drop = statistics.mean(outside["yolo-v8.2"]) - statistics.mean(inside["yolo-v8.2"])
    assert new_drop == pytest.approx(0.15, abs=0.03)
    assert abs(old_drop) < 0.01


# --- duplicates, late lines and dark cameras ----------------------------------------------


def test_duplicates_come_at_the_configured_rate_and_are_the_same_events() -> None:
    floor = fleet(30, 6, seed=27, duplicate_rate=0.05, late_rate=0.0, dark_per_hour=0.0)
    emissions = floor.emissions_between(SHIFT, SHIFT + 8 * HOUR)
    seen: dict[str, bytes] = {}
    repeats = 0
    respelled = Counter[str]()
    for emission in emissions:
        digest = parse_event(emission.line).event_hash()
        if digest in seen:
            repeats += 1
            assert emission.kind == "duplicate"
            original = seen[digest]
            if emission.line == original:
                respelled["exact"] += 1
            elif b"+00:00" in emission.line:
                respelled["offset"] += 1
            else:
                assert json.loads(emission.line) == json.loads(original)
                respelled["reordered"] += 1
        else:
            assert emission.kind == "on_time"
            seen[digest] = emission.line
    originals = len(seen)
    assert repeats / originals == pytest.approx(0.05, rel=0.15)
    assert min(respelled.values()) > repeats / 6, respelled
    assert len(respelled) == 3


def test_late_lines_come_at_the_configured_rate_and_arrive_out_of_order() -> None:
    floor = fleet(30, 6, seed=28, late_rate=0.05, duplicate_rate=0.0, dark_per_hour=0.0)
    emissions = floor.emissions_between(SHIFT, SHIFT + 8 * HOUR)
    late = [e for e in emissions if e.kind == "late"]
    assert len(late) / len(emissions) == pytest.approx(0.05, rel=0.15)
    for emission in late:
        assert 5 * US <= emission.send_us - emission.ts_us <= 120 * US
    assert all(e.send_us == e.ts_us for e in emissions if e.kind == "on_time")
    # Seen from the listener: a late line arrives after a line with a later timestamp.
    behind = 0
    for mine in by_camera(emissions).values():
        newest = 0
        for emission in mine:
            behind += emission.ts_us < newest
            newest = max(newest, emission.ts_us)
    assert behind >= 0.5 * len(late)


def test_cameras_go_dark_at_the_configured_rate_for_longer_than_max_gap() -> None:
    rate_per_hour, dark_s = 0.5, (1200.0, 2400.0)
    floor = fleet(
        100,
        6,
        seed=29,
        dark_per_hour=rate_per_hour,
        dark_s=dark_s,
        duplicate_rate=0.0,
        late_rate=0.0,
    )
    end = SHIFT + 2 * 8 * HOUR
    emissions = floor.emissions_between(SHIFT, end + 10 * 60 * US)
    darks: list[int] = []
    cut_short = 0
    for mine in by_camera(emissions).values():
        stamps = [e.ts_us for e in mine]
        for before, after in zip(stamps, stamps[1:], strict=False):
            if after - before > 90 * US and before < end:
                darks.append(after - before)
                # A dark period still running when the shift ends is cut there.
                cut_short += (after - SHIFT) % (8 * HOUR) == 0 and after - before <= 900 * US
    camera_hours = 100 * 16
    cycle_h = 1 / rate_per_hour + sum(dark_s) / 2 / 3600
    assert len(darks) / camera_hours == pytest.approx(1 / cycle_h, rel=0.12)
    longer = sum(gap > 900 * US for gap in darks)
    assert longer + cut_short == len(darks), "every whole dark period exceeds max_gap"
    assert max(darks) <= dark_s[1] * US + 60 * US


# --- configuration, roster and clock --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("duplicate_rate", 1.5, "duplicate_rate must be between 0 and 1"),
        ("heartbeat_s", 0.0, "heartbeat_s"),
        ("transitions", ((0.5, 0.5, 0.0), (1.0, 0.0, 0.0), (0.5, 0.6, 0.0)), "sum to 1"),
        ("late_delay_s", (10.0, 5.0), "late_delay_s"),
        ("shift_s", 3600.0, "break at 0.25 of the shift can overlap"),
        ("confidence_range", (0.5, 1.2), "confidence_range"),
        ("model_version", "", "model_version"),
    ],
)
def test_fleet_config_rejects_impossible_values(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FleetConfig(**{field: value})


def test_fleets_need_unique_ids_and_somebody_to_watch() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        CameraFleet([], STATIONS)
    with pytest.raises(ValueError, match="at least one workstation"):
        CameraFleet(WORKERS, [])
    with pytest.raises(ValueError, match="worker ids must be unique"):
        CameraFleet([WORKERS[0], WORKERS[0]], STATIONS)


def test_extend_roster_keeps_the_roster_and_tops_it_up() -> None:
    roster = [RosterEntry("W2", "Bo"), RosterEntry("E7", "Eve")]
    grown = extend_roster(roster, 5, "W")
    assert [entry.id for entry in grown] == ["W2", "E7", "W1", "W3", "W4"]
    assert grown[0].name == "Bo"
    assert grown[2].name == "W1"
    assert extend_roster(roster, 1, "W") == (roster[0],)
    assert extend_roster(roster, None, "W") == tuple(roster)
    with pytest.raises(ValueError, match="at least one"):
        extend_roster(roster, 0, "W")


def test_long_worker_ids_get_short_camera_ids() -> None:
    long_id = "x" * 64
    floor = CameraFleet([RosterEntry(long_id, "Long")], STATIONS)
    assert floor.cameras[0].camera_id == "cam-1"
    parse_event(floor.events_between(SHIFT, SHIFT + 60 * US)[0])


def test_sim_clock_runs_at_its_speed_and_can_change_it() -> None:
    real = [100.0]
    clock = SimClock(SHIFT, 60.0, real=lambda: real[0])
    assert clock.now_us() == SHIFT
    real[0] += 2.5
    assert clock.now_us() == SHIFT + 150 * US
    clock.set_speed(0)
    real[0] += 10
    assert clock.now_us() == SHIFT + 150 * US, "speed 0 pauses"
    clock.set_speed(2)
    real[0] += 1
    assert clock.now_us() == SHIFT + 152 * US
    assert clock.start_us == SHIFT
    assert clock.speed == 2
    with pytest.raises(ValueError, match="speed"):
        SimClock(SHIFT, -1)


def test_fleet_config_follows_the_sites_shifts_and_max_gap(tmp_path: Path) -> None:
    config = tmp_path / "factory.toml"
    config.write_text(
        'timezone = "Europe/Lisbon"\n[metrics]\nmax_gap_s = 80\n'
        '[[shifts]]\nname = "Day"\nstart = "07:00"\nend = "19:00"\n'
        '[[shifts]]\nname = "Late"\nstart = "19:00"\nend = "23:00"\n',
        encoding="utf-8",
    )
    site = load_settings(config, environ={})
    # 10:00 in Lisbon in July is 09:00 UTC: inside the 12-hour day shift starting 06:00 UTC.
    july = to_utc_us(datetime(2025, 7, 1, 9, 0, tzinfo=UTC))
    day = fleet_config_for(site, july)
    assert day.shift_anchor_us == to_utc_us(datetime(2025, 7, 1, 6, 0, tzinfo=UTC))
    assert day.shift_s == 12 * 3600
    assert day.heartbeat_s == 40.0, "heartbeats stay under max_gap"
    # 20:00 Lisbon: the 4-hour late shift, too short for the default breaks.
    evening = fleet_config_for(site, to_utc_us(datetime(2025, 7, 1, 19, 0, tzinfo=UTC)))
    assert evening.shift_s == 4 * 3600
    assert len(evening.breaks) == 1
    floor = CameraFleet(WORKERS, STATIONS, config=evening)
    assert floor.shift_start(july) % (4 * HOUR) == evening.shift_anchor_us % (4 * HOUR)
    assert fleet_config_for(site, july, duplicate_rate=0.2).duplicate_rate == 0.2
