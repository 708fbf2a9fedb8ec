"""Week benchmark: a simulated week of a 200-camera floor through the console's tick path,
printing the process's RSS at the end of each simulated day.

A fresh process per run: it stores the simulator's events (`CameraFleet`, as `demo` sends
them) in a SQLite file in a temporary folder, `--step` simulated seconds at a time, and after
each step runs `TickPipeline.tick` (read the new rows, fold them in, prune, snapshot, alerts,
view data) with the clock at the step's end: `demo --speed 600` with its 1 s tick, without a
terminal or real time. The yardstick is the same run with the engine's pruning and the drift
tracker's `settle` switched off, for `--baseline-days`: the console before it forgot old
shifts.

Run: `.venv/bin/python benchmarks/week.py [--days 7] [--workers 200]` (also in `make bench`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import psutil

from factory_tui.config import Settings, demo_data
from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.console.pipeline import TickPipeline
from factory_tui.ingest.simulator import CameraFleet, extend_roster
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore
from factory_tui.warm_start import load_engine, previous_window, shift_window

S: Final = 1_000_000
DAY_US: Final = 24 * 3600 * S
START: Final = datetime(2025, 3, 3, tzinfo=UTC)
"""Midnight of a Monday: every run simulates the same days."""


def floor_settings(db: Path, workers: int) -> Settings:
    """The demo's shifts and roster topped up to `workers`, stored in `db`."""
    data: dict[str, Any] = demo_data()
    base = Settings.model_validate(data)
    roster = extend_roster(base.roster_workers(), workers, "W")
    data["workers"] = [{"id": entry.id, "name": entry.name} for entry in roster]
    data["store"] = {"path": str(db)}
    return Settings.model_validate(data)


def same_as_reloaded(pipeline: TickPipeline, db: Path, at_us: int) -> bool:
    """The figures of the window on screen and of the previous one equal those of an engine
    loaded from the store for that window (`load_engine`, as `report` does)."""
    settings = pipeline.settings
    shown = shift_window(settings, at_us)
    with SqliteStore.open(db, read_only=True) as store:
        for window in (shown.so_far, previous_window(settings, shown)):
            loaded = load_engine(store, settings, window, at_us, until_us=at_us)
            mine = pipeline.engine.snapshot(window, at_us)
            theirs = loaded.snapshot(window, at_us)
            if (mine.workers, mine.stations, mine.factory) != (
                theirs.workers,
                theirs.stations,
                theirs.factory,
            ):
                return False
    return True


def run_child(days: int, workers: int, step_s: int, prune: bool) -> None:
    """Run in a fresh process: one JSON line per simulated day on stdout."""
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="factory-week-") as folder:
        db = Path(folder) / "week.db"
        settings = floor_settings(db, workers)
        fleet = CameraFleet(settings.roster_workers(), settings.roster_workstations(), seed=1)
        writer = SqliteStore.open(db)
        writer.upsert_roster(settings.roster_workers(), settings.roster_workstations())
        now = [to_utc_us(START)]
        pipeline = TickPipeline(
            settings,
            SqliteStore.open(db, read_only=True),
            AlertKeeper(settings, None),
            clock=lambda: now[0],
        )
        if not prune:  # the console before it forgot: the engine and drift ids kept whole
            pipeline.engine.prune = lambda before_us: 0  # type: ignore[method-assign]
            pipeline.alerts.tracker.settle = lambda store_id: None  # type: ignore[method-assign]
        stored = 0
        tick_s = 0.0
        ticks = 0
        start_wall = time.perf_counter()
        try:
            for day in range(1, days + 1):
                day_end = to_utc_us(START) + day * DAY_US
                while now[0] < day_end:
                    begin, end = now[0], min(now[0] + step_s * S, day_end)
                    events = [parse_event(line) for line in fleet.events_between(begin, end)]
                    stored += writer.insert_batch(events, received_us=end).count("accepted")
                    now[0] = end
                    started = time.perf_counter()
                    pipeline.tick()
                    tick_s += time.perf_counter() - started
                    ticks += 1
                exact = same_as_reloaded(pipeline, db, now[0])
                gc.collect()
                engine = pipeline.engine
                print(
                    json.dumps(
                        {
                            "day": day,
                            "rss": process.memory_info().rss,
                            "stored": stored,
                            "held": engine.held(),
                            "columns": engine.nbytes(),
                            "tick_ms": 1000 * tick_s / ticks,
                            "wall_s": time.perf_counter() - start_wall,
                            "exact": exact,
                        }
                    ),
                    flush=True,
                )
                tick_s, ticks = 0.0, 0
        finally:
            pipeline.close()
            writer.close()


def child_days(days: int, workers: int, step_s: int, prune: bool) -> list[dict[str, Any]]:
    command = [sys.executable, __file__, "--child", "--days", str(days)]
    command += ["--workers", str(workers), "--step", str(step_s)]
    if not prune:
        command.append("--no-prune")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def mb(value: float) -> str:
    return f"{value / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    parser.add_argument("--workers", type=int, default=200, help="cameras (default 200)")
    parser.add_argument(
        "--step", type=int, default=600, help="simulated seconds per tick (default 600)"
    )
    parser.add_argument(
        "--baseline-days", type=int, default=2, help="days of the run without pruning"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-prune", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        run_child(options.days, options.workers, options.step, not options.no_prune)
        return
    print(
        f"week benchmark: {options.workers} cameras, demo shifts, a tick every {options.step} "
        f"simulated s, {options.days} days"
    )
    pruned = child_days(options.days, options.workers, options.step, prune=True)
    kept = child_days(options.baseline_days, options.workers, options.step, prune=False)
    print(
        f"{'day':>4} {'events stored':>14} {'RSS':>8} {'held':>10} {'columns':>8} "
        f"{'tick':>8} {'exact':>6}   {'RSS, no pruning':>15} {'held':>10}"
    )
    for row in pruned:
        exact = "yes" if row["exact"] else "NO"
        line = (
            f"{row['day']:>4} {row['stored']:>14,} {mb(row['rss']):>8} {row['held']:>10,} "
            f"{mb(row['columns']):>8} {row['tick_ms']:>6.0f} ms {exact:>6}"
        )
        if row["day"] <= len(kept):
            other = kept[row["day"] - 1]
            line += f"   {mb(other['rss']):>15} {other['held']:>10,}"
        print(line)
    first, last = pruned[0], pruned[-1]
    days = last["day"] - first["day"]
    if days and len(kept) >= 2:
        growth = (last["rss"] - first["rss"]) / days
        kept_growth = kept[1]["rss"] - kept[0]["rss"]
        print(
            f"RSS growth per day after day 1: {growth / 1e6:+.1f} MB/day "
            f"(without pruning, day 1 -> 2: {kept_growth / 1e6:+.1f} MB/day; "
            f"ratio {growth / kept_growth:.2f})"
        )
        print(
            f"RSS on day {last['day']} / RSS on day 1: {last['rss'] / first['rss']:.2f} "
            f"(held events: {last['held']:,} of {last['stored']:,} stored)"
        )
    print(
        "exact: the shown and the previous window's figures equal those of an engine loaded "
        "from the store (load_engine), at each day's end"
    )
    print(f"cpu: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
