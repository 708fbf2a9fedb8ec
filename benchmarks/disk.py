"""Disk: the bytes one stored event takes, on SQLite and on PostgreSQL, and what a year costs.

Stores N events of a simulated 200-camera floor (one state event per camera every 10 s plus
its product counts, as `factory_tui.ingest.simulator` makes them, re-sends dropped as the
listener drops them) through the storage interface, in the listener's batch size, then:

- SQLite: the database file after a checkpoint, per event (and its WAL, which does not grow
  with the events);
- PostgreSQL (`--pg`, default $FACTORY_TUI_TEST_PG or postgresql://127.0.0.1:5432/test, in a
  fresh schema dropped afterwards): `pg_total_relation_size` of the site's events partition
  (table, TOAST and its indexes) after a VACUUM, per event;

beside the yardstick of the raw JSON line (what the cameras sent, newline included). Then
retention's steady state: the oldest half deleted (`Retention.sweep`) and as many newer events
stored again, and the size after that: a file that keeps `keep_days` stays that size.
Last, a year of a 200-camera floor at one event per 10 s (1.728M events a day) with and
without retention, from the measured bytes per event.

    python benchmarks/disk.py                   # 200,000 events (about two minutes on 2 cores)
    python benchmarks/disk.py --events 50000    # quicker
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pg_scratch import add_pg_option, events_bytes, scratch_schema, vacuum  # noqa: E402
from factory_tui.ingest.protocol import parse_row  # noqa: E402
from factory_tui.ingest.simulator import CameraFleet, FleetConfig  # noqa: E402
from factory_tui.models import RosterEntry, to_utc_us  # noqa: E402
from factory_tui.retention import US_PER_DAY, Retention  # noqa: E402
from factory_tui.storage import Store, mask_url, open_store  # noqa: E402

if TYPE_CHECKING:
    from factory_tui.models import NewEventRow

SITE: Final = "bench"
CAMERAS: Final = 200
STATIONS: Final = 50
HEARTBEAT_S: Final = 10.0
EVENTS_PER_DAY: Final = CAMERAS * 86_400 / HEARTBEAT_S
"""The issue's floor: 200 cameras, one event each every 10 s (about 1.7M a day)."""
KEEP_DAYS: Final = (30, 90)
LISTENER_BATCH: Final = 500
"""Rows per transaction, about what the listener commits at a busy floor's rate."""
START: Final = to_utc_us(datetime(2025, 3, 3, 6, 0, tzinfo=UTC))
HOUR_US: Final = 3_600_000_000


def simulated(events: int) -> tuple[list[NewEventRow], float]:
    """`events` distinct rows of the floor, as the listener stores them, and the mean length
    of the JSON lines that carried them (newline included)."""
    workers = [RosterEntry(f"W{n}", f"W{n}") for n in range(1, CAMERAS + 1)]
    stations = [RosterEntry(f"S{n}", f"S{n}") for n in range(1, STATIONS + 1)]
    fleet = CameraFleet(
        workers,
        stations,
        seed=7,
        config=FleetConfig(heartbeat_s=HEARTBEAT_S, shift_s=24 * 3600.0, breaks=()),
    )
    rows: dict[str, NewEventRow] = {}
    line_bytes = lines = 0
    at = START
    while len(rows) < events:
        for emission in fleet.emissions_between(at, at + HOUR_US):
            row = parse_row(emission.line, UTC, emission.send_us)
            if row.event_hash in rows:
                continue  # a re-send: the listener replies "duplicate" and stores nothing
            rows[row.event_hash] = row
            line_bytes += len(emission.line) + 1
            lines += 1
        at += HOUR_US
    return list(rows.values())[:events], line_bytes / lines


def store_all(store: Store, rows: list[NewEventRow]) -> float:
    """Store `rows` in listener-sized transactions; the seconds it took."""
    started = time.perf_counter()
    for first in range(0, len(rows), LISTENER_BATCH):
        store.insert_rows(rows[first : first + LISTENER_BATCH])
    return time.perf_counter() - started


def churn(
    store: Store,
    old: list[NewEventRow],
    new: list[NewEventRow],
    between: Callable[[], object] = lambda: None,
) -> int:
    """Retention's steady state: delete as many of the oldest events as `new` holds, call
    `between`, then store `new`; how many were deleted."""
    cut_us = sorted(row.ts_us for row in old)[len(new)]
    retention = Retention(1.0, clock=lambda: cut_us + US_PER_DAY)
    deleted = retention.sweep(store).total
    between()
    store_all(store, new)
    return deleted


def later(rows: list[NewEventRow], count: int) -> list[NewEventRow]:
    """The first `count` of `rows` again, moved past the last of them in time, each with a
    hash of its own (as random as a real one)."""
    span = max(row.ts_us for row in rows) - min(row.ts_us for row in rows) + HOUR_US
    return [
        row._replace(
            ts_us=row.ts_us + span,
            received_us=row.received_us + span,
            event_hash=hashlib.sha256(f"later {row.event_hash}".encode()).hexdigest(),
        )
        for row in rows[:count]
    ]


def sqlite_size(path: Path) -> tuple[int, int]:
    """(database file, WAL file) sizes in bytes."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def measure_sqlite(folder: Path, rows: list[NewEventRow], extra: list[NewEventRow]) -> float:
    """Bytes per event of a SQLite file holding `rows` (its WAL, printed too, is a few MB that
    do not grow with the events), printed with the steady state of retention."""
    path = folder / "site.db"
    with open_store(path, site=SITE) as store:
        seconds = store_all(store, rows)
        store.checkpoint()
        db, wal = sqlite_size(path)
        per_event = db / len(rows)
        print(
            f"  SQLite       {per_event:7.0f} B/event  (the file, {db / 1e6:,.1f} MB, after a "
            f"checkpoint; with the WAL, {wal / 1e6:,.1f} MB that does not grow with it, "
            f"{(db + wal) / len(rows):.0f}; stored in {seconds:.1f} s)"
        )
        deleted = churn(store, rows, extra)
        store.checkpoint()
        after, wal_after = sqlite_size(path)
        print(
            f"  SQLite, retention's steady state: {deleted:,} deleted, as many stored: "
            f"file {after / 1e6:,.1f} MB ({after / db:.2f} x before), "
            f"WAL {wal_after / 1e6:,.1f} MB"
        )
    db, wal = sqlite_size(path)
    print(f"  SQLite, closed (the WAL folded in and removed): file {db / 1e6:,.1f} MB")
    return per_event


def measure_postgres(
    base_url: str, rows: list[NewEventRow], extra: list[NewEventRow]
) -> float | None:
    """Bytes per event of the site's events partition holding `rows` (None: no server),
    printed with the steady state of retention."""
    try:
        with psycopg.connect(base_url, autocommit=True, connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as error:
        why = " ".join(str(error).split())
        print(f"  PostgreSQL   skipped, none at {mask_url(base_url)}: {why}")
        return None
    with scratch_schema(base_url, "disk") as url, open_store(url, site=SITE) as store:
        seconds = store_all(store, rows)
        size, _ = events_bytes(url)
        print(
            f"  PostgreSQL   {size / len(rows):7.0f} B/event  (the site's partition with its "
            f"indexes {size / 1e6:,.1f} MB, after VACUUM; PostgreSQL "
            f"{version[0] if version else '?'}; stored in {seconds:.1f} s)"
        )
        deleted = churn(store, rows, extra, lambda: vacuum(url))
        after, _ = events_bytes(url)
        print(
            f"  PostgreSQL, retention's steady state (VACUUM between, as autovacuum does): "
            f"{deleted:,} deleted, as many stored: {after / 1e6:,.1f} MB "
            f"({after / size:.2f} x before)"
        )
    return size / len(rows)


def year_costs(label: str, per_event: float) -> None:
    """What a year of the floor takes at `per_event` bytes, kept whole and with retention."""
    year_gb = EVENTS_PER_DAY * 365 * per_event / 1e9
    kept = ", ".join(
        f"keep_days {days}: {EVENTS_PER_DAY * days * per_event / 1e9:,.0f} GB" for days in KEEP_DAYS
    )
    print(f"  {label:<12} a year: {year_gb:,.0f} GB; {kept}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to store")
    add_pg_option(parser)
    args = parser.parse_args()
    started = time.perf_counter()
    rows, line_length = simulated(args.events)
    extra = later(rows, args.events // 2)
    span_h = (max(r.ts_us for r in rows) - min(r.ts_us for r in rows)) / HOUR_US
    print(
        f"disk: {len(rows):,} events of {CAMERAS} cameras ({span_h:.1f} h simulated), made in "
        f"{time.perf_counter() - started:.1f} s"
    )
    print(f"  JSON line    {line_length:7.0f} B/event  (the yardstick: what the cameras sent)")
    with tempfile.TemporaryDirectory(prefix="disk-bench-") as tmp:
        sqlite = measure_sqlite(Path(tmp), rows, extra)
    postgres = measure_postgres(args.pg, rows, extra)
    print(f"  at {EVENTS_PER_DAY / 1e6:.3f}M events a day ({CAMERAS} cameras, one per 10 s):")
    year_costs("JSON lines", line_length)
    year_costs("SQLite", sqlite)
    if postgres is not None:
        year_costs("PostgreSQL", postgres)


if __name__ == "__main__":
    main()
