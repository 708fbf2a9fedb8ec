"""Hand-computed cases for every metric definition of DESIGN.md and its edges."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from factory_tui.engine import Engine, Segment, Snapshot, Window
from factory_tui.engine.stations import StationUnits, union_length, union_spans
from factory_tui.engine.timeline import hash_key, hash_keys
from factory_tui.models import EventRecord
from tests.engine.eventkit import MIN, S, at, ev

HOUR = Window(at("10:00"), at("11:00"), "10-11")


def engine_with(
    *events: EventRecord,
    max_gap_s: float = 900.0,
    workers: dict[str, str] | None = None,
    stations: dict[str, str] | None = None,
) -> Engine:
    engine = Engine(max_gap_s=max_gap_s, workers=workers or {}, workstations=stations or {})
    engine.apply(events)
    return engine


def snap(engine: Engine, window: Window = HOUR, now: str = "11:00") -> Snapshot:
    return engine.snapshot(window, at(now))


class TestWorkedExample:
    """DESIGN.md: working at S1 10:00, product_count 10:10, idle 10:40, nothing more."""

    def engine(self) -> Engine:
        return engine_with(
            ev(at("10:00"), "working"),
            ev(at("10:10"), "product_count", units=4),
            ev(at("10:40"), "idle"),
            workers={"W1": "Ana Silva"},
            stations={"S1": "Assembly 1"},
        )

    def test_worker_figures(self) -> None:
        worker = snap(self.engine()).workers[0]
        assert worker.worker_id == "W1"
        assert worker.name == "Ana Silva"
        assert worker.active_s == 1500.0  # 10:00-10:10 and 10:10-10:25 (30 min gap capped)
        assert worker.idle_s == 900.0  # 10:40-10:55
        assert worker.absent_s == 0.0
        assert worker.utilization == 0.625
        assert worker.units == 4
        assert worker.uph == pytest.approx(4 / (1500 / 3600))
        assert worker.state == "unobserved"  # latest event 20 min old at 11:00
        assert worker.station_id == "S1"
        assert worker.last_seen_us == at("10:40")
        assert worker.events == 3
        assert worker.mean_confidence == pytest.approx(0.9)

    def test_station_and_factory(self) -> None:
        snapshot = snap(self.engine())
        (station,) = snapshot.stations
        assert station.workstation_id == "S1"
        assert station.name == "Assembly 1"
        assert station.occupancy_s == 1500.0
        assert station.utilization == pytest.approx(1500 / 3600)
        assert station.units == 4
        assert station.throughput_uph == 4.0
        assert station.workers_present == ()
        factory = snapshot.factory
        assert (factory.active_s, factory.idle_s, factory.units) == (1500.0, 900.0, 4)
        assert factory.avg_utilization == 0.625
        assert factory.avg_uph == pytest.approx(9.6)
        assert factory.throughput_uph == 4.0
        assert (factory.working, factory.idle, factory.absent, factory.unobserved) == (0, 0, 0, 1)

    def test_timeline_shows_the_unobserved_rest(self) -> None:
        assert self.engine().timeline("W1", HOUR, at("11:00")) == (
            Segment(at("10:00"), at("10:25"), "working", "S1"),
            Segment(at("10:25"), at("10:40"), "unobserved", None),
            Segment(at("10:40"), at("10:55"), "idle", "S1"),
            Segment(at("10:55"), at("11:00"), "unobserved", None),
        )

    def test_state_at_the_edge_of_max_gap(self) -> None:
        engine = self.engine()
        # 10:55 is exactly max_gap after the idle event: still observed; a microsecond later not.
        assert snap(engine, now="10:55").workers[0].state == "idle"
        assert engine.snapshot(HOUR, at("10:55") + 1).workers[0].state == "unobserved"


def test_empty_engine_lists_the_roster_with_nulls() -> None:
    engine = Engine(max_gap_s=900, workers={"W2": "Bea", "W1": "Ana"}, workstations={"S1": "A"})
    snapshot = snap(engine)
    assert [w.worker_id for w in snapshot.workers] == ["W1", "W2"]
    worker = snapshot.workers[0]
    assert (worker.active_s, worker.idle_s, worker.absent_s, worker.units) == (0, 0, 0, 0)
    assert worker.utilization is None
    assert worker.uph is None
    assert worker.state == "unobserved"
    assert worker.station_id is None
    assert worker.last_seen_us is None
    assert worker.mean_confidence is None
    assert worker.activity == (0.0,) * 12
    (station,) = snapshot.stations
    assert (station.occupancy_s, station.utilization, station.units) == (0.0, 0.0, 0)
    assert station.throughput_uph == 0.0
    factory = snapshot.factory
    assert factory.avg_utilization is None
    assert factory.avg_uph is None
    assert factory.unobserved == 2
    assert snapshot.cursor == 0
    assert snapshot.total_events == 0


def test_empty_window_counts_nothing_and_ratios_are_null() -> None:
    engine = engine_with(ev(at("10:00"), "working"), ev(at("10:05"), "product_count"))
    snapshot = engine.snapshot(Window(at("10:02"), at("10:02")), at("10:06"))
    worker = snapshot.workers[0]
    assert (worker.active_s, worker.units, worker.events) == (0.0, 0, 0)
    assert worker.utilization is None
    assert worker.state == "working"  # the current state does not depend on the window
    station = snapshot.stations[0]
    assert station.utilization is None
    assert station.throughput_uph is None
    assert snapshot.factory.throughput_uph is None
    assert engine.timeline("W1", Window(at("10:02"), at("10:02")), at("10:06")) == ()


def test_events_outside_the_window_only_carry_state_in() -> None:
    engine = engine_with(
        ev(at("09:30"), "product_count", units=5),
        ev(at("09:50"), "idle"),
        ev(at("10:20"), "working"),
        ev(at("10:30"), "product_count", units=2),
        ev(at("11:05"), "product_count", units=7),
        ev(at("11:10"), "absent"),
    )
    worker = snap(engine, now="12:00").workers[0]
    # idle 09:50 reaches 10:05 (capped), only 10:00-10:05 is in the window.
    assert worker.idle_s == 300.0
    # working 10:20-10:30, then 10:30-10:45 (the next sighting, 11:05, is 35 min later).
    assert worker.active_s == 1500.0
    assert worker.units == 2
    assert worker.events == 2
    assert worker.absent_s == 0.0


def test_time_straddling_both_edges_is_clipped() -> None:
    engine = engine_with(ev(at("09:58"), "working"), ev(at("10:12"), "working"))
    window = Window(at("10:00"), at("10:10"))
    worker = engine.snapshot(window, at("10:20")).workers[0]
    assert worker.active_s == 600.0
    assert engine.snapshot(window, at("10:20")).stations[0].occupancy_s == 600.0
    assert engine.timeline("W1", window, at("10:20")) == (
        Segment(at("10:00"), at("10:10"), "working", "S1"),
    )


def test_gap_longer_than_max_gap_without_sightings_is_capped() -> None:
    engine = engine_with(ev(at("10:00"), "working"), ev(at("10:40"), "idle"))
    worker = snap(engine, now="10:40").workers[0]
    assert worker.active_s == 900.0
    assert worker.idle_s == 0.0


def test_product_count_sightings_inside_a_long_gap_keep_it_counted() -> None:
    engine = engine_with(
        ev(at("10:00"), "working"),
        ev(at("10:10"), "product_count"),
        ev(at("10:20"), "product_count"),
        ev(at("10:30"), "product_count"),
        ev(at("10:40"), "idle"),
    )
    worker = snap(engine, now="10:40").workers[0]
    assert worker.active_s == 2400.0  # every gap is 10 min, under the cap
    assert worker.units == 3
    assert worker.state == "idle"


def test_product_count_before_the_first_state_event_is_unobserved_time() -> None:
    engine = engine_with(ev(at("10:00"), "product_count", units=3), ev(at("10:10"), "working"))
    worker = snap(engine, now="10:20").workers[0]
    assert worker.active_s == 600.0  # 10:10-10:20 only
    assert worker.units == 3
    assert worker.uph == pytest.approx(3 / (600 / 3600))
    assert snap(engine, now="10:05").workers[0].state == "unobserved"
    assert snap(engine, now="10:05").workers[0].station_id is None
    assert engine.timeline("W1", HOUR, at("10:20"))[0] == Segment(
        at("10:00"), at("10:10"), "unobserved", None
    )


def test_two_state_events_at_one_instant_are_ordered_by_hash() -> None:
    working = ev(at("10:00"), "working")
    idle = ev(at("10:00"), "idle")
    later, earlier = sorted((working, idle), key=lambda e: e.event_hash, reverse=True)
    results = []
    for order in ((working, idle), (idle, working)):
        engine = engine_with(*order)
        results.append(snap(engine, now="10:10"))
    assert results[0] == results[1]
    worker = results[0].workers[0]
    # The one with the larger hash comes last at that instant, so it sets the state.
    assert worker.state == later.event_type
    expected = {"working": worker.active_s, "idle": worker.idle_s}
    assert expected[later.event_type] == 600.0
    assert expected[earlier.event_type] == 0.0


def test_two_workers_at_one_station_count_once() -> None:
    engine = engine_with(
        ev(at("10:00"), "working", "W1"),
        ev(at("10:10"), "working", "W1"),
        ev(at("10:20"), "idle", "W1"),
        ev(at("10:05"), "working", "W2"),
        ev(at("10:15"), "working", "W2"),
        ev(at("10:25"), "absent", "W2"),
    )
    snapshot = snap(engine, now="10:30")
    assert [w.active_s for w in snapshot.workers] == [1200.0, 1200.0]
    (station,) = snapshot.stations
    assert station.occupancy_s == 1500.0  # 10:00-10:25, not 1200 + 1200
    assert snapshot.factory.active_s == 2400.0
    assert engine.station_timeline("S1", HOUR, at("10:30")) == (
        Segment(at("10:00"), at("10:25"), "working", "S1"),
        Segment(at("10:25"), at("10:30"), "unobserved", "S1"),
    )
    assert station.workers_present == ("W1",)  # idle there; W2 is absent


def test_product_count_at_the_window_edges() -> None:
    engine = engine_with(
        ev(at("09:59"), "working"),
        ev(at("10:00"), "product_count", units=1),
        ev(at("11:00"), "product_count", units=10),
    )
    snapshot = snap(engine, now="11:30")
    assert snapshot.workers[0].units == 1  # from <= ts < to
    assert snapshot.stations[0].units == 1
    # With `at` exactly on a product_count, it counts (events at or before `at` are seen).
    window = Window(at("10:00"), at("12:00"))
    assert engine.snapshot(window, at("11:00")).workers[0].units == 11
    assert engine.snapshot(window, at("11:00") - 1).workers[0].units == 1


def test_a_worker_moving_between_stations() -> None:
    engine = engine_with(
        ev(at("10:00"), "working", workstation_id="S1"),
        ev(at("10:05"), "product_count", workstation_id="S1", units=2),
        ev(at("10:10"), "working", workstation_id="S2"),
        ev(at("10:15"), "product_count", workstation_id="S2", units=5),
        ev(at("10:20"), "idle", workstation_id="S2"),
    )
    snapshot = snap(engine, now="10:30")
    worker = snapshot.workers[0]
    assert worker.active_s == 1200.0
    assert worker.units == 7
    assert worker.station_id == "S2"
    assert worker.state == "idle"
    s1, s2 = snapshot.stations
    assert (s1.occupancy_s, s1.units, s1.workers_present) == (600.0, 2, ())
    assert (s2.occupancy_s, s2.units, s2.workers_present) == (600.0, 5, ("W1",))
    assert engine.timeline("W1", HOUR, at("10:30")) == (
        Segment(at("10:00"), at("10:10"), "working", "S1"),
        Segment(at("10:10"), at("10:20"), "working", "S2"),
        Segment(at("10:20"), at("10:30"), "idle", "S2"),
    )


def test_events_after_at_are_ignored() -> None:
    events = [
        ev(at("10:00"), "working", "W1"),
        ev(at("10:20"), "product_count", "W1"),
        ev(at("10:30"), "working", "W2", "S9"),
    ]
    engine = engine_with(*events)
    past = snap(engine, now="10:10")
    assert [w.worker_id for w in past.workers] == ["W1"]  # W2 is only seen after `at`
    assert [s.workstation_id for s in past.stations] == ["S1"]
    assert past.workers[0].active_s == 600.0
    assert past.workers[0].units == 0
    assert past.workers[0].last_seen_us == at("10:00")
    # The same question asked of an engine that never saw the later events.
    alone = snap(engine_with(events[0]), now="10:10")
    assert (past.workers, past.stations, past.factory) == (
        alone.workers,
        alone.stations,
        alone.factory,
    )


def test_state_after_a_long_silence_is_unobserved_but_keeps_the_station() -> None:
    engine = engine_with(ev(at("10:00"), "working"), max_gap_s=600)
    now = snap(engine, now="10:10")
    assert (now.workers[0].state, now.workers[0].station_id) == ("working", "S1")
    assert now.stations[0].workers_present == ("W1",)
    later = snap(engine, now="10:30")
    assert (later.workers[0].state, later.workers[0].station_id) == ("unobserved", "S1")
    assert later.workers[0].active_s == 600.0
    assert later.stations[0].workers_present == ()
    assert later.factory.unobserved == 1


def test_change_only_cameras_with_a_large_max_gap() -> None:
    engine = engine_with(ev(at("06:00"), "working"), ev(at("09:00"), "idle"), max_gap_s=86400)
    day = Window(at("06:00"), at("12:00"))
    worker = engine.snapshot(day, at("10:00")).workers[0]
    assert (worker.active_s, worker.idle_s, worker.state) == (3 * 3600, 3600, "idle")


def test_unknown_workers_and_stations_show_with_their_ids() -> None:
    engine = engine_with(
        ev(at("10:00"), "working", "W9", "S7"), workers={"W1": "Ana"}, stations={"S1": "One"}
    )
    snapshot = snap(engine, now="10:05")
    assert [(w.worker_id, w.name) for w in snapshot.workers] == [("W1", "Ana"), ("W9", "W9")]
    assert [(s.workstation_id, s.name) for s in snapshot.stations] == [
        ("S1", "One"),
        ("S7", "S7"),
    ]
    engine.set_roster({"W1": "Ana", "W9": "Nina"}, {"S7": "Seven"})
    snapshot = snap(engine, now="10:05")
    assert snapshot.worker("W9") is not None
    assert snapshot.worker("W9").name == "Nina"  # type: ignore[union-attr]
    assert [(s.workstation_id, s.name) for s in snapshot.stations] == [("S7", "Seven")]


def test_apply_counts_new_events_and_moves_the_cursor() -> None:
    first = ev(at("10:00"), "working", row_id=5)
    second = ev(at("10:01"), "working", row_id=9)
    engine = Engine(max_gap_s=900)
    assert engine.cursor == 0
    assert engine.apply([first, first]) == 1
    assert engine.apply([second, first]) == 1
    assert engine.apply([]) == 0
    assert engine.cursor == 9
    assert engine.events == 2
    # The same event stored twice under two row ids (two databases merged) counts once.
    copy = dataclasses.replace(first, id=11)
    assert engine.apply([copy]) == 0
    assert engine.cursor == 11


def test_mean_confidence_and_event_count_use_the_window() -> None:
    engine = engine_with(
        ev(at("09:50"), "working", confidence=0.1),
        ev(at("10:00"), "working", confidence=0.6),
        ev(at("10:30"), "product_count", confidence=0.8),
    )
    worker = snap(engine).workers[0]
    assert worker.events == 2
    assert worker.mean_confidence == pytest.approx(0.7)


def test_activity_buckets_cover_the_last_hour_before_at() -> None:
    engine = engine_with(
        ev(at("10:00"), "working"),
        ev(at("10:10"), "working"),
        ev(at("10:20"), "working"),
        ev(at("10:27:30"), "idle"),
        ev(at("10:40"), "working"),
        ev(at("10:50"), "absent"),
    )
    activity = snap(engine, now="11:00").workers[0].activity
    assert len(activity) == 12
    assert activity[:5] == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert activity[5] == 0.5  # 10:25-10:30, working until 10:27:30
    assert activity[6:8] == (0.0, 0.0)
    assert activity[8:10] == (1.0, 1.0)  # 10:40-10:50
    assert activity[10:] == (0.0, 0.0)


def test_long_windows_use_cached_blocks_and_stay_exact_as_events_arrive() -> None:
    engine = Engine(max_gap_s=900)
    events = [ev(at("06:00") + k * 2 * MIN, "working", "W1") for k in range(120)]
    events += [ev(at("07:00") + k * 2 * MIN + 30 * S, "working", "W2") for k in range(60)]
    engine.apply(events)
    shift = Window(at("06:00"), at("14:00"))
    # W1 06:00-10:00 (last event 09:58 + 2 min), W2 07:00:30-09:00:30 (inside W1's run).
    first = engine.snapshot(shift, at("12:00")).stations[0]
    assert first.occupancy_s == 4 * 3600 + 13 * 60  # W1 runs on to 09:58 + 15 min
    # A new stretch after the runs, then late events before and inside it, change cached blocks.
    stretch = ev(at("10:30"), "working", "W2")
    engine.apply([stretch])
    second = engine.snapshot(shift, at("12:00")).stations[0]
    assert second.occupancy_s == first.occupancy_s + 15 * 60  # 10:30-10:45
    late = [ev(at("10:20"), "working", "W2"), ev(at("05:50"), "working", "W2")]
    engine.apply(late)
    third = engine.snapshot(shift, at("12:00")).stations[0]
    assert third.occupancy_s == first.occupancy_s + 25 * 60  # 10:20-10:45
    rebuilt = Engine(max_gap_s=900)
    rebuilt.apply([*late, stretch, *events])
    assert rebuilt.snapshot(shift, at("12:00")) == engine.snapshot(shift, at("12:00"))


def test_station_timeline_of_an_unknown_station_is_unoccupied() -> None:
    engine = engine_with(ev(at("10:00"), "working"))
    assert engine.station_timeline("S9", HOUR, at("10:30")) == (
        Segment(at("10:00"), at("10:30"), "unobserved", "S9"),
    )
    assert engine.timeline("W9", HOUR, at("10:30")) == (
        Segment(at("10:00"), at("10:30"), "unobserved", None),
    )


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="max_gap_s"):
        Engine(max_gap_s=0)
    bad = EventRecord(1, at("10:00"), "W1", "S1", "dancing", 0.9, 0, None, None, 0, "x")
    with pytest.raises(ValueError, match="dancing"):
        Engine().apply([bad])


def test_hash_keys_order_like_the_hashes_and_agree_one_by_one() -> None:
    hashes = [ev(at("10:00") + k, "working").event_hash for k in range(200)]
    keys = hash_keys(hashes)
    assert keys == [hash_key(value) for value in hashes]
    assert sorted(hashes) == [value for _, value in sorted(zip(keys, hashes, strict=True))]
    # Anything that is not a SHA-256 digest still gets a stable key, batch or single.
    odd = [*hashes[:3], "not-a-digest", "x" * 64, ""]
    assert hash_keys(odd) == [hash_key(value) for value in odd]
    assert len(set(hash_keys(odd))) == len(odd)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # Idle heartbeats at one station: the stretch starts at the first.
        ([("10:00", "idle", "S1"), ("10:10", "idle", "S1"), ("10:20", "idle", "S1")], "10:00"),
        # A gap over max_gap (15 min) inside the idle run breaks it: unobserved in between.
        ([("10:00", "idle", "S1"), ("10:20", "idle", "S1"), ("10:25", "idle", "S1")], "10:20"),
        # Idle at one station, then at another, back to back: one stretch.
        ([("10:00", "idle", "S1"), ("10:05", "idle", "S2"), ("10:15", "idle", "S2")], "10:00"),
        # ... unless the gap between them was over max_gap.
        ([("10:00", "idle", "S1"), ("10:20", "idle", "S2"), ("10:25", "idle", "S2")], "10:20"),
        # Working before: the idle stretch starts at the first idle event.
        ([("09:50", "working", "S1"), ("10:05", "idle", "S1"), ("10:20", "idle", "S1")], "10:05"),
        # A product count in the middle does not break it.
        (
            [("10:00", "idle", "S1"), ("10:10", "product_count", "S1"), ("10:20", "idle", "S1")],
            "10:00",
        ),
        # The gap over max_gap just before the last event: the stretch starts there.
        ([("10:00", "idle", "S1"), ("10:20", "idle", "S1")], "10:20"),
        # ... and found in an earlier run at another station.
        ([("10:00", "idle", "S1"), ("10:20", "idle", "S1"), ("10:25", "idle", "S2")], "10:20"),
        # Not idle at the end: working, or the camera dark for over max_gap.
        ([("10:00", "idle", "S1"), ("10:20", "working", "S1")], None),
        ([("10:00", "idle", "S1"), ("10:05", "idle", "S1")], None),
    ],
)
def test_idle_since(events: list[tuple[str, str, str]], expected: str | None) -> None:
    engine = Engine(max_gap_s=900)
    engine.apply([ev(at(clock), kind, "W1", station) for clock, kind, station in events])
    window = Window(at("06:00"), at("14:00"), "A")
    since = engine.idle_since("W1", window, at("10:30"))
    assert since == (None if expected is None else at(expected))


def test_idle_since_up_to_the_end_of_the_last_interval_and_not_a_microsecond_after() -> None:
    engine = Engine(max_gap_s=900)
    engine.apply([ev(at("10:00"), "idle"), ev(at("10:10"), "idle")])
    window = Window(at("06:00"), at("14:00"), "A")
    assert engine.idle_since("W1", window, at("10:25")) == at("10:00")  # 10:10 + 15 min
    assert engine.idle_since("W1", window, at("10:25") + 1) is None
    # The window's end counts as `at` does.
    assert engine.idle_since("W1", Window(at("06:00"), at("10:25") + 1), at("11:00")) is None


def test_station_time_cuts_at_the_window_end_even_with_events_just_after_it() -> None:
    """Two sightings within a second after the window's end add nothing to it."""
    end = at("10:20")
    engine = engine_with(
        ev(at("10:00"), "working"),
        ev(at("10:10"), "working"),
        ev(end, "working"),
        ev(end + 300_000, "working"),
        ev(end + 600_000, "idle"),
    )
    window = Window(at("10:00"), end)
    assert engine.station_time("S1", window, at("11:00")) == {"W1": (1200.0, 0.0, 0.0, 0)}
    late = Window(at("10:00"), end + 500_000)
    assert engine.station_time("S1", late, at("11:00")) == {"W1": (1200.5, 0.0, 0.0, 0)}


def test_snapshot_finds_stations_by_id_and_names_unknown_ones_by_id() -> None:
    snapshot = snap(engine_with(ev(at("10:00"), "working"), stations={"S1": "Assembly"}))
    station = snapshot.station("S1")
    assert station is not None
    assert station.name == "Assembly"
    assert snapshot.station("S9") is None
    assert snapshot.station_name("S1") == "Assembly"
    assert snapshot.station_name("S9") == "S9"


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="^window ends before it starts$"):
        Window(at("11:00"), at("10:00"))


def test_nbytes_counts_the_columns_exactly() -> None:
    """Two working events of one worker (one run) and one product count at another station."""
    engine = engine_with(ev(at("10:00"), "working"), ev(at("10:05"), "working"))
    # 7 columns of 2 events (8+8+4+4+8+8+8 bytes), 2 prefix sums of 3, 1 run (8+4+8+8+8).
    assert engine.nbytes() == 2 * 48 + 2 * 3 * 8 + 36 + 8  # + the station's empty prefix sum
    engine.apply([ev(at("10:06"), "product_count", "W2", "S2")])
    assert engine.nbytes() == 2 * 48 + 2 * 3 * 8 + 36 + 8 + (48 + 2 * 2 * 8 + 36) + 8 + 16


def test_hash_key_of_any_other_string_is_the_first_64_bits_of_its_sha256() -> None:
    assert hash_key("x") == int.from_bytes(hashlib.sha256(b"x").digest()[:8], "big")
    assert hash_key("g" * 64) == int.from_bytes(hashlib.sha256(b"g" * 64).digest()[:8], "big")
    digest = hashlib.sha256(b"y").hexdigest()
    assert hash_key(digest) == int(digest[:16], 16)
    assert hash_keys(["x", digest]) == [hash_key("x"), hash_key(digest)]


@pytest.mark.parametrize(
    ("spans", "length", "merged"),
    [
        ([], 0, []),
        ([(5, 9)], 4, [(5, 9)]),
        ([(0, 4), (4, 6)], 6, [(0, 6)]),  # touching stretches join
        ([(0, 10), (2, 3)], 10, [(0, 10)]),  # nested
        ([(0, 4), (2, 6), (8, 9)], 7, [(0, 6), (8, 9)]),
        ([(8, 9), (0, 4), (4, 4)], 5, [(0, 4), (8, 9)]),
    ],
)
def test_union_of_spans(
    spans: list[tuple[int, int]], length: int, merged: list[tuple[int, int]]
) -> None:
    assert union_length(list(spans)) == length
    assert union_spans(list(spans)) == merged


def test_station_units_between() -> None:
    units = StationUnits()
    units.add([(10, 2), (20, 3)])
    units.add([(15, 5)])  # late
    assert units.between(10, 21) == 10
    assert units.between(11, 20) == 5
    assert units.between(15, 15) == 0
    assert units.between(20, 10) == 0
    assert units.nbytes() == 3 * 8 + 4 * 8


def test_time_stops_at_the_window_end_a_microsecond_before_the_next_sighting() -> None:
    """The interval 10:00 - 10:10:00.000001 is cut at a window ending at 10:10."""
    engine = engine_with(ev(at("10:00"), "working"), ev(at("10:10") + 1, "idle"))
    window = Window(at("10:00"), at("10:10"))
    assert engine.timeline("W1", window, at("11:00")) == (
        Segment(at("10:00"), at("10:10"), "working", "S1"),
    )
    worker = engine.snapshot(window, at("11:00")).workers[0]
    assert (worker.active_s, worker.idle_s) == (600.0, 0.0)
    assert engine.snapshot(window, at("10:10") + 1).workers[0].active_s == 600.0


def test_station_time_adds_up_every_run_at_the_station() -> None:
    """working, idle, working at S1 (three runs), cut at both ends of the window."""
    engine = engine_with(
        ev(at("10:00"), "working"),
        ev(at("10:05"), "idle"),
        ev(at("10:10"), "working"),
        ev(at("10:20"), "working", workstation_id="S2"),
    )
    assert engine.station_time("S1", HOUR, at("10:30")) == {"W1": (900.0, 300.0, 0.0, 0)}
    window = Window(at("10:07"), at("10:15"))
    assert engine.station_time("S1", window, at("10:30")) == {"W1": (300.0, 180.0, 0.0, 0)}
    heartbeats = engine_with(
        ev(at("10:00"), "working"), ev(at("10:10"), "working"), ev(at("10:20"), "working")
    )
    window = Window(at("10:15"), at("10:30"))
    assert heartbeats.station_time("S1", window, at("10:30")) == {"W1": (900.0, 0.0, 0.0, 0)}


def test_an_engine_with_no_roster_and_no_events_reports_zeros() -> None:
    window = Window(at("10:00"), at("11:00"), "10-11")
    snapshot = Engine().snapshot(window, at("10:30"))
    assert (snapshot.window, snapshot.at_us) == (window, at("10:30"))
    assert (snapshot.workers, snapshot.stations) == ((), ())
    factory = snapshot.factory
    assert (factory.active_s, factory.idle_s, factory.absent_s, factory.units) == (0, 0, 0, 0)
    assert factory.throughput_uph == 0.0


def test_equal_active_and_idle_time_is_half_utilization() -> None:
    engine = engine_with(ev(at("10:00"), "working"), ev(at("10:05"), "idle"))
    worker = snap(engine, now="10:10").workers[0]
    assert (worker.active_s, worker.idle_s, worker.utilization) == (300.0, 300.0, 0.5)


def test_occupancy_only_in_the_partial_block_at_the_window_end() -> None:
    """Blocks are five minutes long: 10:10-10:12 is the partial block after two full ones."""
    engine = engine_with(ev(at("10:11"), "working"))
    window = Window(at("10:00"), at("10:12"))
    assert engine.snapshot(window, at("10:12")).stations[0].occupancy_s == 60.0
