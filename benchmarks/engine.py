"""Engine benchmark: prints figures for the metrics engine and `report` over a 1M-event store.

Builds its own database in a temporary folder (100 workers, 20 stations, deterministic random,
rows written with Store.insert_rows), then measures:

- the full build of an Engine from 1,000,000 stored events (and reading them);
- folding in a 1,000-event tick on top of 100k and of 1M events of history;
- a snapshot of 100 workers (cold, then as the console asks for it every tick);
- `factory-tui report` end to end, in a fresh process, for the current shift and for all
  of history;
- memory: RSS of a process holding the engine, per stored event.

Run: `.venv/bin/python benchmarks/engine.py [--events N]` (also part of `make bench`).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import psutil

from factory_tui.engine import Engine, Window
from factory_tui.models import EngineRow, EventRecord, NewEventRow, iso_utc
from factory_tui.storage import SqliteStore

S: Final = 1_000_000
MIN: Final = 60 * S
HOUR: Final = 60 * MIN
START: Final = 1_714_953_600 * S  # 2024-05-06 00:00 UTC, a Monday


# --- the data ---------------------------------------------------------------------------------


def canonical_hash(row: NewEventRow) -> str:
    """The dedup hash the ingest gives this event (see WireEvent.canonical)."""
    ts_us, worker, station, kind, confidence, count, model = row[:7]
    text = json.dumps(
        [ts_us, worker, station, kind, repr(float(confidence)), count, model],
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def worker_events(rng: random.Random, worker: str, stations: int, quota: int) -> list[NewEventRow]:
    """One worker's day-after-day stream: dwell times of minutes, heartbeats every 30-90 s,
    products while working, moves between stations, dark spells, and late deliveries."""
    rows: list[NewEventRow] = []
    now = START + rng.randrange(10 * MIN)
    state, station = "working", rng.randrange(stations)
    camera = f"cam-{worker}"
    while len(rows) < quota:
        dwell = {"working": (10, 60), "idle": (1, 10), "absent": (5, 30)}[state]
        until = now + rng.randint(*dwell) * MIN
        next_product = now + rng.randrange(60, 240) * S
        while now < until and len(rows) < quota:
            kinds = [(state, 0)]
            if state == "working" and now >= next_product:
                kinds.append(("product_count", rng.choice((1, 1, 1, 2))))
                next_product = now + rng.randrange(60, 240) * S
            for kind, count in kinds:
                ts_us = now + rng.randrange(S)
                late = rng.randrange(10 * MIN) if rng.random() < 0.01 else rng.randrange(2 * S)
                row = NewEventRow(
                    ts_us,
                    worker,
                    f"S{station + 1:02d}",
                    kind,
                    round(rng.uniform(0.7, 0.99), 2),
                    count,
                    "det-v3",
                    camera,
                    ts_us + late,
                    "",
                )
                rows.append(row._replace(event_hash=canonical_hash(row)))
            gap = rng.randrange(30, 90) * S
            if rng.random() < 0.003:
                gap += rng.randrange(20, 60) * MIN  # the camera went dark for a while
            now += gap
        if state == "working":
            state = rng.choices(("idle", "absent", "working"), (6, 2, 2))[0]
            if state == "working":
                station = rng.randrange(stations)
        else:
            state = "working" if state == "absent" or rng.random() < 0.85 else "absent"
    return rows[:quota]


def generate(path: Path, events: int, workers: int, stations: int, seed: int) -> None:
    """Write `events` rows in arrival order (so row ids follow delivery, late ones included)."""
    rng = random.Random(seed)
    rows: list[NewEventRow] = []
    for number in range(workers):
        rows += worker_events(rng, f"W{number + 1:03d}", stations, events * 11 // 10 // workers)
    # Keep the earliest events overall, so every worker is still at work at the end.
    rows.sort()
    del rows[events:]
    rows.sort(key=lambda row: row[8])
    with SqliteStore.open(path) as store:
        for first in range(0, len(rows), 100_000):
            store.insert_rows(rows[first : first + 100_000])


# --- measuring --------------------------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def best_of(runs: int, action: Callable[[], object]) -> tuple[float, float]:
    """The best wall and the best CPU time of `runs` runs (each taken apart, garbage freed)."""
    walls, cpus = [], []
    for _ in range(runs):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return min(walls), min(cpus)


def show(name: str, value: str, target: str = "") -> None:
    suffix = f"   (target {target})" if target else ""
    print(f"  {name:<58} {value:>14}{suffix}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def build(rows: list[EngineRow]) -> Engine:
    engine = Engine(max_gap_s=900)
    engine.apply_tuples(rows)
    return engine


def shift_at(at_us: int) -> Window:
    """The 8-hour shift (06-14, 14-22, 22-06 UTC) running at `at_us`."""
    hours = (at_us // HOUR) % 24
    start_hour = 6 if 6 <= hours < 14 else 14 if 14 <= hours < 22 else 22
    day_start = at_us - at_us % (24 * HOUR)
    start = day_start + start_hour * HOUR
    if start > at_us:
        start -= 24 * HOUR
    return Window(start, start + 8 * HOUR, "shift")


def ticks(rows: list[EngineRow], history: int, count: int = 10, size: int = 1000) -> None:
    """Fold `count` ticks of `size` rows on top of `history` rows; time each, and a snapshot."""
    engine = build(rows[: history - count * size])
    folds, snaps = [], []
    for first in range(history - count * size, history, size):
        tick = rows[first : first + size]
        start = time.perf_counter()
        engine.apply_tuples(tick)
        folds.append(time.perf_counter() - start)
        at_us = max(row[1] for row in tick)
        start = time.perf_counter()
        engine.snapshot(shift_at(at_us), at_us)
        snaps.append(time.perf_counter() - start)
    label = f"{history // 1000}k"
    show(
        f"fold a {size}-event tick into {label} events (median of {count})",
        ms(statistics.median(folds)),
        "< 10 ms",
    )
    show(f"  ... worst of {count}", ms(max(folds)))
    show(
        f"snapshot after each tick, {label} events (median)",
        ms(statistics.median(snaps)),
        "< 20 ms",
    )


def rss_child(db: Path) -> None:
    """Run in a fresh process: RSS growth from building the engine, per stored event."""
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    engine = Engine(max_gap_s=900)
    with SqliteStore.open(db, read_only=True) as store:
        cursor = 0
        while batch := store.read_since(cursor):
            engine.apply(batch)
            cursor = batch[-1].id
        del batch
    gc.collect()
    after = process.memory_info().rss
    print(json.dumps({"events": engine.events, "rss": after - before, "columns": engine.nbytes()}))


def report_run(db: Path, cwd: Path, *args: str) -> float:
    command = [sys.executable, "-m", "factory_tui", "report", "--db", str(db), *args]
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.rss_child:
        rss_child(options.rss_child)
        return
    events = options.events
    with tempfile.TemporaryDirectory(prefix="factory-bench-") as folder:
        db = Path(folder) / "bench.db"
        print(f"engine benchmark: {events:,} events, 100 workers, 20 stations, max_gap 900 s")
        show(
            "generate and store the events",
            f"{timed(lambda: generate(db, events, 100, 20, 9)):.1f} s",
        )
        show("database size", f"{db.stat().st_size / 1e6:.0f} MB")

        with SqliteStore.open(db, read_only=True) as store:
            records: list[EventRecord] = []
            read_s = timed(lambda: records.extend(store.iter_since(0)))
            show("read all rows as EventRecords (store.iter_since)", f"{read_s:.2f} s")
            raw: list[EngineRow] = []
            raw_s = timed(lambda: raw.extend(store.engine_rows(-(2**63), 2**63 - 1)))
            show("read all rows as plain tuples (store.engine_rows)", f"{raw_s:.2f} s")
        first_ts = min(row[1] for row in raw)
        last_ts = max(row[1] for row in raw)
        show("history spanned", f"{(last_ts - first_ts) / (24 * HOUR):.1f} days")

        gc.collect()
        built = Engine(max_gap_s=900)
        build_s = timed(lambda: built.apply(records))
        show(
            f"full build: Engine.apply({len(records):,} EventRecords)", f"{build_s:.2f} s", "< 3 s"
        )
        tuples_s, tuples_cpu = best_of(3, lambda: build(raw))
        show("full build: Engine.apply_tuples(plain rows), best of 3", f"{tuples_s:.2f} s", "< 3 s")
        show("  ... its CPU time (what a busy box changes least)", f"{tuples_cpu:.2f} s")
        show("cold start: read EventRecords + apply", f"{read_s + build_s:.2f} s")
        show("cold start: read plain rows + apply_tuples", f"{raw_s + tuples_s:.2f} s")
        records.clear()
        gc.collect()

        # Ticks take the next rows by id, as the console's cursor reads them.
        ticks(raw, min(100_000, len(raw)))
        ticks(raw, len(raw))

        at_us = last_ts
        shift = shift_at(at_us)
        cold = timed(lambda: built.snapshot(shift, at_us))
        warm = []
        for second in range(1, 21):
            start = time.perf_counter()
            built.snapshot(shift, at_us + second * S)
            warm.append(time.perf_counter() - start)
        snapshot = built.snapshot(shift, at_us)
        show(f"snapshot, {len(snapshot.workers)} workers, 8 h shift, first", ms(cold))
        show(
            "snapshot, same window, `at` one second later (median of 20)",
            ms(statistics.median(warm)),
            "< 20 ms",
        )
        day = Window(at_us - 24 * HOUR, at_us)
        show("snapshot, last 24 h, first", ms(timed(lambda: built.snapshot(day, at_us))))
        everything = Window(first_ts, last_ts + 1)
        show("snapshot, all history, first", ms(timed(lambda: built.snapshot(everything, at_us))))
        show("snapshot, all history, again", ms(timed(lambda: built.snapshot(everything, at_us))))
        worker = snapshot.workers[0].worker_id
        show(
            "timeline of one worker over the shift",
            ms(timed(lambda: built.timeline(worker, shift, at_us))),
        )
        show(
            "timeline of one station over the shift",
            ms(timed(lambda: built.station_timeline("S01", shift, at_us))),
        )

        cwd = Path(folder)
        shift_runs = [
            report_run(db, cwd, "--at", iso_utc(at_us), "--format", "json") for _ in range(3)
        ]
        show(
            "report --format json, current shift (new process, median of 3)",
            f"{statistics.median(shift_runs):.2f} s",
            "< 5 s",
        )
        whole = ("--from", iso_utc(first_ts), "--to", iso_utc(last_ts + 1), "--at", iso_utc(at_us))
        whole_runs = [report_run(db, cwd, *whole, "--format", "json") for _ in range(3)]
        show(
            f"report --format json, all {events:,} events (median of 3)",
            f"{statistics.median(whole_runs):.2f} s",
            "< 5 s",
        )
        table_s = report_run(db, cwd, *whole)
        show("report --format table, all events", f"{table_s:.2f} s")

        child = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(db)],
            check=True,
            capture_output=True,
            text=True,
        )
        memory = json.loads(child.stdout)
        show("RSS growth of a process holding the engine", f"{memory['rss'] / 1e6:.0f} MB")
        show("  ... per stored event", f"{memory['rss'] / memory['events']:.0f} B", "< 200 B")
        show(
            "  ... of which event columns (arrays)", f"{memory['columns'] / memory['events']:.0f} B"
        )
        show(
            "this benchmark process, RSS at the end",
            f"{psutil.Process().memory_info().rss / 1e6:.0f} MB",
        )
    print(f"cpu: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
