"""The events row keeps a SHA-256 hash as its 32 raw bytes (SQLite schema 6, PostgreSQL 4), and
every read gives back the same text: records, the engine's rows, dedup, and databases migrated
in place with data in them."""

from __future__ import annotations

import json
from pathlib import Path

from factory_tui.engine import Engine, Window
from factory_tui.engine.timeline import hash_key, hash_keys
from factory_tui.models import NewEventRow, parse_event, prepare_row
from factory_tui.storage import PostgresStore, SqliteStore, Store

S = 1_000_000
BASE = 1_772_445_600 * S  # 2026-03-02 10:00 UTC
OLD_COLUMNS = (
    "site_id, ts_us, worker_id, workstation_id, event_type, confidence, count, model_version, "
    "camera_id, received_us, event_hash"
)


def event_row(second: int, worker: str = "W1", kind: str = "working") -> NewEventRow:
    """A row as ingest prepares it (its hash: the SHA-256 hex digest of the event)."""
    text = json.dumps(
        {
            "timestamp": f"2026-03-02T10:{second // 60:02d}:{second % 60:02d}Z",
            "worker_id": worker,
            "workstation_id": "S1",
            "event_type": kind,
            "confidence": 0.9,
            "count": 1 if kind == "product_count" else 0,
        }
    )
    return prepare_row(parse_event(text), BASE + second * S)


def stored_types(store: SqliteStore) -> list[tuple[str, int]]:
    rows = store._db.conn.execute(
        "SELECT typeof(event_hash), length(event_hash) FROM events ORDER BY id"
    )
    return [(kind, length) for kind, length in rows]


def test_a_digest_is_stored_as_32_bytes_and_read_back_as_its_hex(tmp_path: Path) -> None:
    digest = event_row(1)
    upper = event_row(2)._replace(event_hash=event_row(2).event_hash.upper())
    hand_made = event_row(3)._replace(event_hash="hand-made")
    with SqliteStore.open(tmp_path / "f.db") as store:
        assert store.insert_rows([digest, upper, hand_made]) == ["accepted"] * 3
        # Only a lower-case digest reads back the same from its bytes; the rest stays text.
        assert stored_types(store) == [("blob", 32), ("text", 64), ("text", 9)]
        assert [row.event_hash for row in store.read_since(0)] == [
            digest.event_hash,
            upper.event_hash,
            "hand-made",
        ]
        assert [row.event_hash for row in store.iter_range()] == [
            digest.event_hash,
            upper.event_hash,
            "hand-made",
        ]
        assert store.latest_events(1)[0].event_hash == "hand-made"
        assert store.insert_rows([hand_made, upper, digest]) == ["duplicate"] * 3
        assert store.count_events() == 3


def test_the_engine_keys_a_digest_alike_as_bytes_or_as_text() -> None:
    texts = [event_row(n).event_hash for n in range(5)]
    digests = [bytes.fromhex(text) for text in texts]
    assert hash_keys(digests) == hash_keys(texts) == [hash_key(text) for text in texts]
    assert hash_keys([digests[0], texts[1]]) == hash_keys(texts[:2])  # mixed: one by one
    assert hash_key(b"short") != hash_key(b"other")  # not a digest: still a stable key


def test_migration_6_from_schema_5_with_data(tmp_path: Path) -> None:
    """Schema-5 rows (hashes as hex text) migrate in place: the same records and ids, duplicates
    still recognised, an engine's figures unchanged, and ids never reused."""
    path = tmp_path / "v5.db"
    rows = [event_row(n, "W1" if n % 3 else "W2", ("working", "idle")[n % 2]) for n in range(9)]
    rows.append(event_row(9)._replace(event_hash="hand-made"))
    with SqliteStore.open(path, migrate_to=5) as old:
        with old._db.conn:
            old._db.conn.executemany(
                f"INSERT INTO events ({OLD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [("main", *row) for row in rows],
            )
            old._db.conn.execute("DELETE FROM events WHERE id = 10")  # retention took the last
        before = old.read_since(0)
        engine_before = Engine(max_gap_s=60)
        engine_before.apply(before)
    with SqliteStore.open(path, migrate_to=6) as store:
        assert store.schema_version() == 6
        assert stored_types(store) == [("blob", 32)] * 9
        assert store.read_since(0) == before
        engine = Engine(max_gap_s=60)
        engine.apply_tuples(store.engine_rows(0, 2**62))
        window = Window(BASE, BASE + 60 * S)
        assert engine.snapshot(window, window.to_us) == engine_before.snapshot(window, window.to_us)
        assert store.insert_rows([event_row(30)]) == ["accepted"]
        assert store.max_event_id() == 11  # after the deleted 10: ids never go back
        assert store.insert_rows(rows[:3]) == ["duplicate"] * 3
        indexes = {index.name: index for index in store._db["events"].indexes}
        assert indexes["events_hash"].unique
        assert {"events_worker_ts", "events_ts", "events_site_id"} <= set(indexes)


def test_every_kind_of_hash_reads_back_as_written(any_store: Store) -> None:
    """Digests, upper-case hex, and hand-made text of any length (32 characters too, the
    length of a digest's bytes) come back as written, from records and engine rows alike, and
    each is still a duplicate of itself."""
    hashes = [event_row(0).event_hash, event_row(1).event_hash.upper(), "x" * 32, "", "é-1"]
    rows = [event_row(n)._replace(event_hash=text) for n, text in enumerate(hashes)]
    assert any_store.insert_rows(rows) == ["accepted"] * 5
    assert [row.event_hash for row in any_store.read_since(0)] == hashes
    engine_hashes = {row[2] for row in any_store.engine_rows(0, 2**62)}
    as_text = {value.hex() if isinstance(value, bytes) else value for value in engine_hashes}
    assert as_text == set(hashes)
    assert any_store.insert_rows(rows[::-1]) == ["duplicate"] * 5
    assert any_store.insert_fresh_rows(rows[:2]) == ["duplicate"] * 2


def test_postgres_migration_4_from_schema_3_with_data(pg_url: str) -> None:
    rows = [event_row(n, "W1" if n % 3 else "W2") for n in range(6)]
    rows.append(event_row(6)._replace(event_hash="hand-made"))
    with PostgresStore.open(pg_url, migrate_to=3) as old:
        assert old.insert_rows(rows) == ["accepted"] * 7
        before = old.read_since(0)
        assert [row.event_hash for row in before] == [row.event_hash for row in rows]
    with PostgresStore.open(pg_url, migrate_to=4) as store:
        assert store.schema_version() == 4
        assert store.read_since(0) == before
        assert store.insert_rows(rows[:2] + [event_row(20)]) == ["duplicate"] * 2 + ["accepted"]
        lengths = store._conn.execute(
            "SELECT length(event_hash) FROM events ORDER BY id"
        ).fetchall()
        assert [length for (length,) in lengths] == [32] * 6 + [33 + 9, 32]
