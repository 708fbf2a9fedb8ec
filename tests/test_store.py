"""The storage: its contract on both backends (`any_store`: SQLite and PostgreSQL), and the
SQLite backend's own details on real files (schema, PRAGMAs, migration, read-only mode)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from factory_tui.models import NewEventRow, RosterEntry, WireEvent, parse_event, prepare_row
from factory_tui.storage import SCHEMA_VERSION, ReadOnlyError, SqliteStore, Store, StoreError


def event(minute: int = 0, **changes: object) -> str:
    data = {
        "timestamp": f"2026-03-02T10:{minute:02d}:00Z",
        "worker_id": "W1",
        "workstation_id": "S1",
        "event_type": "working",
        "confidence": 0.9,
        **changes,
    }
    return json.dumps(data)


OLD_COLUMNS = (
    "ts_us, worker_id, workstation_id, event_type, confidence, count, model_version, "
    "camera_id, received_us, event_hash"
)


def insert_old(store: SqliteStore, events: list[WireEvent], received_us: int = 1) -> None:
    """Store events in a database of schema 1 to 3 (no sites), as an old factory-tui did."""
    with store._db.conn:
        store._db.conn.executemany(
            f"INSERT INTO events ({OLD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [prepare_row(item, received_us) for item in events],
        )


def test_new_file_is_wal_and_current_schema(fresh_db: Store) -> None:
    assert fresh_db.schema_version() == SCHEMA_VERSION
    assert fresh_db._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert fresh_db._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    columns = {c.name for c in fresh_db._db["events"].columns}
    assert columns == {
        "id",
        "site_id",
        "ts_us",
        "worker_id",
        "workstation_id",
        "event_type",
        "confidence",
        "count",
        "model_version",
        "camera_id",
        "received_us",
        "event_hash",
    }
    indexes = {tuple(i.columns) for i in fresh_db._db["events"].indexes}
    assert ("site_id", "worker_id", "ts_us") in indexes
    assert ("site_id", "event_hash") in indexes  # the unique key of an event


def test_power_durability_is_synchronous_full(tmp_path: Path) -> None:
    with SqliteStore.open(tmp_path / "p.db", durability="power") as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_batch_statuses_and_dedup_across_spellings(any_store: Store) -> None:
    spellings = [
        event(0),
        event(0, timestamp="2026-03-02T10:00:00+00:00"),
        event(1),
        event(0, confidence=0.90, count=0),
        event(2, event_type="product_count", count=3),
    ]
    statuses = any_store.insert_batch([parse_event(s) for s in spellings], received_us=5)
    assert statuses == ["accepted", "duplicate", "accepted", "duplicate", "accepted"]
    again = any_store.insert_batch([parse_event(event(1)), parse_event(event(3))])
    assert again == ["duplicate", "accepted"]
    assert any_store.count_events() == 4


def test_read_since_follows_the_id_cursor(any_store: Store) -> None:
    any_store.insert_batch([parse_event(event(m)) for m in (5, 1, 3)], received_us=7)
    rows = any_store.read_since(0)
    assert [r.id for r in rows] == [1, 2, 3]
    # Id order is arrival order, not time order.
    assert [r.ts_us for r in rows] == [parse_event(event(m)).ts_us for m in (5, 1, 3)]
    assert rows[0].received_us == 7
    assert any_store.read_since(1, limit=1) == [rows[1]]
    assert any_store.read_since(3) == []
    assert list(any_store.iter_since(0, batch=2)) == rows
    assert any_store.max_event_id() == 3


def test_iter_range_is_time_ordered_and_half_open(any_store: Store) -> None:
    any_store.insert_batch([parse_event(event(m)) for m in (5, 1, 3, 2)])
    start = parse_event(event(2)).ts_us
    end = parse_event(event(5)).ts_us
    rows = list(any_store.iter_range(start, end, batch=1))
    assert [r.ts_us for r in rows] == [start, parse_event(event(3)).ts_us]
    assert len(list(any_store.iter_range())) == 4


def test_record_round_trips_to_wire(any_store: Store) -> None:
    original = parse_event(event(4, model_version="m2", camera_id="C9"))
    any_store.insert_batch([original])
    (row,) = any_store.read_since(0)
    assert row.event_hash == original.event_hash()
    assert parse_event(json.dumps(row.to_wire())) == original


def test_roster_upsert_renames_and_keeps_others(any_store: Store) -> None:
    any_store.upsert_roster(
        [RosterEntry("W1", "Ana"), RosterEntry("W2", "Bo")], [RosterEntry("S1", "Cell")]
    )
    any_store.upsert_roster([RosterEntry("W1", "Ana Silva")], [])
    assert any_store.workers() == {"W1": "Ana Silva", "W2": "Bo"}
    any_store.register_ids(["W2", "W9"], ["S7"])
    assert any_store.workers() == {"W1": "Ana Silva", "W2": "Bo", "W9": "W9"}
    assert any_store.workstations() == {"S1": "Cell", "S7": "S7"}


def test_second_connection_sees_committed_rows(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    with SqliteStore.open(path) as writer, SqliteStore.open(path, read_only=True) as reader:
        assert reader.read_since(0) == []
        writer.insert_batch([parse_event(event(1))])
        assert len(reader.read_since(0)) == 1
        # The reader holds no transaction between reads, so the writer can checkpoint.
        assert not reader._db.conn.in_transaction
        writer._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert writer._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


def test_read_only_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    SqliteStore.open(path).close()
    with SqliteStore.open(path, read_only=True) as reader:
        with pytest.raises(ReadOnlyError):
            reader.insert_batch([parse_event(event())])
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._db.execute("INSERT INTO workers (id, name) VALUES ('x', 'y')")


def test_read_only_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        SqliteStore.open(tmp_path / "none.db", read_only=True)
    assert not (tmp_path / "none.db").exists()


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder .* does not exist"):
        SqliteStore.open(tmp_path / "no" / "f.db")


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    path.write_bytes(b"this is a text file, not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        SqliteStore.open(path)


def test_migration_from_an_older_schema_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SqliteStore.open(path, migrate_to=1) as old:
        assert old.schema_version() == 1
        assert not old._db["alerts"].exists()
        insert_old(old, [parse_event(event(1))])
    with pytest.raises(StoreError, match="older schema"):
        SqliteStore.open(path, read_only=True)
    with SqliteStore.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store._db["alerts"].exists()
        assert store.count_events() == 1
        assert ("site_id", "ts_us") in {tuple(i.columns) for i in store._db["events"].indexes}


def test_migration_3_finds_each_models_first_event(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with SqliteStore.open(path, migrate_to=2) as old:
        insert_old(
            old,
            [
                parse_event(event(5, model_version="a")),
                parse_event(event(3, model_version="a")),
                parse_event(event(7, model_version="b")),
                parse_event(event(9)),
            ],
        )
    with SqliteStore.open(path) as store:
        assert store.model_first_seen() == [
            (None, minute_us(9)),
            ("a", minute_us(3)),
            ("b", minute_us(7)),
        ]


def test_inserts_keep_each_models_first_event(any_store: Store) -> None:
    any_store.insert_batch([parse_event(event(5, model_version="a"))])
    any_store.insert_batch(
        [parse_event(event(8, model_version="a")), parse_event(event(6, model_version="b"))]
    )
    assert any_store.model_first_seen() == [("a", minute_us(5)), ("b", minute_us(6))]
    # A late event earlier than the first one seen moves the model's first event back.
    any_store.insert_batch([parse_event(event(1, model_version="b"))])
    assert any_store.model_first_seen() == [("a", minute_us(5)), ("b", minute_us(1))]


def minute_us(minute: int) -> int:
    """The µs timestamp of `event(minute)`."""
    return parse_event(event(minute)).ts_us


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with SqliteStore.open(path) as store:
        store._db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer factory-tui"):
        SqliteStore.open(path)


def test_owner_is_recorded(any_store: Store) -> None:
    assert any_store.owner() is None
    any_store.set_owner(1234, "127.0.0.1", 7878)
    assert any_store.owner() == (1234, "127.0.0.1", 7878)


def test_sync_alerts_raises_refreshes_and_clears(any_store: Store) -> None:
    any_store.sync_alerts(
        [("camera_dark", "W1", "20 min", 80), ("idle_too_long", "W2", "11 min", 100)], 100
    )
    any_store.sync_alerts([("camera_dark", "W1", "21 min", 81)], 200)
    alerts = {(a.kind, a.subject): a for a in any_store.alerts()}
    assert alerts["camera_dark", "W1"].started_us == 80  # its own start, kept while it holds
    assert alerts["camera_dark", "W1"].details == "21 min"
    assert alerts["camera_dark", "W1"].cleared_us is None
    assert alerts["idle_too_long", "W2"].cleared_us == 200
    any_store.sync_alerts([], 300)
    assert any_store.alerts(active_only=True) == []
    # The same condition again is a new alert, not the cleared one reopened.
    any_store.sync_alerts([("camera_dark", "W1", "again", 400)], 400)
    (again,) = any_store.alerts(active_only=True)
    assert again.id != alerts["camera_dark", "W1"].id
    assert again.started_us == 400


def test_model_summary_groups_by_version_in_the_window(any_store: Store) -> None:
    any_store.insert_batch(
        [
            parse_event(event(1, model_version="a", confidence=0.8)),
            parse_event(
                event(2, model_version="a", confidence=0.6, event_type="product_count", count=4)
            ),
            parse_event(event(3, confidence=0.5)),
            parse_event(event(40, model_version="a", confidence=0.1)),
        ]
    )
    start, end = parse_event(event(0)).ts_us, parse_event(event(30)).ts_us
    summary = any_store.model_summary(start, end)
    assert [(m.model_version, m.events, m.units) for m in summary] == [(None, 1, 0), ("a", 2, 4)]
    assert abs(summary[1].mean_confidence - 0.7) < 1e-9
    assert summary[1].min_confidence == 0.6


def test_migration_4_puts_existing_data_in_site_main(tmp_path: Path) -> None:
    """A schema-3 database with events, roster, alerts and models migrates in place: all of it
    belongs to site `main`, ids and dedup keep working, and other sites stay apart."""
    path = tmp_path / "v3.db"
    with SqliteStore.open(path, migrate_to=3) as old:
        insert_old(old, [parse_event(event(m, model_version="a")) for m in (1, 2, 3)])
        with old._db.conn:
            old._db.conn.execute("INSERT INTO workers (id, name) VALUES ('W1', 'Ana')")
            old._db.conn.execute("INSERT INTO workstations (id, name) VALUES ('S1', 'Cell')")
            old._db.conn.execute(
                "INSERT INTO alerts (kind, subject, details, started_us) "
                "VALUES ('camera_dark', 'W1', 'dark', 5)"
            )
            old._db.conn.execute("UPDATE models SET first_ts_us = 7 WHERE model_key = 'a'")
        old_ids = [row[0] for row in old._db.conn.execute("SELECT id FROM events ORDER BY id")]
    with SqliteStore.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.site_id == "main"
        assert [row.id for row in store.read_since(0)] == old_ids
        assert store.workers() == {"W1": "Ana"}
        assert store.workstations() == {"S1": "Cell"}
        assert [alert.subject for alert in store.alerts(active_only=True)] == ["W1"]
        assert [site.id for site in store.sites()] == ["main"]
        assert store.insert_batch([parse_event(event(2, model_version="a"))]) == ["duplicate"]
        assert store.insert_batch([parse_event(event(4))]) == ["accepted"]
        assert store.max_event_id() > max(old_ids)
        other = store.scoped("pune")
        assert other.count_events() == 0
        assert other.insert_batch([parse_event(event(2, model_version="a"))]) == ["accepted"]
        assert other.workers() == {}
        assert store.count_events() == 4


def test_fresh_rows_take_few_statements_and_exact_statuses_when_they_fall_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's `insert_fresh_rows`: new rows go in as multi-row INSERTs, every size of
    batch cut into the statements it keeps; a batch holding a known row, or a hash that is not
    a SHA-256 digest (kept as text), goes through `insert_rows`."""
    store = SqliteStore.open(tmp_path / "fresh.db")
    row_by_row: list[int] = []
    insert_rows = store.insert_rows

    def counted(rows: list[NewEventRow]) -> list[str]:
        row_by_row.append(len(rows))
        return list(insert_rows(rows))

    monkeypatch.setattr(store, "insert_rows", counted)
    rows = [
        prepare_row(
            parse_event(event(timestamp=f"2026-03-02T10:{second // 60:02d}:{second % 60:02d}Z")), 5
        )
        for second in range(1_300)
    ]
    assert store.insert_fresh_rows(rows[:1_203]) == ["accepted"] * 1_203  # 500 500 128 64 8 2 1
    assert row_by_row == []
    assert [row.event_hash for row in store.read_since(0, 2_000)] == [
        row.event_hash for row in rows[:1_203]
    ]
    assert store.insert_fresh_rows(rows[1_200:1_210]) == ["duplicate"] * 3 + ["accepted"] * 7
    assert row_by_row == [10]
    with_nul = rows[1_210]._replace(camera_id="cam\x001")
    made_up = rows[1_211]._replace(event_hash="made-up")
    assert store.insert_fresh_rows([with_nul]) == ["accepted"]
    assert row_by_row == [10]
    assert store.insert_fresh_rows([made_up]) == ["accepted"]
    assert row_by_row == [10, 1]
    assert [row.camera_id for row in store.latest_events(2)][1] == "cam\x001"
    assert store.count_events() == 1_212
    store.close()
