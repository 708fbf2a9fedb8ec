"""Loading the stored history an engine needs for a window — shared by the console and `report`.

A gap counts for at most max_gap, so no event older than `window start - max_gap` can change
a window's time figures; what such older events still carry in is each worker's state, station
and "last seen". So the history needed is every event from that floor on, plus, per worker, its
latest event and its latest state event before the floor. This keeps a start-up or a report
fast however long the database's history is, with exactly the numbers of an engine fed it all.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from factory_tui.engine import Engine
from factory_tui.engine.metrics import ACTIVITY_BUCKET_US, ACTIVITY_BUCKETS
from factory_tui.engine.snapshot import US_PER_S, Window
from factory_tui.store import Store

ROW_COLUMNS: Final = (
    "worker_id, ts_us, event_hash, event_type, workstation_id, count, confidence, id"
)
"""The columns of `Engine.apply_tuples`, in its order."""
_WIDE_READ: Final = 0.3
"""Above this share of the stored time span, a table scan beats the timestamp index."""


def history_floor(window: Window, at_us: int, max_gap_s: float) -> int:
    """The oldest timestamp that can change `snapshot(window, at_us)` (its activity hour too)."""
    max_gap_us = round(max_gap_s * US_PER_S)
    return min(window.from_us, at_us - ACTIVITY_BUCKETS * ACTIVITY_BUCKET_US) - max_gap_us


def load_history(engine: Engine, store: Store, floor_us: int, until_us: int | None = None) -> int:
    """Fold into `engine` every event with `floor_us <= ts <= until_us` (no upper bound when None)
    and what each worker carries in from before the floor; returns how many events were new.

    The engine ignores events it already holds, so rows stored while this runs may be read again
    by the next cursor read without harm.
    """
    conn = store.db.conn
    first, last = conn.execute("SELECT min(ts_us), max(ts_us) FROM events").fetchone()
    if first is None:
        return 0
    high = last if until_us is None else until_us
    added = engine.apply_tuples(_range_rows(conn, floor_us, high, first, last))
    if first < floor_us:
        for worker_id in _worker_ids(conn):
            added += engine.apply_tuples(_carried_in(conn, worker_id, floor_us))
    return added


def stations_before(store: Store, floor_us: int) -> list[str]:
    """Workstation ids seen in events older than `floor_us` (one table scan; for reports)."""
    rows = store.db.conn.execute(
        "SELECT DISTINCT workstation_id FROM events NOT INDEXED WHERE ts_us < ?", (floor_us,)
    )
    return [station_id for (station_id,) in rows]


def _range_rows(
    conn: sqlite3.Connection, lo: int, hi: int, first: int, last: int
) -> sqlite3.Cursor:
    # Streams with one statement: a one-off read, not a tick that would pin the WAL.
    span = max(last - first, 1)
    wide = (min(hi, last) - max(lo, first)) / span > _WIDE_READ
    table = "events NOT INDEXED" if wide else "events"
    return conn.execute(
        f"SELECT {ROW_COLUMNS} FROM {table} WHERE ts_us >= ? AND ts_us <= ?", (lo, hi)
    )


def _worker_ids(conn: sqlite3.Connection) -> list[str]:
    """Distinct worker ids by skipping along the (worker_id, ts_us) index: one seek per worker."""
    rows = conn.execute(
        "WITH RECURSIVE w(id) AS (SELECT min(worker_id) FROM events UNION ALL "
        "SELECT (SELECT min(worker_id) FROM events WHERE worker_id > w.id) FROM w "
        "WHERE w.id IS NOT NULL) SELECT id FROM w WHERE id IS NOT NULL"
    )
    return [worker_id for (worker_id,) in rows]


def _carried_in(conn: sqlite3.Connection, worker_id: str, lo: int) -> list[Any]:
    """The worker's events at the instant of its latest event, and of its latest state event,
    before `lo` (every event at that instant: ties are ordered by hash in the engine)."""
    rows: list[Any] = []
    for condition in ("", "AND event_type != 'product_count'"):
        # Walks the (worker_id, ts_us) index backwards and stops at the first match.
        found = conn.execute(
            f"SELECT ts_us FROM events WHERE worker_id = ? AND ts_us < ? {condition} "
            "ORDER BY ts_us DESC LIMIT 1",
            (worker_id, lo),
        ).fetchone()
        if found is not None:
            rows += conn.execute(
                f"SELECT {ROW_COLUMNS} FROM events WHERE worker_id = ? AND ts_us = ?",
                (worker_id, found[0]),
            ).fetchall()
    return rows
