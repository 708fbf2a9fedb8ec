"""Ids in counting order (W2 before W10) in the engine's Snapshot and drift figures, and the
natural key's tie-break for ids that count the same but differ as text (W01 and W1)."""

from __future__ import annotations

import hashlib
import random
import re

from hypothesis import given
from hypothesis import strategies as st

from factory_tui.engine import Engine, Window
from factory_tui.engine.drift import DriftTracker
from factory_tui.engine.natural import natural_key
from factory_tui.models import EventRecord
from factory_tui.view_models import natural_key as console_natural_key
from tests.engine.eventkit import at, ev

HOUR = Window(at("10:00"), at("11:00"), "10-11")


def test_numbers_count_by_value_and_text_breaks_ties() -> None:
    ids = ["W10", "w2", "W1", "W01", "w1", "S10", "S2", "W100", "W001"]
    # W001, W01, W1 and w1 all count as w1: ordered by their text (digits, then upper case).
    assert sorted(ids, key=natural_key) == [
        "S2",
        "S10",
        "W001",
        "W01",
        "W1",
        "w1",
        "w2",
        "W10",
        "W100",
    ]


def test_the_console_uses_the_same_key() -> None:
    assert console_natural_key is natural_key


ID_TEXT = st.text(alphabet="Ww0129-_ ßS", max_size=6)


def reference_key(text: str) -> tuple[tuple[str | int, ...], str]:
    """The plain natural key (text and numbers alternating), then the text for ties."""
    parts = re.split(r"(\d+)", text.casefold())
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts)), text


@given(st.lists(ID_TEXT, max_size=12))
def test_order_is_the_plain_natural_key_then_the_text(ids: list[str]) -> None:
    assert sorted(ids, key=natural_key) == sorted(ids, key=reference_key)


@given(st.lists(ID_TEXT, max_size=12), st.randoms(use_true_random=False))
def test_one_order_whatever_order_the_ids_came_in(ids: list[str], rnd: random.Random) -> None:
    shuffled = ids.copy()
    rnd.shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == sorted(ids, key=natural_key)


@given(ID_TEXT, ID_TEXT)
def test_keys_are_equal_only_for_equal_text(first: str, second: str) -> None:
    assert (natural_key(first) == natural_key(second)) == (first == second)


def snapshot_ids(engine: Engine, *, once: bool) -> tuple[list[str], list[str], list[str]]:
    snapshot = engine.snapshot(HOUR, at("10:10"), once=once)
    workers = [worker.worker_id for worker in snapshot.workers]
    stations = [station.workstation_id for station in snapshot.stations]
    present = [list(s.workers_present) for s in snapshot.stations if s.workstation_id == "S1"][0]
    return workers, stations, present


def test_snapshot_lists_workers_and_stations_in_counting_order() -> None:
    engine = Engine(
        max_gap_s=900,
        workers={"W10": "Bea", "W1": "Ana"},
        workstations={"S10": "Press", "S1": "Assembly"},
    )
    engine.apply(
        [
            ev(at("10:00"), "working", "W10", "S1"),
            ev(at("10:01"), "working", "W2", "S1"),
            ev(at("10:02"), "working", "W1", "S1"),
            ev(at("10:03"), "idle", "W11", "S2"),
            ev(at("10:04"), "working", "W01", "S10"),
        ]
    )
    for once in (False, True):
        workers, stations, present = snapshot_ids(engine, once=once)
        assert workers == ["W01", "W1", "W2", "W10", "W11"]  # text order: W01, W1, W10, W11, W2
        assert stations == ["S1", "S2", "S10"]  # text order: S1, S10, S2
        assert present == ["W1", "W2", "W10"]


def model_row(number: int, model: str) -> EventRecord:
    digest = hashlib.sha256(f"{number}-{model}".encode()).hexdigest()
    return EventRecord(
        number, at("10:00") + number, "W1", "S1", "working", 0.9, 0, model, None, 0, digest
    )


def test_drift_figures_list_models_in_counting_order() -> None:
    tracker = DriftTracker()
    tracker.apply([model_row(n, model) for n, model in enumerate(["v10", "v2", "v1.10", "v1.9"])])
    models = [model.model_version for model in tracker.status(at("10:05"))]
    assert models == ["v1.9", "v1.10", "v2", "v10"]
