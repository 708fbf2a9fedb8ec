"""The bulk reads a report is made of, on both backends: the engine's rows streamed in fetched
batches, the time span per site, and the stations seen only before a history floor.

(benchmarks/report.py measures how fast they are; these tests pin what they return.)
"""

from __future__ import annotations

import pytest

from factory_tui.engine import Engine, Window
from factory_tui.models import NewEventRow
from factory_tui.storage import Store, postgres, sqlite

S = 1_000_000
BASE = 1_772_445_600 * S  # 2026-03-02 10:00 UTC
KINDS = ("working", "idle", "product_count", "absent")


def rows(count: int, worker: str = "W1", start_s: int = 0) -> list[NewEventRow]:
    """`count` events of one worker a second apart, at stations S1-S3, in a varied order."""
    made = [
        NewEventRow(
            BASE + (start_s + n) * S,
            worker,
            f"S{n % 3 + 1}",
            KINDS[n % 4],
            0.5 + (n % 5) / 10,
            n % 4 // 2,
            None,
            None,
            BASE + (start_s + n) * S,
            f"{worker}-{start_s + n}",
        )
        for n in range(count)
    ]
    return made[::2] + made[1::2]  # every other one late


@pytest.fixture
def small_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetch a few rows at a time, so a handful of rows spans many batches."""
    monkeypatch.setattr(sqlite, "FETCH_ROWS", 3)
    monkeypatch.setattr(postgres, "STREAM_ROWS", 3)


@pytest.mark.usefixtures("small_fetches")
def test_engine_rows_streams_every_row_once_across_batches(any_store: Store) -> None:
    stored = rows(20) + rows(7, "W2", start_s=5)
    any_store.insert_rows(stored)
    read = list(any_store.engine_rows(BASE + 2 * S, BASE + 18 * S))
    expected = sorted(
        (row.worker_id, row.ts_us, row.event_hash, row.event_type, row.workstation_id)
        for row in stored
        if BASE + 2 * S <= row.ts_us <= BASE + 18 * S
    )
    assert sorted(tuple(row[:5]) for row in read) == expected
    assert len({row[7] for row in read}) == len(read)  # ids: no row twice
    by_hash = {row.event_hash: row for row in stored}
    for row in read:
        assert (row[5], row[6]) == (by_hash[row[2]].unit_count, by_hash[row[2]].confidence)


@pytest.mark.usefixtures("small_fetches")
def test_an_engine_fed_by_engine_rows_equals_one_fed_every_record(any_store: Store) -> None:
    any_store.insert_rows(rows(40) + rows(25, "W2", start_s=3))
    streamed, fed = Engine(max_gap_s=10), Engine(max_gap_s=10)
    streamed.apply_tuples(any_store.engine_rows(-(2**62), 2**62))
    fed.apply(any_store.iter_since(0))
    window = Window(BASE, BASE + 60 * S)
    assert streamed.events == fed.events == 65
    assert streamed.snapshot(window, BASE + 60 * S) == fed.snapshot(window, BASE + 60 * S)


def test_time_span_is_each_sites_own(any_store: Store) -> None:
    other = any_store.scoped("north")
    other.insert_rows(rows(5, start_s=-100) + rows(5, start_s=500))
    assert any_store.time_span() is None
    any_store.insert_rows(rows(4, start_s=10))
    assert any_store.time_span() == (BASE + 10 * S, BASE + 13 * S)
    assert other.time_span() == (BASE - 100 * S, BASE + 504 * S)


def test_stations_before_a_floor_older_than_every_event(any_store: Store) -> None:
    any_store.scoped("north").insert_rows(rows(3, start_s=-50))  # another site's older events
    any_store.insert_rows(rows(6, start_s=10))
    assert any_store.stations_before(BASE + 10 * S) == []
    assert any_store.stations_before(BASE) == []
    assert sorted(any_store.stations_before(BASE + 12 * S)) == ["S1", "S2"]
    assert sorted(any_store.stations_before(BASE + 60 * S)) == ["S1", "S2", "S3"]
