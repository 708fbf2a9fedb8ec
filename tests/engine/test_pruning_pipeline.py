"""The console's tick forgets old shifts: `TickPipeline` on a real SQLite file, with the demo's
shifts (A 06:00-14:00, B 14:00-22:00, C 22:00-06:00 UTC) and a clock moved by hand.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.console.pipeline import TickPipeline
from factory_tui.engine import Engine
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore
from factory_tui.warm_start import shift_window
from tests.tui.floor import at, fill, floor_settings, line, spell

MAX_GAP_US = 15 * 60 * 1_000_000  # the demo's max_gap_s


def day_of_work(start: datetime, end: datetime) -> list[bytes]:
    """W1 works at S1 and W2 at S2 from `start` to `end`, heartbeats every 5 minutes and a unit
    every 10."""
    lines = spell("W1", "S1", "working", start, end) + spell("W2", "S2", "working", start, end)
    moment = start
    while moment < end:
        lines.append(line(moment + timedelta(minutes=2), "W1", "S1", "product_count", count=1))
        moment += timedelta(minutes=10)
    return lines


def store(path: Path, lines: list[bytes]) -> None:
    with SqliteStore.open(path) as writer:
        writer.insert_batch([parse_event(raw) for raw in lines], received_us=to_utc_us(at(6)))


def test_after_a_shift_change_the_engine_holds_no_rows_of_two_shifts_ago(tmp_path: Path) -> None:
    """Ticking through shifts A, B and into C: in C the engine holds nothing of A but its last
    max_gap (whose sightings count into B's first minutes), and still answers B (the previous
    shift, which the views can show) and C as an engine fed the whole history."""
    path = tmp_path / "factory.db"
    # W3 shows up once at 06:00 and never again.
    fill(str(path), [*day_of_work(at(6), at(10)), line(at(6), "W3", "S3", "idle")])
    settings = floor_settings(str(path))
    now = [to_utc_us(at(10))]
    pipeline = TickPipeline(
        settings,
        SqliteStore.open(path, read_only=True),
        AlertKeeper(settings, None),
        clock=lambda: now[0],
    )
    try:
        for end_hour in (15, 23):  # into shift B, then into shift C
            store(path, day_of_work(at(end_hour - 5), at(end_hour)))
            now[0] = to_utc_us(at(end_hour))
            result = pipeline.tick()
            assert result is not None
        assert result.view.window_title == "Shift C"
        engine = pipeline.engine
        shift_b = shift_window(settings, to_utc_us(at(15))).shift
        floor = shift_b.from_us - MAX_GAP_US
        assert engine.horizon == floor
        held_from = engine.oldest_held_us()
        assert held_from is not None
        assert held_from >= floor

        with SqliteStore.open(path, read_only=True) as reader:
            rows = list(reader.iter_since(0))
            assert engine.held() == sum(1 for row in rows if row.ts_us >= floor)
            assert any(row.ts_us < floor for row in rows)  # shift A is in the store, though
            full = Engine(settings.metrics.max_gap_s, reader.workers(), reader.workstations())
            full.apply(rows)
        for window in (result.view.snapshot.window, shift_b):
            mine = engine.snapshot(window, now[0])
            assert replace(mine, total_events=0) == replace(
                full.snapshot(window, now[0]), total_events=0
            )
        # W3 was seen only at 06:00 (shift A): still listed, with its last sighting.
        worker = result.view.snapshot.worker("W3")
        assert worker is not None
        assert (worker.state, worker.station_id, worker.last_seen_us) == (
            "unobserved",
            "S3",
            to_utc_us(at(6)),
        )
    finally:
        pipeline.close()
