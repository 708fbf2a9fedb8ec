"""Every read and write of the storage interface means the same on both backends.

Each test runs on a fresh SQLite file and on a fresh schema of a real PostgreSQL server
(`store_opener` / `any_store` in conftest.py); test_store.py holds the older half of the
contract and SQLite's own details.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace

import psycopg
import pytest

from factory_tui.config import Settings
from factory_tui.engine import Engine, Window
from factory_tui.models import RosterEntry, WireEvent, iso_utc, parse_event, prepare_row
from factory_tui.records import AuditEntry
from factory_tui.storage import PostgresStore, ReadOnlyError, RowError, Store, StoreError
from factory_tui.storage.postgres import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION
from factory_tui.storage.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from factory_tui.warm_start import load_engine
from tests.conftest import StoreOpener

S = 1_000_000
BASE = 1_772_445_600 * S  # 2026-03-02 10:00 UTC


def line(
    second: int, worker: str = "W1", station: str = "S1", kind: str = "working", **extra: object
) -> WireEvent:
    """An event `second` seconds after 10:00 on the test day."""
    data = {
        "timestamp": iso_utc(BASE + second * S),
        "worker_id": worker,
        "workstation_id": station,
        "event_type": kind,
        "confidence": 0.9,
        **extra,
    }
    return parse_event(json.dumps(data))


def test_duplicates_within_and_across_batches(any_store: Store) -> None:
    first = line(1)
    assert any_store.insert_batch([first, line(2), first]) == ["accepted", "accepted", "duplicate"]
    assert any_store.insert_batch([line(2), line(3)]) == ["duplicate", "accepted"]
    assert any_store.insert_batch([]) == []
    ids = [row.id for row in any_store.read_since(0)]
    assert ids == sorted(ids)
    assert len(ids) == any_store.count_events() == 3


def test_a_late_event_gets_a_new_id_and_sorts_by_time(any_store: Store) -> None:
    any_store.insert_batch([line(10), line(20)])
    any_store.insert_batch([line(5)])  # sent late: an older timestamp, a newer id
    by_id = any_store.read_since(0)
    assert [row.ts_us for row in by_id] == [BASE + 10 * S, BASE + 20 * S, BASE + 5 * S]
    by_time = list(any_store.iter_range())
    assert [row.ts_us for row in by_time] == [BASE + 5 * S, BASE + 10 * S, BASE + 20 * S]
    assert any_store.time_span() == (BASE + 5 * S, BASE + 20 * S)


def test_an_empty_store(any_store: Store) -> None:
    assert any_store.time_span() is None
    assert any_store.max_event_id() == 0
    assert list(any_store.engine_rows(0, 2**62)) == []
    assert any_store.worker_ids() == []
    assert any_store.latest_events() == []
    assert any_store.model_first_seen() == []
    assert any_store.alerts() == []


def test_engine_rows_and_what_each_worker_carries_in(any_store: Store) -> None:
    any_store.insert_batch(
        [
            line(1, "W1", kind="working"),
            line(2, "W1", kind="product_count", count=2),
            line(2, "W1", kind="idle"),  # the same instant as the unit: both are carried in
            line(3, "W2", "S2", kind="absent"),
            line(40, "W1", kind="working"),
        ]
    )
    rows = sorted(any_store.engine_rows(BASE + 2 * S, BASE + 40 * S))
    assert [(row[0], row[1], row[3]) for row in rows] == sorted(
        [
            ("W1", BASE + 2 * S, "product_count"),
            ("W1", BASE + 2 * S, "idle"),
            ("W2", BASE + 3 * S, "absent"),
            ("W1", BASE + 40 * S, "working"),
        ]
    )
    assert any_store.worker_ids() == ["W1", "W2"]
    latest = any_store.engine_rows_before("W1", BASE + 40 * S, state_only=False)
    assert sorted(row[3] for row in latest) == ["idle", "product_count"]
    state = any_store.engine_rows_before("W1", BASE + 40 * S, state_only=True)
    assert sorted(row[3] for row in state) == ["idle", "product_count"]  # that whole instant
    assert any_store.engine_rows_before("W1", BASE + 2 * S, state_only=True)[0][3] == "working"
    assert any_store.engine_rows_before("W2", BASE + 3 * S, state_only=False) == []
    assert any_store.stations_before(BASE + 3 * S) == ["S1"]


def test_latest_events_overall_and_of_one_worker(any_store: Store) -> None:
    any_store.insert_batch([line(5, "W1"), line(1, "W2"), line(3, "W1")])
    assert [row.ts_us for row in any_store.latest_events(2)] == [BASE + 3 * S, BASE + S]
    mine = any_store.latest_events(5, worker_id="W1")
    assert [row.ts_us for row in mine] == [BASE + 5 * S, BASE + 3 * S]


def test_units_by_bucket_stop_at_the_engines_cursor(any_store: Store) -> None:
    units = [line(second, kind="product_count", count=second % 3 + 1) for second in range(0, 50, 7)]
    any_store.insert_batch(units)
    last_id = any_store.max_event_id()
    any_store.insert_batch([line(59, kind="product_count", count=9)])
    buckets = any_store.units_by_bucket("W1", BASE, BASE + 60 * S, 20 * S, max_id=last_id)
    by_bucket = {bucket.bucket: bucket.units for bucket in buckets}
    expected: dict[int, int] = {}
    for second in range(0, 50, 7):
        expected[second // 20] = expected.get(second // 20, 0) + second % 3 + 1
    assert by_bucket == expected
    assert all(bucket.station_id == "S1" for bucket in buckets)
    first = min(buckets, key=lambda bucket: bucket.bucket)
    assert (first.first_us, first.last_us) == (BASE, BASE + 14 * S)


def test_model_summary_per_model_with_unnamed_first(any_store: Store) -> None:
    any_store.insert_batch(
        [
            line(1, model_version="b", confidence=0.5),
            line(2, model_version="a", kind="product_count", count=4, confidence=0.7),
            line(3, confidence=0.8),
            line(4, model_version="a", confidence=0.9),
        ]
    )
    summary = any_store.model_summary(BASE, BASE + 60 * S)
    assert [item.model_version for item in summary] == [None, "a", "b"]
    named_a = summary[1]
    assert (named_a.events, named_a.units) == (2, 4)
    assert named_a.mean_confidence == pytest.approx(0.8)
    assert named_a.min_confidence == pytest.approx(0.7)


def test_a_value_the_database_cannot_hold_is_a_row_error(any_store: Store) -> None:
    rows = [prepare_row(line(1), BASE), prepare_row(line(2), BASE)._replace(ts_us=2**70)]
    with pytest.raises(RowError):
        any_store.insert_rows(rows)
    assert any_store.count_events() == 0  # the whole batch was rolled back


def test_read_only_refuses_writes_and_sees_commits(store_opener: StoreOpener) -> None:
    with store_opener() as writer, store_opener(read_only=True) as reader:
        assert reader.read_only
        with pytest.raises(ReadOnlyError):
            reader.insert_batch([line(1)])
        with pytest.raises(ReadOnlyError):
            reader.sync_alerts([], 0)
        writer.insert_batch([line(1)])
        assert reader.count_events() == 1


def test_reopening_keeps_everything(store_opener: StoreOpener) -> None:
    with store_opener() as store:
        store.insert_batch([line(1)])
        store.set_owner(42, "127.0.0.1", 7878)
        version = store.schema_version()
    with store_opener() as again:
        assert again.schema_version() == version > 0
        assert again.count_events() == 1
        assert again.owner() == (42, "127.0.0.1", 7878)


def test_a_warm_start_gives_the_numbers_of_the_whole_history(store_opener: StoreOpener) -> None:
    """The engine `load_engine` builds from either backend equals one fed every event."""
    rng = random.Random(7)
    events = []
    for _ in range(600):
        second = rng.randrange(4 * 3600)
        worker = f"W{rng.randrange(5)}"
        kind = rng.choice(["working", "working", "idle", "absent", "product_count"])
        extra = {"count": rng.randrange(1, 4)} if kind == "product_count" else {}
        events.append(line(second, worker, f"S{rng.randrange(3)}", kind, **extra))
    settings = Settings.model_validate({"metrics": {"max_gap_s": 600}})
    with store_opener() as store:
        store.insert_batch(events)
        everything = Engine(600, store.workers(), store.workstations())
        everything.apply(store.iter_since(0))
        for start_h, at_h in ((0, 1), (2, 3.5), (3, 4)):
            window = Window(BASE + start_h * 3600 * S, BASE + int(at_h * 3600) * S)
            at_us = window.to_us
            loaded = load_engine(store, settings, window, at_us, until_us=at_us, every_station=True)
            mine, theirs = loaded.snapshot(window, at_us), everything.snapshot(window, at_us)
            assert (mine.workers, mine.stations, mine.factory) == (
                theirs.workers,
                theirs.stations,
                theirs.factory,
            )


def test_a_missing_database_is_one_clear_sentence(store_opener: StoreOpener) -> None:
    with pytest.raises(StoreError, match="not a factory-tui database|does not exist"):
        store_opener(read_only=True)


def test_postgres_schema_1_migrates_in_place_to_sites(pg_url: str) -> None:
    """A PostgreSQL database of the first schema (no sites) moves to the partitioned one: its
    events, roster, alerts and models belong to `main`, ids and dedup carry on."""
    with PostgresStore.open(pg_url, migrate_to=1) as old:
        rows = [prepare_row(line(second, model_version="a"), BASE) for second in (1, 2, 3)]
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.cursor().executemany(
                "INSERT INTO events (ts_us, worker_id, workstation_id, event_type, confidence, "
                "count, model_version, camera_id, received_us, event_hash) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            conn.execute("INSERT INTO workers VALUES ('W1', 'Ana')")
            conn.execute("INSERT INTO models VALUES ('a', 7)")
            conn.execute(
                "INSERT INTO alerts (kind, subject, details, started_us) "
                "VALUES ('camera_dark', 'W1', 'dark', 5)"
            )
        assert old.schema_version() == 1
    with PostgresStore.open(pg_url) as store:
        assert store.schema_version() == POSTGRES_SCHEMA_VERSION
        assert [row.id for row in store.read_since(0)] == [1, 2, 3]
        assert store.workers() == {"W1": "Ana"}
        assert store.model_first_seen() == [("a", 7)]
        assert [alert.subject for alert in store.alerts(active_only=True)] == ["W1"]
        assert [site.id for site in store.sites()] == ["main"]
        assert store.insert_batch([line(2, model_version="a"), line(9)]) == [
            "duplicate",
            "accepted",
        ]
        main_last = store.max_event_id()
        assert main_last > 3  # the sequence went on after the copied ids (gaps are allowed)
        pune = store.scoped("pune")
        assert pune.insert_batch([line(2, model_version="a")]) == ["accepted"]
        assert pune.max_event_id() > main_last  # one id sequence for every site


def test_sites_stay_apart(store_opener: StoreOpener) -> None:
    """Two sites with the same worker ids in one database: nothing of one shows in the other."""
    with store_opener() as main:
        pune = main.scoped("pune")
        assert main.insert_batch([line(1, "W1")]) == ["accepted"]
        assert pune.insert_batch([line(1, "W1"), line(2, "W1")]) == ["accepted", "accepted"]
        main.upsert_roster([RosterEntry("W1", "Ana")], [])
        pune.upsert_roster([RosterEntry("W1", "Ravi")], [])
        main.sync_alerts([("camera_dark", "W1", "dark", 5)], 10)
        main.describe_site("Main plant", {"timezone": "UTC"}, 1)
        pune.describe_site("Pune", {"timezone": "Asia/Kolkata", "max_gap_s": 300}, 2)
        assert (main.count_events(), pune.count_events()) == (1, 2)
        assert main.workers() == {"W1": "Ana"}
        assert pune.workers() == {"W1": "Ravi"}
        assert pune.alerts() == []
        main_ids = [row.id for row in main.read_since(0)]
        pune_ids = [row.id for row in pune.read_since(0)]
        assert len(main_ids) == 1
        assert len(pune_ids) == 2
        assert min(pune_ids) > max(main_ids)
        assert [(site.id, site.name) for site in main.sites()] == [
            ("main", "Main plant"),
            ("pune", "Pune"),
        ]
        assert main.sites()[1].description["max_gap_s"] == 300
        assert main.forward_cursor("central") == 0
        main.set_forward_cursor("central", 1, 99)
        assert main.forward_cursor("central") == 1


def test_fresh_rows_are_stored_like_any_others_and_a_known_one_is_a_duplicate(
    any_store: Store,
) -> None:
    """`insert_fresh_rows` (a forwarded backlog) means what `insert_rows` means: new rows
    accepted in order, a row already there a duplicate, models kept, the site's own rows."""
    rows = [prepare_row(line(second, model_version="m2"), 7) for second in range(4)]
    assert any_store.insert_fresh_rows(rows[:2]) == ["accepted", "accepted"]
    assert any_store.insert_fresh_rows([]) == []
    later = [prepare_row(line(99, model_version="m1"), 7), rows[1], rows[2], rows[2]]
    assert any_store.insert_fresh_rows(later) == ["accepted", "duplicate", "accepted", "duplicate"]
    stored = any_store.read_since(0)
    assert [row.event_hash for row in stored] == [
        rows[0].event_hash,
        rows[1].event_hash,
        later[0].event_hash,
        rows[2].event_hash,
    ]
    assert [row.id for row in stored] == sorted(row.id for row in stored)
    assert stored[0].received_us == 7
    assert any_store.model_first_seen() == [("m1", BASE + 99 * S), ("m2", BASE)]
    assert any_store.scoped("pune").insert_fresh_rows(rows[:1]) == ["accepted"]
    assert any_store.count_events() == 4


def test_fresh_rows_keep_every_value_as_insert_rows_does(any_store: Store) -> None:
    """The fresh path (SQLite: multi-row INSERTs; PostgreSQL: COPY) stores the very values
    `insert_rows` stores: full-precision confidences, any text, absent fields, a made-up hash
    kept as text."""
    pick = random.Random(17)
    events = [
        line(
            second,
            worker=f"W{second % 7}",
            confidence=pick.random() if second % 3 else round(pick.random(), 2),
            model_version=None if second % 5 == 0 else 'v-é😀"\\',
            camera_id=None if second % 4 == 0 else f"cam {second}",
        )
        for second in range(300)
    ]
    rows = [prepare_row(event, 7 + second) for second, event in enumerate(events)]
    made_up = [rows[0]._replace(event_hash="made-up")]
    plain, fresh = any_store, any_store.scoped("fresh")
    assert plain.insert_rows([*rows, *made_up]) == ["accepted"] * 301
    assert fresh.insert_fresh_rows(rows) == ["accepted"] * 300
    assert fresh.insert_fresh_rows(made_up) == ["accepted"]
    stored, expected = fresh.read_since(0), plain.read_since(0)
    assert [replace(row, id=0) for row in stored] == [replace(row, id=0) for row in expected]
    assert [row.id for row in stored] == sorted(row.id for row in stored)
    assert fresh.model_first_seen() == plain.model_first_seen()


def test_a_fresh_value_the_database_cannot_hold_is_a_row_error(any_store: Store) -> None:
    for field in ("ts_us", "unit_count", "received_us"):
        rows = [prepare_row(line(1), BASE), prepare_row(line(2), BASE)._replace(**{field: 2**70})]
        with pytest.raises(RowError):
            any_store.insert_fresh_rows(rows)
        assert any_store.count_events() == 0  # the whole batch was rolled back


def test_count_since_counts_this_sites_rows_after_a_cursor(store_opener: StoreOpener) -> None:
    """The forward backlog: rows of this site with a higher id, whatever other sites hold."""
    with store_opener() as main:
        pune = main.scoped("pune")
        assert main.count_since(0) == 0
        main.insert_batch([line(second) for second in range(5)])
        pune.insert_batch([line(second) for second in range(3)])
        main.insert_batch([line(second) for second in range(5, 7)])
        ids = [row.id for row in main.read_since(0)]
        assert main.count_since(0) == 7
        assert main.count_since(ids[4]) == 2  # pune's rows in between do not count
        assert main.count_since(ids[-1]) == 0
        assert pune.count_since(0) == 3


def test_retention_deletes_old_events_in_steps_up_to_an_id(any_store: Store) -> None:
    any_store.insert_batch([line(second) for second in range(10)])
    assert any_store.delete_events_before(BASE + 5 * S, max_id=3, limit=100) == 3
    assert any_store.delete_events_before(BASE + 5 * S, max_id=99, limit=1) == 1
    assert any_store.delete_events_before(BASE + 5 * S, max_id=99, limit=100) == 1
    assert [row.ts_us for row in any_store.iter_range()][0] == BASE + 5 * S
    last = any_store.max_event_id()
    any_store.delete_events_before(BASE + 60 * S, max_id=last, limit=100)  # all of them
    assert any_store.count_events() == 0
    any_store.insert_batch([line(30)])
    assert any_store.max_event_id() > last  # ids never go back, so no id cursor is fooled


def test_alerts_raised_in_a_window(any_store: Store) -> None:
    any_store.sync_alerts([("camera_dark", "W1", "dark", 100)], 150)
    any_store.sync_alerts(
        [("camera_dark", "W1", "dark", 100), ("idle_too_long", "W2", "i", 300)], 350
    )
    any_store.sync_alerts([], 500)
    assert [a.subject for a in any_store.alerts_raised(0, 1000)] == ["W1", "W2"]
    assert [a.subject for a in any_store.alerts_raised(200, 301)] == ["W2"]
    assert any_store.alerts_raised(301, 1000) == []
    assert any_store.scoped("elsewhere").alerts_raised(0, 1000) == []


# --- the audit trail ----------------------------------------------------------------------------


def test_audit_entries_come_back_newest_first_per_site(any_store: Store) -> None:
    """Audit entries are kept per site, read newest first with a limit, and deleted by age."""
    any_store.add_audit(
        [
            AuditEntry(BASE, "connection_opened", "10.0.0.5:4100", "plain"),
            AuditEntry(BASE + S, "auth_failed", "10.0.0.5:4100", "auth: wrong token"),
            AuditEntry(BASE + 2 * S, "connection_closed", "10.0.0.5:4100", "lines 1"),
        ]
    )
    any_store.scoped("pune").add_audit([AuditEntry(BASE, "peer_refused", "10.9.9.9:1", "x")])
    any_store.add_audit([])
    kinds = [entry.kind for entry in any_store.audit_entries()]
    assert kinds == ["connection_closed", "auth_failed", "connection_opened"]
    assert [entry.kind for entry in any_store.audit_entries(limit=1)] == ["connection_closed"]
    newest = any_store.audit_entries(limit=1)[0]
    assert (newest.at_us, newest.peer, newest.detail) == (BASE + 2 * S, "10.0.0.5:4100", "lines 1")
    assert any_store.delete_audit_before(BASE + 2 * S, limit=1) == 1
    assert any_store.delete_audit_before(BASE + 2 * S, limit=10) == 1
    assert [entry.kind for entry in any_store.audit_entries()] == ["connection_closed"]
    assert [entry.kind for entry in any_store.scoped("pune").audit_entries()] == ["peer_refused"]


def test_audit_entries_of_some_kinds(any_store: Store) -> None:
    """A kind filter reads only those kinds, newest first, its limit counting only them."""
    any_store.add_audit(
        [AuditEntry(BASE, "action_failed", "command /x", "camera_dark W3 raised: exit 1")]
        + [AuditEntry(BASE + i * S, "peer_refused", f"10.0.0.{i}:1", "x") for i in range(1, 6)]
        + [AuditEntry(BASE + 9 * S, "auth_failed", "10.0.0.9:1", "wrong token")]
    )
    any_store.scoped("pune").add_audit([AuditEntry(BASE, "action_failed", "command /y", "")])
    (failed,) = any_store.audit_entries(limit=1, kinds=("action_failed",))
    assert (failed.kind, failed.peer) == ("action_failed", "command /x")
    both = any_store.audit_entries(kinds=["auth_failed", "action_failed"])
    assert [entry.kind for entry in both] == ["auth_failed", "action_failed"]
    assert len(any_store.audit_entries(limit=3, kinds={"peer_refused"})) == 3
    assert any_store.audit_entries(kinds=()) == []
    assert any_store.audit_entries(kinds=("tls_failed",)) == []
    assert len(any_store.audit_entries()) == 7


def test_audit_is_read_only_for_a_viewer(store_opener: StoreOpener) -> None:
    """A read-only store reads the audit trail and refuses to write it."""
    with store_opener() as writer:
        writer.add_audit([AuditEntry(BASE, "peer_refused", "10.9.9.9:1", "not allowed")])
    with store_opener(read_only=True) as viewer:
        assert [entry.peer for entry in viewer.audit_entries()] == ["10.9.9.9:1"]
        with pytest.raises(StoreError):
            viewer.add_audit([AuditEntry(BASE, "peer_refused", "10.9.9.9:2", "")])


def test_a_database_of_the_previous_schema_gains_the_audit_table(db_location: str) -> None:
    """A database one schema before the audit table keeps its events and gains the table."""
    from factory_tui.storage import open_store

    postgres = db_location.startswith("postgresql")
    previous = 2 if postgres else 4  # the schema before the audit table
    with open_store_at(db_location, previous) as old:
        old.insert_batch([line(1), line(2)])
        assert old.schema_version() == previous
    with open_store(db_location) as store:
        assert store.schema_version() == (
            POSTGRES_SCHEMA_VERSION if postgres else SQLITE_SCHEMA_VERSION
        )
        assert store.count_events() == 2
        assert store.audit_entries() == []
        store.add_audit([AuditEntry(BASE, "connection_opened", "127.0.0.1:5000", "plain")])
        assert [entry.kind for entry in store.audit_entries()] == ["connection_opened"]


def open_store_at(location: str, version: int) -> Store:
    """The database at `location`, migrated only up to schema `version`."""
    from factory_tui.storage import SqliteStore

    if location.startswith("postgresql"):
        return PostgresStore.open(location, migrate_to=version)
    return SqliteStore.open(location, migrate_to=version)
