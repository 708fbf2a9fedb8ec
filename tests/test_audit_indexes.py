"""The audit trail's indexes (SQLite schema 7, PostgreSQL schema 5): the console's two reads of
the trail, newest first of some kinds (a viewer's failed alert actions, each tick) and of every
kind (the event log), walk an index instead of sorting the site's whole trail; a database of the
previous schema gains them and keeps its entries."""

from __future__ import annotations

from pathlib import Path

from factory_tui.records import AuditEntry
from factory_tui.storage import PostgresStore, SqliteStore

S = 1_000_000
BASE = 1_772_445_600 * S
ENTRIES = [AuditEntry(BASE + i * S, "peer_refused", f"10.0.0.{i}:1", "x") for i in range(5)] + [
    AuditEntry(BASE + 9 * S, "action_failed", "command /x", "camera_dark W3 raised: exit 1")
]


def test_sqlite_audit_reads_walk_an_index(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    with SqliteStore.open(path, migrate_to=6) as old:
        old.add_audit(ENTRIES)
    with SqliteStore.open(path) as store:
        assert store.schema_version() == 7
        assert [e.peer for e in store.audit_entries(kinds=("action_failed",))] == ["command /x"]
        assert len(store.audit_entries()) == 6
        for kinds in (None, ("action_failed",)):
            plan = sqlite_plan(store, kinds)
            assert "TEMP B-TREE" not in plan
            assert "audit_kind_id" in plan if kinds else "audit_site_id" in plan


def sqlite_plan(store: SqliteStore, kinds: tuple[str, ...] | None) -> str:
    """SQLite's plan of the statement `audit_entries` runs (traced, then explained)."""
    statements: list[str] = []
    store._db.conn.set_trace_callback(statements.append)
    try:
        store.audit_entries(limit=20, kinds=kinds)
    finally:
        store._db.conn.set_trace_callback(None)
    (statement,) = [text for text in statements if "FROM audit" in text]
    rows = store._db.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
    return " | ".join(str(row[-1]) for row in rows)


def test_postgres_gains_the_audit_indexes(pg_url: str) -> None:
    with PostgresStore.open(pg_url, migrate_to=4) as old:
        old.add_audit(ENTRIES)
    with PostgresStore.open(pg_url) as store:
        assert store.schema_version() == 5
        assert [e.peer for e in store.audit_entries(kinds=("action_failed",))] == ["command /x"]
        assert len(store.audit_entries()) == 6
        rows = store._conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'audit' "
            "AND schemaname = current_schema()"
        ).fetchall()
        assert {"audit_kind_id", "audit_site_id"} <= {name for (name,) in rows}
