"""Report benchmark: `factory-tui report` over N stored events beside a bare read of its rows.

Builds 1,000,000 events (100 workers, 20 stations; the data of benchmarks/engine.py) into a
SQLite file in a temporary folder and, when a PostgreSQL server answers (`--pg`, default
$FACTORY_TUI_TEST_PG or postgresql://127.0.0.1:5432/test), into a scratch schema there. Then, on
each backend, in fresh processes, interleaved, best of `--repeat`:

- the floor: a bare driver read (sqlite3 / psycopg, nothing else imported) of every row's
  columns a metric needs (worker, time, hash, type, station, count, confidence);
- `factory-tui report --format json` over all of those events (the CLI, start-up included; it
  reads a long history in two processes, see `warm_start.fold_in_two`), and the same with its
  read in one process;

and prints the report's time as a ratio to the floor (target at most 2.5x) and its peak RSS
(target under 250 MB; the floor's beside it). Then the insert rate of `Store.insert_rows` into a
new SQLite file (the first `--insert-events`, 5,000 a batch) and the file's bytes per event.

`--baseline DIR` (a folder holding an older factory_tui/, e.g. from
`git archive 971f34f factory_tui | tar -x -C /tmp/old`) times that version's report and inserts
in the same run, over a copy of the events its own store writes.

    python benchmarks/report.py                  # 1M events, both backends (5-10 minutes)
    python benchmarks/report.py --events 200000 --no-pg
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final, NamedTuple

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.engine import worker_events  # noqa: E402
from benchmarks.pg_scratch import add_pg_option, scratch_schema  # noqa: E402
from factory_tui.models import NewEventRow, iso_utc  # noqa: E402
from factory_tui.storage import SqliteStore, Store, mask_url, open_store  # noqa: E402

WORKERS: Final = 100
STATIONS: Final = 20
SITE: Final = "main"
RATIO_TARGET: Final = 2.5
RSS_TARGET_MB: Final = 250
METRIC_COLUMNS: Final = (
    "worker_id, ts_us, event_hash, event_type, workstation_id, count, confidence"
)
"""What the engine's figures are made of (the id and the rest of the row are not)."""

# The floors: a process that imports only its driver and reads every row of the site.
SQLITE_FLOOR: Final = f"""
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
rows = 0
for _ in conn.execute("SELECT {METRIC_COLUMNS} FROM events"):
    rows += 1
print(rows)
"""
PG_FLOOR: Final = f"""
import psycopg, sys
with psycopg.connect(sys.argv[1]) as conn, conn.cursor() as cursor:
    cursor.execute("SELECT {METRIC_COLUMNS} FROM events WHERE site_id = %s", ["{SITE}"])
    rows = 0
    for _ in cursor:
        rows += 1
print(rows)
"""


def generate(events: int, seed: int = 9) -> list[NewEventRow]:
    """`events` rows of 100 workers at 20 stations, in arrival order (late ones included)."""
    rng = random.Random(seed)
    rows: list[NewEventRow] = []
    for number in range(WORKERS):
        rows += worker_events(rng, f"W{number + 1:03d}", STATIONS, events * 11 // 10 // WORKERS)
    rows.sort()  # keep the earliest events overall, so every worker is at work at the end
    del rows[events:]
    rows.sort(key=lambda row: row.received_us)
    return rows


def store_rows(store: Store, rows: list[NewEventRow]) -> None:
    for first in range(0, len(rows), 50_000):
        store.insert_fresh_rows(rows[first : first + 50_000])


# Runs a command and prints its peak RSS: a child's peak counts its parent's memory at the fork
# (Linux keeps the high-water mark across exec), so the command is forked from this small
# process rather than from the benchmark, which holds every row.
MEASURE: Final = """
import os, subprocess, sys, time
started = time.perf_counter()
with subprocess.Popen(sys.argv[1:]) as process:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
cpu = usage.ru_utime + usage.ru_stime
print(time.perf_counter() - started, cpu, usage.ru_maxrss, file=sys.stderr)
sys.exit(process.returncode)
"""


class Run(NamedTuple):
    """One fresh process, as measured."""

    wall_s: float
    cpu_s: float
    """User and system time: what a busy machine changes least (the client side only)."""
    peak_mb: float
    stdout: str


# Copies the events of a SQLite database (this checkout's) into a database of a baseline
# checkout, through that checkout's own store, so its report reads the schema it knows.
# (Also times the inserts alone: `insert_rows` in batches of `sys.argv[4]`, the first
# `sys.argv[3]` events, each batch a transaction as the listener's are.)
BASELINE_COPY: Final = """
import sqlite3, sys, time
from factory_tui.models import NewEventRow
from factory_tui.storage import open_store
source = sqlite3.connect(sys.argv[1])
rows = source.execute(
    "SELECT ts_us, worker_id, workstation_id, event_type, confidence, count, model_version, "
    "camera_id, received_us, CASE typeof(event_hash) WHEN 'blob' THEN lower(hex(event_hash)) "
    "ELSE event_hash END FROM events ORDER BY id LIMIT ?", [int(sys.argv[3])]
).fetchall()
rows = [NewEventRow(*row) for row in rows]
size = int(sys.argv[4])
with open_store(sys.argv[2]) as store:
    wall, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(rows), size):
        store.insert_rows(rows[first : first + size])
    print(time.perf_counter() - wall, time.process_time() - cpu)
"""
INSERT_BATCH: Final = 5_000


def baseline_copy(
    code: Path | None, source: Path, target: str, cwd: Path, events: int, batch: int = 50_000
) -> tuple[float, float]:
    """Store the first `events` of `source` at `target` with the checkout `code` (None: this
    one); returns the seconds the inserts took (wall, cpu)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-c", BASELINE_COPY, str(source), target, str(events), str(batch)]
    done = subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def inserts(code: Path | None, source: Path, folder: Path, events: int, repeat: int) -> None:
    """Insert rates into a new SQLite file, this checkout's and a baseline's (best of
    `repeat`, interleaved), with the bytes per event of the file."""
    checkouts: list[tuple[str, Path | None]] = [("this checkout", None)]
    if code is not None:
        checkouts.insert(0, (f"{code.name} (baseline)", code))
    best: dict[str, tuple[float, float, float]] = {}
    for _ in range(repeat):
        for label, checkout in checkouts:
            target = folder / "inserts.db"
            wall, cpu = baseline_copy(checkout, source, str(target), folder, events, INSERT_BATCH)
            with sqlite3.connect(target) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = target.stat().st_size / events
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            old = best.get(label, (float("inf"), float("inf"), size))
            best[label] = (min(old[0], wall), min(old[1], cpu), size)
    for label, (wall, cpu, size) in best.items():
        print(
            f"  inserts    {label:<28} insert_rows, {INSERT_BATCH:,} a batch: "
            f"{events / wall:7,.0f} events/s wall {events / cpu:7,.0f} cpu, {size:4.0f} B/event"
        )


def run(command: list[str], cwd: Path, code: Path | None = None) -> Run:
    """One fresh process (`code`: a checkout whose factory_tui to run instead of this one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], cwd=cwd, env=env, capture_output=True
    )
    if done.returncode:
        sys.stderr.write(done.stderr.decode())
        raise SystemExit(f"{command[2:4]} failed with exit code {done.returncode}")
    wall, cpu, peak_kib = done.stderr.decode().split()[-3:]
    return Run(float(wall), float(cpu), int(peak_kib) / 1024, done.stdout.decode())


# `report` with its read in one process (issue 17's first figures were of this): the same
# command with the two-process split switched off.
ONE_PROCESS: Final = """
import sys
from factory_tui import warm_start
warm_start.SPLIT_READ_ROWS = 2**62
from factory_tui.cli import main
sys.argv[0] = "factory-tui"
main()
"""


def compare(
    name: str,
    db: str,
    floor: str,
    rows: list[NewEventRow],
    cwd: Path,
    repeat: int,
    baseline: tuple[Path, str] | None,
) -> None:
    """Time the floor and the report (best of `repeat`, interleaved) and print the ratio.

    `baseline`: a checkout and its own copy of the database, whose report to time too."""
    first = min(row.ts_us for row in rows)
    last = max(row.ts_us for row in rows) + 1
    window = ["--from", iso_utc(first), "--to", iso_utc(last), "--at", iso_utc(last)]
    arguments = ["report", "--format", "json", *window]
    common = [sys.executable, "-m", "factory_tui", *arguments]
    alone = [sys.executable, "-c", ONE_PROCESS, *arguments]
    runs: dict[str, list[Run]] = {"floor": [], "report": [], "alone": [], "baseline": []}
    for _ in range(repeat):
        floor_run = run([sys.executable, "-c", floor, db], cwd)
        if int(floor_run.stdout) != len(rows):
            raise SystemExit(f"the floor read {floor_run.stdout.strip()} rows of {len(rows):,}")
        runs["floor"].append(floor_run)
        cases: list[tuple[str, Path | None, str]] = [("alone", None, db), ("report", None, db)]
        if baseline is not None:
            cases.insert(0, ("baseline", *baseline))
        for label, code, location in cases:
            command = alone if label == "alone" else common
            done = run([*command, "--db", location], cwd, code)
            counted = sum(worker["events"] for worker in json.loads(done.stdout)["workers"])
            if counted != len(rows):
                raise SystemExit(f"{label} counted {counted:,} events of {len(rows):,}")
            runs[label].append(done)
    floor_wall = min(item.wall_s for item in runs["floor"])
    floor_cpu = min(item.cpu_s for item in runs["floor"])
    lines = [("floor", "bare read of the metric columns (floor)")]
    if baseline is not None:
        lines.append(("baseline", f"report, {baseline[0].name} (baseline)"))
    lines.append(("alone", "report, read in one process"))
    lines.append(("report", "report --format json, all events"))
    print(f"  {name:<10} {'':<42} {'wall':>8} {'cpu':>8} {'peak RSS':>9}  wall and cpu / floor")
    for label, text in lines:
        wall = min(item.wall_s for item in runs[label])
        cpu = min(item.cpu_s for item in runs[label])
        peak = max(item.peak_mb for item in runs[label])
        ratio = "" if label == "floor" else f"  {wall / floor_wall:5.2f}x {cpu / floor_cpu:5.2f}x"
        print(f"  {name:<10} {text:<42} {wall:6.2f} s {cpu:6.2f} s {peak:6.0f} MB{ratio}")
    print(
        f"  {'':<10} (targets: wall at most {RATIO_TARGET}x the floor's, under {RSS_TARGET_MB} MB"
        " peak; cpu counts this side only, both processes of a split read, not a PostgreSQL"
        " server's)",
        flush=True,
    )


def postgres_reachable(url: str) -> str | None:
    """Why no PostgreSQL answers at `url` (None: one does)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5):
            return None
    except psycopg.Error as error:
        return " ".join(str(error).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (best counts)")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout (folder holding factory_tui/) whose report to time beside this one's, "
        "over a copy of the events it stores itself",
    )
    parser.add_argument(
        "--insert-events", type=int, default=200_000, help="events of the insert-rate figure"
    )
    add_pg_option(parser)
    options = parser.parse_args()
    started = time.perf_counter()
    rows = generate(options.events)
    print(
        f"report benchmark: {len(rows):,} events, {WORKERS} workers, {STATIONS} stations "
        f"(made in {time.perf_counter() - started:.0f} s); best of {options.repeat}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        folder = Path(tmp)
        db = folder / "report.db"
        with SqliteStore.open(db, bulk_writer=True) as store:
            store_rows(store, rows)
        code = options.baseline
        sqlite_baseline = None
        if code is not None:
            baseline_copy(code, db, str(folder / "baseline.db"), folder, len(rows))
            sqlite_baseline = (code, str(folder / "baseline.db"))
        compare("SQLite", str(db), SQLITE_FLOOR, rows, folder, options.repeat, sqlite_baseline)
        inserts(code, db, folder, min(len(rows), options.insert_events), options.repeat)
        if options.no_pg:
            return
        problem = postgres_reachable(options.pg)
        if problem is not None:
            print(f"  PostgreSQL: skipped, no server at {mask_url(options.pg)}: {problem}")
            return
        with scratch_schema(options.pg, "report") as url, scratch_schema(options.pg, "base") as old:
            with open_store(url) as store:
                store_rows(store, rows)
            pg_baseline = None
            if code is not None:
                baseline_copy(code, db, old, folder, len(rows))
                pg_baseline = (code, old)
            for location in (url, old) if code is not None else (url,):
                with psycopg.connect(location, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE events")
            compare("PostgreSQL", url, PG_FLOOR, rows, folder, options.repeat, pg_baseline)
    print(f"  load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
