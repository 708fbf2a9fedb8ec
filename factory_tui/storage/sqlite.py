"""The SQLite backend: the embedded default, and every SQL statement and PRAGMA it needs.

WAL mode, a versioned schema migrated in place, batched deduplicating inserts, and cursor reads
that never keep a read transaction open (a long-lived WAL reader blocks checkpoints).
"""

from __future__ import annotations

import functools
import operator
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import sqlite_utils

from factory_tui.models import (
    EngineRow,
    EventRecord,
    NewEventRow,
    RosterEntry,
)
from factory_tui.records import AlertRecord, AuditEntry, AuditRecord, ModelSummary, SiteRecord
from factory_tui.storage.base import (
    DEFAULT_SITE,
    READ_BATCH,
    AlertCondition,
    Durability,
    InsertStatus,
    ReadOnlyError,
    RowError,
    StoreError,
    UnitsBucket,
    schema_problem,
)
from factory_tui.storage.common import (
    BackendBase,
    alert_changes,
    description_text,
    model_firsts,
    owner_from,
    owner_rows,
    site_records,
    stored_hash,
)

BUSY_TIMEOUT_MS: Final = 5_000

_EVENT_COLUMNS: Final = (
    "id, ts_us, worker_id, workstation_id, event_type, confidence, count, "
    "model_version, camera_id, received_us, event_hash"
)
"""The columns of `EventRecord`, in its order."""
_HASH_TEXT: Final = (
    "CASE typeof(event_hash) WHEN 'blob' THEN lower(hex(event_hash)) ELSE event_hash END"
)
"""The hash as text: a stored digest (32 bytes, see `stored_hash`) back to its 64 hex digits."""
_RECORD_COLUMNS: Final = _EVENT_COLUMNS.replace("event_hash", _HASH_TEXT)
"""What makes an `EventRecord`, in its order."""
_ENGINE_COLUMNS: Final = (
    "worker_id, ts_us, event_hash, event_type, workstation_id, count, confidence, id"
)
"""The columns of `EngineRow`, in its order (the hash as stored: the engine reads either form)."""
_INSERT_EVENT: Final = (
    "INSERT OR IGNORE INTO events (ts_us, worker_id, workstation_id, event_type, confidence, "
    "count, model_version, camera_id, received_us, event_hash, site_id) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
FRESH_CHUNK_ROWS: Final = 500
"""Rows per multi-row INSERT of `insert_fresh_rows` (10 bound values each: under SQLite's
default limit of 32,766, and measured cheaper per row than 100, 250 or 2,000)."""
_FRESH_SIZES: Final = (FRESH_CHUNK_ROWS, 256, 128, 64, 32, 16, 8, 4, 2, 1)
"""The statement sizes a batch is cut into, so a handful of prepared statements serve every
batch (the driver's statement cache keeps them)."""


@functools.cache
def _insert_values(rows: int) -> str:
    """INSERT OR IGNORE of `rows` events in one statement: ?1 their hashes as 32 raw bytes
    each, in order, ?2 the site, then each `NewEventRow`'s ten values in order (its hex hash
    bound but unused: ?1 holds it; the last row's is left off, as no placeholder follows it)."""
    values = ",".join(
        "("
        + ",".join(f"?{3 + 10 * row + column}" for column in range(9))
        + f",substr(?1,{32 * row + 1},32),?2)"
        for row in range(rows)
    )
    return (
        "INSERT OR IGNORE INTO events (ts_us, worker_id, workstation_id, event_type, confidence, "
        f"count, model_version, camera_id, received_us, event_hash, site_id) VALUES {values}"
    )


_UPSERT_MODEL: Final = (
    "INSERT INTO models (site_id, model_key, first_ts_us) VALUES (?, ?, ?) "
    "ON CONFLICT (site_id, model_key) "
    "DO UPDATE SET first_ts_us = min(first_ts_us, excluded.first_ts_us)"
)
_NEVER: Final = 2**63 - 1
_HASH_OF: Final = operator.itemgetter(9)
"""A `NewEventRow`'s event_hash."""
FETCH_ROWS: Final = 4_096
"""Rows per fetch of a streamed bulk read."""
_WIDE_READ: Final = 0.3
"""Above this share of the stored time span, a table scan beats the timestamp index."""
# The bulk writer's page cache (KiB): the hash index's pages are touched at random.
WRITER_CACHE_KIB: Final = 32 << 10
# Copying the WAL into the database file (checkpointing) is left to `checkpoint`, called from a
# thread of its own beside the next commit. The writer still checkpoints itself once the WAL
# passes this many pages, which bounds the WAL should the checkpointer fall behind.
WAL_BACKSTOP_PAGES: Final = 8_192


# Errors that depend on a row's values (not on the database), e.g. an integer SQLite cannot hold.
_ROW_ERRORS: Final = (
    OverflowError,
    UnicodeEncodeError,
    sqlite3.InterfaceError,
    sqlite3.IntegrityError,
)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _translate_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """The driver's errors leave the backend as `StoreError` (bad rows as `RowError`), so
    callers handle one kind of error whatever the backend."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except _ROW_ERRORS as error:
            raise RowError(str(error)) from error
        except sqlite3.Error as error:
            raise StoreError(f"database error: {error}") from error

    return wrapper


def _fetched(cursor: sqlite3.Cursor, size: int) -> Iterator[list[Any]]:
    """A cursor's rows in lists of `size`, with the driver's errors translated."""
    try:
        while rows := cursor.fetchmany(size):
            yield rows
    except sqlite3.Error as error:
        raise StoreError(f"database error: {error}") from error


# --- schema migrations: each runs once, in order, inside one transaction ----------------------


def _migration_1(db: sqlite_utils.Database) -> None:
    """Roster tables and the event log."""
    db.execute("CREATE TABLE workers (id TEXT PRIMARY KEY, name TEXT NOT NULL)")
    db.execute("CREATE TABLE workstations (id TEXT PRIMARY KEY, name TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ts_us INTEGER NOT NULL,
            worker_id TEXT NOT NULL,
            workstation_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            confidence REAL NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            model_version TEXT,
            camera_id TEXT,
            received_us INTEGER NOT NULL,
            event_hash TEXT NOT NULL UNIQUE
        )"""
    )
    db.execute("CREATE INDEX events_worker_ts ON events (worker_id, ts_us)")


def _migration_2(db: sqlite_utils.Database) -> None:
    """Time index for window reads and exports; the alerts table."""
    db.execute("CREATE INDEX events_ts ON events (ts_us)")
    db.execute(
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            details TEXT NOT NULL,
            started_us INTEGER NOT NULL,
            cleared_us INTEGER
        )"""
    )
    db.execute("CREATE INDEX alerts_open ON alerts (kind, subject) WHERE cleared_us IS NULL")


def _migration_3(db: sqlite_utils.Database) -> None:
    """Each model_version's first event time, kept by the insert path, so the console's drift
    baselines do not need a scan of the whole event table at start-up; alerts by start time
    for the alerts view's history."""
    db.execute("CREATE TABLE models (model_key TEXT PRIMARY KEY, first_ts_us INTEGER NOT NULL)")
    db.execute(
        "INSERT INTO models SELECT coalesce(model_version, ''), min(ts_us) FROM events GROUP BY 1"
    )
    db.execute("CREATE INDEX alerts_started ON alerts (started_us)")


def _migration_4(db: sqlite_utils.Database) -> None:
    """Sites: every event, roster row, alert and model belongs to a site (existing data to
    `main`); an event is unique per (site, hash); ids never go back (AUTOINCREMENT), so id
    cursors stay valid whatever retention deletes; forward cursors."""
    db.execute(
        """CREATE TABLE sites (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '{}',
            updated_us INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute(
        """CREATE TABLE events_4 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            site_id TEXT NOT NULL,
            ts_us INTEGER NOT NULL,
            worker_id TEXT NOT NULL,
            workstation_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            confidence REAL NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            model_version TEXT,
            camera_id TEXT,
            received_us INTEGER NOT NULL,
            event_hash TEXT NOT NULL,
            UNIQUE (site_id, event_hash)
        )"""
    )
    db.execute(
        f"INSERT INTO events_4 (site_id, {_EVENT_COLUMNS}) "
        f"SELECT '{DEFAULT_SITE}', {_EVENT_COLUMNS} FROM events ORDER BY id"
    )
    db.execute("DROP TABLE events")
    db.execute("ALTER TABLE events_4 RENAME TO events")
    db.execute("CREATE INDEX events_worker_ts ON events (site_id, worker_id, ts_us)")
    db.execute("CREATE INDEX events_ts ON events (site_id, ts_us)")
    db.execute("CREATE INDEX events_site_id ON events (site_id, id)")
    for table in ("workers", "workstations"):
        db.execute(
            f"CREATE TABLE {table}_4 (site_id TEXT NOT NULL, id TEXT NOT NULL, "
            "name TEXT NOT NULL, PRIMARY KEY (site_id, id))"
        )
        db.execute(f"INSERT INTO {table}_4 SELECT '{DEFAULT_SITE}', id, name FROM {table}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_4 RENAME TO {table}")
    db.execute(f"ALTER TABLE alerts ADD COLUMN site_id TEXT NOT NULL DEFAULT '{DEFAULT_SITE}'")
    db.execute("DROP INDEX alerts_open")
    db.execute("DROP INDEX alerts_started")
    db.execute(
        "CREATE INDEX alerts_open ON alerts (site_id, kind, subject) WHERE cleared_us IS NULL"
    )
    db.execute("CREATE INDEX alerts_started ON alerts (site_id, started_us)")
    db.execute(
        "CREATE TABLE models_4 (site_id TEXT NOT NULL, model_key TEXT NOT NULL, "
        "first_ts_us INTEGER NOT NULL, PRIMARY KEY (site_id, model_key))"
    )
    db.execute(f"INSERT INTO models_4 SELECT '{DEFAULT_SITE}', model_key, first_ts_us FROM models")
    db.execute("DROP TABLE models")
    db.execute("ALTER TABLE models_4 RENAME TO models")
    db.execute(
        "CREATE TABLE forward_cursors (target TEXT PRIMARY KEY, last_id INTEGER NOT NULL, "
        "updated_us INTEGER NOT NULL)"
    )
    if (
        db.execute("SELECT count(*) FROM events").fetchone()[0]
        or db.execute("SELECT count(*) FROM workers").fetchone()[0]
    ):
        db.execute("INSERT INTO sites (id, name) VALUES (?, ?)", [DEFAULT_SITE, DEFAULT_SITE])


def _migration_5(db: sqlite_utils.Database) -> None:
    """The audit trail: connections, refusals, auth failures, per site."""
    db.execute(
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            site_id TEXT NOT NULL,
            at_us INTEGER NOT NULL,
            kind TEXT NOT NULL,
            peer TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX audit_at ON audit (site_id, at_us)")


def _migration_6(db: sqlite_utils.Database) -> None:
    """Hashes as 32 raw bytes (`stored_hash`) instead of 64 hex digits: every event's row and
    unique-index entry gets 32 bytes shorter, so inserts and scans touch fewer pages. The table
    is copied in id order and its indexes built afterwards (faster than rewriting each row in
    place); ids never go back (the AUTOINCREMENT counter is carried over)."""
    db.conn.create_function("stored_hash", 1, stored_hash, deterministic=True)
    counter = "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'"
    last_id = db.execute(counter).fetchone()[0]
    db.execute(
        """CREATE TABLE events_6 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            site_id TEXT NOT NULL,
            ts_us INTEGER NOT NULL,
            worker_id TEXT NOT NULL,
            workstation_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            confidence REAL NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            model_version TEXT,
            camera_id TEXT,
            received_us INTEGER NOT NULL,
            event_hash BLOB NOT NULL
        )"""
    )
    converted = _EVENT_COLUMNS.replace("event_hash", "stored_hash(event_hash)")
    db.execute(
        f"INSERT INTO events_6 (site_id, {_EVENT_COLUMNS}) "
        f"SELECT site_id, {converted} FROM events ORDER BY id"
    )
    db.execute("DROP TABLE events")
    db.execute("ALTER TABLE events_6 RENAME TO events")
    last_id = max(last_id, db.execute(counter).fetchone()[0])
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")
    db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", [last_id])
    db.execute("CREATE UNIQUE INDEX events_hash ON events (site_id, event_hash)")
    db.execute("CREATE INDEX events_worker_ts ON events (site_id, worker_id, ts_us)")
    db.execute("CREATE INDEX events_ts ON events (site_id, ts_us)")
    db.execute("CREATE INDEX events_site_id ON events (site_id, id)")


def _migration_7(db: sqlite_utils.Database) -> None:
    """Audit indexes for the console's reads, newest first: of some kinds (a viewer's failed
    alert actions, each tick) and of every kind (the event log). Without them both reads sort
    the site's whole trail."""
    db.execute("CREATE INDEX audit_kind_id ON audit (site_id, kind, id)")
    db.execute("CREATE INDEX audit_site_id ON audit (site_id, id)")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SqliteStore(BackendBase):
    """A handle on one factory database file (implements `storage.Store`).

    Not shared between threads: open one per thread.
    """

    def __init__(
        self, db: sqlite_utils.Database, path: Path, *, read_only: bool, site_id: str
    ) -> None:
        self._db = db
        self.path = path
        self.location = str(path)
        self.read_only = read_only
        self.site_id = site_id
        self._keeps_models = False
        """Inserts keep the `models` table (schema 3 on)."""

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        durability: Durability = "crash",
        read_only: bool = False,
        bulk_writer: bool = False,
        site: str = DEFAULT_SITE,
        migrate_to: int = SCHEMA_VERSION,
    ) -> SqliteStore:
        """Open (creating, migrating), or with `read_only` attach to an existing file.

        `bulk_writer` tunes the connection for the listener's batches: a larger page cache,
        and a WAL left to grow to `WAL_BACKSTOP_PAGES` between `checkpoint` calls.
        """
        path = Path(path)
        try:
            if read_only:
                conn = cls._connect_read_only(path)
            else:
                if path.parent and not path.parent.exists():
                    raise StoreError(
                        f"cannot create database {path}: folder {path.parent} does not exist"
                    )
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Reads the file's header: a file that is not a database fails here, named below
            # (a read-only open's next read would say only "database error: ...").
            conn.execute("PRAGMA schema_version").fetchone()
            store = cls(sqlite_utils.Database(conn), path, read_only=read_only, site_id=site)
            if read_only:
                store._check_version(read_only=True)
            else:
                store._configure_writer(durability)
                store._migrate(migrate_to)
                if bulk_writer:
                    conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
                    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_BACKSTOP_PAGES}")
                store._keeps_models = store.schema_version() >= 3
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open database {path}: {error}") from None
        return store

    @staticmethod
    def _connect_read_only(path: Path) -> sqlite3.Connection:
        if not path.is_file():
            raise StoreError(
                f"database {path} does not exist (start `factory-tui` or `serve` first)"
            )
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)

    def _configure_writer(self, durability: Durability) -> None:
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"database {self.path} cannot use WAL mode (journal_mode is {mode})")
        synchronous = "FULL" if durability == "power" else "NORMAL"
        self._db.execute(f"PRAGMA synchronous = {synchronous}")

    @_translate_errors
    def schema_version(self) -> int:
        """The schema version recorded in the file (0 for a new, empty file)."""
        if not self._db["meta"].exists():
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _check_version(self, *, read_only: bool) -> int:
        """The schema version found, after refusing one this factory-tui cannot use."""
        found = self.schema_version()
        problem = schema_problem(str(self.path), found, SCHEMA_VERSION, read_only=read_only)
        if problem is not None:
            raise StoreError(problem)
        return found

    def _migrate(self, target: int) -> None:
        version = self._check_version(read_only=False)
        for number in range(version + 1, target + 1):
            with self._transaction():
                if number == 1:
                    self._db.execute(
                        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"
                    )
                MIGRATIONS[number - 1](self._db)
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    [str(number)],
                )

    def _transaction(self) -> sqlite3.Connection:
        # sqlite3's connection context manager commits or rolls back; BEGIN IMMEDIATE takes the
        # write lock up front so a busy writer waits here rather than failing mid-batch.
        self._require_writable()
        self._db.conn.execute("BEGIN IMMEDIATE")
        return self._db.conn

    def _require_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{self.path} is open read-only")

    def close(self) -> None:
        """Close the connection (a `scoped` copy shares it: close the store it came from)."""
        self._db.conn.close()

    # --- the process that owns the listener ---------------------------------------------------

    @_translate_errors
    def set_owner(self, pid: int, host: str, port: int) -> None:
        """Record which process listens for this database, so a second console can find it."""
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                owner_rows(pid, host, port),
            )

    @_translate_errors
    def owner(self) -> tuple[int, str, int] | None:
        """(pid, host, port) of the process that last recorded itself as the listener, if any."""
        rows = self._db.execute(
            "SELECT key, value FROM meta WHERE key IN ('owner_pid', 'owner_host', 'owner_port')"
        )
        return owner_from(dict(rows.fetchall()))

    # --- roster -------------------------------------------------------------------------------

    @_translate_errors
    def upsert_roster(
        self, workers: Iterable[RosterEntry], workstations: Iterable[RosterEntry]
    ) -> None:
        """Insert or rename roster rows (from config on start); rows not named are kept."""
        with self._transaction():
            for table, entries in (("workers", workers), ("workstations", workstations)):
                self._db.conn.executemany(
                    f"INSERT INTO {table} (site_id, id, name) VALUES (?, ?, ?) "
                    "ON CONFLICT(site_id, id) DO UPDATE SET name = excluded.name",
                    [(self.site_id, entry.id, entry.name) for entry in entries],
                )

    @_translate_errors
    def register_ids(self, worker_ids: Iterable[str], workstation_ids: Iterable[str]) -> None:
        """Add ids not yet in the roster, named by their id (auto-registration)."""
        with self._transaction():
            for table, ids in (("workers", worker_ids), ("workstations", workstation_ids)):
                self._db.conn.executemany(
                    f"INSERT OR IGNORE INTO {table} (site_id, id, name) VALUES (?, ?, ?)",
                    [(self.site_id, item, item) for item in ids],
                )

    @_translate_errors
    def workers(self) -> dict[str, str]:
        """Worker id -> name, in id order."""
        rows = self._db.execute(
            "SELECT id, name FROM workers WHERE site_id = ? ORDER BY id", [self.site_id]
        )
        return dict(rows.fetchall())

    @_translate_errors
    def workstations(self) -> dict[str, str]:
        """Workstation id -> name, in id order."""
        rows = self._db.execute(
            "SELECT id, name FROM workstations WHERE site_id = ? ORDER BY id", [self.site_id]
        )
        return dict(rows.fetchall())

    # --- events -------------------------------------------------------------------------------

    @_translate_errors
    def insert_rows(self, rows: Sequence[NewEventRow]) -> list[InsertStatus]:
        """Store prepared rows in one transaction (INSERT OR IGNORE on the hash)."""
        statuses: list[InsertStatus] = []
        append = statuses.append
        site = self.site_id
        with self._transaction() as conn:
            cursor = conn.cursor()
            execute = cursor.execute
            for row in rows:
                execute(_INSERT_EVENT, (*row[:9], stored_hash(row[9]), site))
                append("accepted" if cursor.rowcount == 1 else "duplicate")
            conn.executemany(
                _UPSERT_MODEL,
                [(self.site_id, key, first) for key, first in model_firsts(rows).items()],
            )
        return statuses

    @_translate_errors
    def insert_fresh_rows(self, rows: Sequence[NewEventRow]) -> list[InsertStatus]:
        """Rows that are most likely all new (the listener's batches, a forwarded backlog):
        multi-row INSERTs of `FRESH_CHUNK_ROWS` (`_insert_values`), which spare SQLite a
        statement step per row and the interpreter a call per row (about 5 us a row against
        8 here). When fewer rows are stored than sent (one was there already), the transaction
        rolls back and the batch goes through `insert_rows` for exact statuses; a hash that is
        not a 64-digit lowercase SHA-256 (`stored_hash` keeps those as text) sends the batch
        there at once."""
        if not rows:
            return []
        hexes = "".join(map(_HASH_OF, rows))
        try:
            digests = bytes.fromhex(hexes)
        except (ValueError, TypeError):
            return self.insert_rows(rows)
        if len(digests) != 32 * len(rows) or digests.hex() != hexes:
            return self.insert_rows(rows)
        site = self.site_id
        stored = start = 0
        with self._transaction() as conn:
            for size in _FRESH_SIZES:
                while len(rows) - start >= size:
                    chunk = rows[start : start + size]
                    values: list[Any] = [digests[32 * start : 32 * (start + size)], site]
                    values.extend(chain.from_iterable(chunk))
                    values.pop()  # the last row's hex hash: no placeholder follows it
                    stored += conn.execute(_insert_values(size), values).rowcount
                    start += size
            if stored == len(rows):
                conn.executemany(
                    _UPSERT_MODEL,
                    [(site, key, first) for key, first in model_firsts(rows).items()],
                )
            else:
                conn.rollback()
        return ["accepted"] * len(rows) if stored == len(rows) else self.insert_rows(rows)

    @_translate_errors
    def model_first_seen(self) -> list[tuple[str | None, int]]:
        """Each model_version stored (None: events that named none) and its first timestamp."""
        rows = self._db.execute(
            "SELECT model_key, first_ts_us FROM models WHERE site_id = ? ORDER BY 1",
            [self.site_id],
        ).fetchall()
        return [(key or None, int(first)) for key, first in rows]

    @_translate_errors
    def read_since(self, cursor: int, limit: int = READ_BATCH) -> list[EventRecord]:
        """Rows with id > cursor, in id order, at most `limit` (the engine's tick read)."""
        rows = self._db.conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM events WHERE site_id = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            (self.site_id, cursor, limit),
        ).fetchall()
        return [EventRecord(*row) for row in rows]

    @_translate_errors
    def _range_batch(self, after: tuple[int, int], high: int, batch: int) -> list[EventRecord]:
        """The next `batch` rows after (ts_us, id) `after` and before `high`."""
        rows = self._db.conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM events WHERE site_id = ? AND ts_us < ? AND "
            "(ts_us > ? OR (ts_us = ? AND id > ?)) ORDER BY ts_us, id LIMIT ?",
            (self.site_id, high, after[0], after[0], after[1], batch),
        ).fetchall()
        return [EventRecord(*row) for row in rows]

    @_translate_errors
    def latest_events(self, limit: int = 50, worker_id: str | None = None) -> list[EventRecord]:
        """The newest stored rows (by id), newest first; optionally of one worker."""
        if worker_id is None:
            query = (
                f"SELECT {_RECORD_COLUMNS} FROM events WHERE site_id = ? ORDER BY id DESC LIMIT ?"
            )
            params: tuple[Any, ...] = (self.site_id, limit)
        else:
            query = (
                f"SELECT {_RECORD_COLUMNS} FROM events WHERE site_id = ? AND worker_id = ? "
                "ORDER BY ts_us DESC, id DESC LIMIT ?"
            )
            params = (self.site_id, worker_id, limit)
        return [EventRecord(*row) for row in self._db.conn.execute(query, params).fetchall()]

    @_translate_errors
    def model_summary(
        self, from_us: int, to_us: int, max_id: int | None = None
    ) -> list[ModelSummary]:
        """Per model_version: events, mean and lowest confidence, units in [from_us, to_us)
        (with `max_id`: of the rows with id <= max_id, what a cursor has read)."""
        rows = self._db.execute(
            "SELECT model_version, count(*), avg(confidence), min(confidence), "
            "coalesce(sum(CASE WHEN event_type = 'product_count' THEN count END), 0) "
            "FROM events WHERE site_id = ? AND ts_us >= ? AND ts_us < ?"
            + ("" if max_id is None else " AND id <= ?")
            + " GROUP BY model_version ORDER BY model_version",
            [self.site_id, from_us, to_us, *([] if max_id is None else [max_id])],
        ).fetchall()
        return [ModelSummary(*row) for row in rows]

    @_translate_errors
    def count_events(self) -> int:
        """Number of stored events."""
        query = "SELECT count(*) FROM events WHERE site_id = ?"
        return int(self._db.execute(query, [self.site_id]).fetchone()[0])

    @_translate_errors
    def max_event_id(self) -> int:
        """Id of the newest stored row (0 when empty)."""
        query = "SELECT coalesce(max(id), 0) FROM events WHERE site_id = ?"
        return int(self._db.execute(query, [self.site_id]).fetchone()[0])

    @_translate_errors
    def count_since(self, cursor: int) -> int:
        """Number of stored rows with id > cursor (a forward backlog)."""
        query = "SELECT count(*) FROM events WHERE site_id = ? AND id > ?"
        return int(self._db.execute(query, [self.site_id, cursor]).fetchone()[0])

    @_translate_errors
    def time_span(self) -> tuple[int, int] | None:
        """The oldest and newest event timestamps (None when there are no events)."""
        # Two subqueries: each is one seek on the (site_id, ts_us) index; min and max in one
        # aggregate would scan the site's whole index.
        query = (
            "SELECT (SELECT min(ts_us) FROM events WHERE site_id = ?1), "
            "(SELECT max(ts_us) FROM events WHERE site_id = ?1)"
        )
        first, last = self._db.conn.execute(query, (self.site_id,)).fetchone()
        return None if first is None else (int(first), int(last))

    @_translate_errors
    def checkpoint(self) -> None:
        """A passive WAL checkpoint: copies what is committed without waiting on the writer."""
        self._db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    # --- the engine's warm start --------------------------------------------------------------

    @_translate_errors
    def engine_rows(self, from_us: int, to_us: int) -> Iterable[EngineRow]:
        """Every event with from_us <= ts_us <= to_us as the engine reads it (plain tuples in
        `EngineRow` order, streamed by one statement: a one-off read, not a tick's)."""
        span = self.time_span()
        if span is None:
            return iter(())
        first, last = span
        wide = (min(to_us, last) - max(from_us, first)) / max(last - first, 1) > _WIDE_READ
        table = "events NOT INDEXED" if wide else "events"
        cursor = self._db.conn.execute(
            f"SELECT {_ENGINE_COLUMNS} FROM {table} "
            "WHERE site_id = ? AND ts_us >= ? AND ts_us <= ?",
            (self.site_id, from_us, to_us),
        )
        # Fetched a few thousand rows at a time and chained: the rows pass to the engine's
        # chunking without a Python generator step per row.
        return chain.from_iterable(_fetched(cursor, FETCH_ROWS))

    @_translate_errors
    def worker_ids(self) -> list[str]:
        """Distinct worker ids by skipping along the (worker_id, ts_us) index: one seek each."""
        rows = self._db.conn.execute(
            "WITH RECURSIVE w(id) AS (SELECT min(worker_id) FROM events WHERE site_id = ?1 "
            "UNION ALL SELECT (SELECT min(worker_id) FROM events WHERE site_id = ?1 AND "
            "worker_id > w.id) FROM w WHERE w.id IS NOT NULL) "
            "SELECT id FROM w WHERE id IS NOT NULL",
            (self.site_id,),
        )
        return [worker_id for (worker_id,) in rows]

    @_translate_errors
    def engine_rows_before(
        self, worker_id: str, before_us: int, *, state_only: bool
    ) -> list[EngineRow]:
        """Every event of the worker at the instant of its latest (state) event before
        `before_us` (all of that instant: the engine orders ties by hash)."""
        condition = "AND event_type != 'product_count'" if state_only else ""
        conn = self._db.conn
        # Walks the (worker_id, ts_us) index backwards and stops at the first match.
        found = conn.execute(
            f"SELECT ts_us FROM events WHERE site_id = ? AND worker_id = ? AND ts_us < ? "
            f"{condition} ORDER BY ts_us DESC LIMIT 1",
            (self.site_id, worker_id, before_us),
        ).fetchone()
        if found is None:
            return []
        rows: list[Any] = conn.execute(
            f"SELECT {_ENGINE_COLUMNS} FROM events "
            "WHERE site_id = ? AND worker_id = ? AND ts_us = ?",
            (self.site_id, worker_id, found[0]),
        ).fetchall()
        return rows

    @_translate_errors
    def stations_before(self, before_us: int) -> list[str]:
        """Workstation ids seen in events older than `before_us` (one table scan, skipped when
        no event is that old)."""
        span = self.time_span()
        if span is None or span[0] >= before_us:
            return []
        rows = self._db.conn.execute(
            "SELECT DISTINCT workstation_id FROM events NOT INDEXED "
            "WHERE site_id = ? AND ts_us < ?",
            (self.site_id, before_us),
        )
        return [station_id for (station_id,) in rows]

    # --- what the views read ------------------------------------------------------------------

    @_translate_errors
    def units_by_bucket(
        self, worker_id: str, from_us: int, to_us: int, bucket_us: int, max_id: int
    ) -> list[UnitsBucket]:
        """The worker's units in [from_us, to_us) per station and bucket, rows id <= max_id."""
        rows = self._db.conn.execute(
            "SELECT workstation_id, (ts_us - ?) / ?, sum(count), min(ts_us), max(ts_us) "
            "FROM events WHERE site_id = ? AND worker_id = ? AND event_type = 'product_count' "
            "AND ts_us >= ? AND ts_us < ? AND id <= ? GROUP BY 1, 2",
            (from_us, bucket_us, self.site_id, worker_id, from_us, to_us, max_id),
        ).fetchall()
        return [UnitsBucket(*row) for row in rows]

    # --- alerts -------------------------------------------------------------------------------

    @_translate_errors
    def sync_alerts(self, conditions: Iterable[AlertCondition], at_us: int) -> None:
        """Make the active alerts match the conditions holding at `at_us`.

        Each condition is (kind, subject, details, started_us). A new condition raises an alert
        that started at its `started_us`, a held one keeps its start and refreshes its details,
        an active alert whose condition is gone is cleared at `at_us` — all in one transaction.
        """
        with self._transaction() as conn:
            active = conn.execute(
                "SELECT id, kind, subject, details FROM alerts "
                "WHERE site_id = ? AND cleared_us IS NULL",
                (self.site_id,),
            ).fetchall()
            changes = alert_changes(active, conditions)
            conn.executemany(
                "UPDATE alerts SET cleared_us = ? WHERE id = ?",
                [(at_us, ident) for ident in changes.cleared],
            )
            conn.executemany("UPDATE alerts SET details = ? WHERE id = ?", changes.details)
            conn.executemany(
                "INSERT INTO alerts (site_id, kind, subject, details, started_us) "
                "VALUES (?, ?, ?, ?, ?)",
                [(self.site_id, *alert) for alert in changes.raised],
            )

    @_translate_errors
    def alerts(self, active_only: bool = False, limit: int = 500) -> list[AlertRecord]:
        """Alerts, newest first."""
        active = "AND cleared_us IS NULL" if active_only else ""
        rows = self._db.execute(
            "SELECT id, kind, subject, details, started_us, cleared_us FROM alerts "
            f"WHERE site_id = ? {active} ORDER BY started_us DESC, id DESC LIMIT ?",
            [self.site_id, limit],
        ).fetchall()
        return [AlertRecord(*row) for row in rows]

    @_translate_errors
    def alerts_raised(self, from_us: int, to_us: int) -> list[AlertRecord]:
        """Alerts raised in [from_us, to_us), oldest first (the alerts_started index)."""
        rows = self._db.execute(
            "SELECT id, kind, subject, details, started_us, cleared_us FROM alerts "
            "WHERE site_id = ? AND started_us >= ? AND started_us < ? ORDER BY started_us, id",
            [self.site_id, from_us, to_us],
        ).fetchall()
        return [AlertRecord(*row) for row in rows]

    # --- sites and forwarding -----------------------------------------------------------------

    @_translate_errors
    def sites(self) -> list[SiteRecord]:
        """Every site described in the database, in id order."""
        rows = self._db.execute(
            "SELECT id, name, description, updated_us FROM sites ORDER BY id"
        ).fetchall()
        return site_records(rows)

    @_translate_errors
    def describe_site(self, name: str, description: Mapping[str, Any], at_us: int) -> None:
        """Record this site's name and description (time zone, shifts, max_gap_s, ...)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO sites (id, name, description, updated_us) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                "description = excluded.description, updated_us = excluded.updated_us",
                (self.site_id, name, description_text(description), at_us),
            )

    @_translate_errors
    def forward_cursor(self, target: str) -> int:
        """Id of the last event of this database known to be committed at `target` (0: none)."""
        row = self._db.execute(
            "SELECT last_id FROM forward_cursors WHERE target = ?", [target]
        ).fetchone()
        return int(row[0]) if row else 0

    @_translate_errors
    def set_forward_cursor(self, target: str, last_id: int, at_us: int) -> None:
        """Record that every event up to `last_id` is committed at `target`."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO forward_cursors (target, last_id, updated_us) VALUES (?, ?, ?) "
                "ON CONFLICT (target) DO UPDATE SET last_id = excluded.last_id, "
                "updated_us = excluded.updated_us",
                (target, last_id, at_us),
            )

    @_translate_errors
    def delete_events_before(self, before_us: int, *, max_id: int, limit: int) -> int:
        """Delete up to `limit` of this site's events older than `before_us` with id <= max_id
        (retention; never an event not yet forwarded); returns how many were deleted."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE site_id = ? "
                "AND ts_us < ? AND id <= ? ORDER BY ts_us LIMIT ?)",
                (self.site_id, before_us, max_id, limit),
            )
            return cursor.rowcount

    # --- the audit trail ----------------------------------------------------------------------

    @_translate_errors
    def add_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to this site's audit trail, in one transaction."""
        if not entries:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO audit (site_id, at_us, kind, peer, detail) VALUES (?, ?, ?, ?, ?)",
                [(self.site_id, *entry) for entry in entries],
            )

    @_translate_errors
    def audit_entries(
        self, limit: int = 200, *, kinds: Collection[str] | None = None
    ) -> list[AuditRecord]:
        """This site's newest audit entries, newest first (with `kinds`: only those kinds)."""
        if kinds is None:
            rows = self._db.execute(
                "SELECT id, at_us, kind, peer, detail FROM audit WHERE site_id = ? "
                "ORDER BY id DESC LIMIT ?",
                [self.site_id, limit],
            ).fetchall()
        elif not kinds:
            return []
        else:
            rows = self._db.execute(
                "SELECT id, at_us, kind, peer, detail FROM audit WHERE site_id = ? "
                f"AND kind IN ({', '.join('?' * len(kinds))}) ORDER BY id DESC LIMIT ?",
                [self.site_id, *kinds, limit],
            ).fetchall()
        return [AuditRecord(*row) for row in rows]

    @_translate_errors
    def delete_audit_before(self, before_us: int, *, limit: int) -> int:
        """Delete up to `limit` of this site's audit entries older than `before_us`."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE site_id = ? "
                "AND at_us < ? ORDER BY at_us LIMIT ?)",
                (self.site_id, before_us, limit),
            )
            return cursor.rowcount
