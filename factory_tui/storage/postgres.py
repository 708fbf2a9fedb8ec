"""The PostgreSQL backend: the same `Store` as SQLite's, for a database that outgrows one box.

Selected by a `postgresql://` URL wherever a database path goes. The schema is created and
migrated in place like SQLite's (a `meta` table holds its version). Differences that matter:

- **Batch insert in one round trip.** A batch is COPied into a temporary table and moved with
  one `INSERT ... ON CONFLICT DO NOTHING RETURNING event_hash`; the hashes returned say which
  rows were new, so accepted and duplicate replies stay exact (the first copy in a batch wins,
  as with SQLite's row-by-row insert).
- **Ids in commit order.** Readers follow new rows by id (`read_since`), which is only safe if
  no row with a lower id commits later. Event inserts therefore take one transaction-level
  advisory lock: writers of events queue one after another (the listener has one writer
  anyway), and a reader never skips a row.
- **No transaction left open.** Connections run in autocommit; writes open a transaction for
  their statements only, and bulk reads hold one just while they stream.
- **Credentials** come from the URL, `PGPASSWORD` or `~/.pgpass` (libpq reads them); messages
  show the URL with its password masked.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any, Final, ParamSpec, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

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
    InsertStatus,
    ReadOnlyError,
    RowError,
    StoreError,
    StoreUnreachable,
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
from factory_tui.storage.urls import mask_url

EVENTS_LOCK: Final = 0x6674_6576  # "ftev": the advisory lock that orders event inserts
CONNECT_TIMEOUT_S: Final = 10
KEEPALIVE_IDLE_S: Final = 30
KEEPALIVE_INTERVAL_S: Final = 10
KEEPALIVE_COUNT: Final = 3
TCP_USER_TIMEOUT_MS: Final = 60_000
"""Data unacknowledged this long (ms) means the link is gone: the kernel fails the socket."""
STREAM_ROWS: Final = 20_000
"""Rows fetched per round trip by a streaming (server-side cursor) read."""

_TEXT_MARK: Final = bytes(33)
"""Put before a hash that is not a SHA-256 digest (hand-made rows): never 32 bytes long then."""
_HASH_TEXT: Final = (
    "CASE WHEN length(event_hash) = 32 THEN encode(event_hash, 'hex') "
    "ELSE convert_from(substring(event_hash FROM 34), 'UTF8') END"
)
"""The hash as text: a stored digest (32 bytes, see `_hash_bytes`) back to its 64 hex digits."""
_EVENT_COLUMNS: Final = (
    "id, ts_us, worker_id, workstation_id, event_type, confidence, count, "
    "model_version, camera_id, received_us, event_hash"
)
"""The columns of `EventRecord`, in its order (the hash as stored)."""
_ENGINE_COLUMNS: Final = (
    "worker_id, ts_us, event_hash, event_type, workstation_id, count, confidence, id"
)
"""The columns of `EngineRow`, in its order (the hash as stored)."""
_NEW_COLUMNS: Final = (
    "ts_us, worker_id, workstation_id, event_type, confidence, count, model_version, "
    "camera_id, received_us, event_hash"
)
_NEVER: Final = 2**63 - 1

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _translate_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """psycopg's errors leave the backend as `StoreError` (bad values as `RowError`)."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except (psycopg.DataError, psycopg.IntegrityError) as error:
            raise RowError(_one_line(error)) from error
        except psycopg.Error as error:
            if _link_lost(error):
                raise StoreUnreachable(f"database unreachable: {_one_line(error)}") from error
            raise StoreError(f"database error: {_one_line(error)}") from error

    return wrapper


_SERVER_BUSY: Final = ("starting up", "shutting down", "in recovery", "too many clients")
"""A server that answered, but only to say "not now": retrying is right."""


def _link_lost(error: psycopg.Error) -> bool:
    """The server could not be reached or the connection broke (class 08, an administrator's
    shutdown, or a client-side failure without a SQLSTATE), as opposed to a refusal a retry
    will not cure (a permission, a missing table)."""
    state = error.sqlstate
    if state is None:
        return True
    return state.startswith("08") or state in {"57P01", "57P02", "57P03"}


def _connect_refusal(error: psycopg.Error) -> StoreError:
    """A failed connect as the error to raise: a server that said FATAL (no such database or
    role, a password refused) needs a person; no answer at all is worth retrying."""
    text = _one_line(error)
    if "FATAL:" in text and not any(busy in text for busy in _SERVER_BUSY):
        return StoreError(text)
    return StoreUnreachable(text)


def connect(url: str, *, application_name: str = "factory-tui") -> psycopg.Connection[Any]:
    """An autocommit connection with the connect timeout ($PGCONNECT_TIMEOUT) and keepalives,
    or StoreUnreachable / StoreError (a refusal) saying why, with the password masked."""
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=int(os.environ.get("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_S)),
            application_name=application_name,
            **_connect_options(url),
        )
    except psycopg.Error as error:
        refusal = _connect_refusal(error)
        raise type(refusal)(f"cannot connect to {mask_url(url)}: {refusal}") from None


def _connect_options(url: str) -> dict[str, Any]:
    """TCP keepalives and a user timeout, unless the URL sets its own: without them a link
    that drops packets silently (a firewall's idle timeout, a cut fibre) leaves a query
    waiting for an answer forever instead of failing over to the retry."""
    given = conninfo_to_dict(url)
    wanted = {
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_S,
        "keepalives_interval": KEEPALIVE_INTERVAL_S,
        "keepalives_count": KEEPALIVE_COUNT,
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
    }
    return {key: value for key, value in wanted.items() if key not in given}


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# --- schema migrations: each runs once, in order, inside one transaction ----------------------


def _migration_1(conn: psycopg.Connection[Any]) -> None:
    """The schema of SQLite's version 3: roster, events, alerts, models."""
    for statement in (
        "CREATE TABLE workers (id TEXT PRIMARY KEY, name TEXT NOT NULL)",
        "CREATE TABLE workstations (id TEXT PRIMARY KEY, name TEXT NOT NULL)",
        """CREATE TABLE events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ts_us BIGINT NOT NULL,
            worker_id TEXT NOT NULL,
            workstation_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            confidence DOUBLE PRECISION NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            model_version TEXT,
            camera_id TEXT,
            received_us BIGINT NOT NULL,
            event_hash TEXT NOT NULL UNIQUE
        )""",
        "CREATE INDEX events_worker_ts ON events (worker_id, ts_us)",
        "CREATE INDEX events_ts ON events (ts_us)",
        """CREATE TABLE alerts (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            details TEXT NOT NULL,
            started_us BIGINT NOT NULL,
            cleared_us BIGINT
        )""",
        "CREATE INDEX alerts_open ON alerts (kind, subject) WHERE cleared_us IS NULL",
        "CREATE INDEX alerts_started ON alerts (started_us)",
        "CREATE TABLE models (model_key TEXT PRIMARY KEY, first_ts_us BIGINT NOT NULL)",
    ):
        conn.execute(statement)


def _migration_2(conn: psycopg.Connection[Any]) -> None:
    """Sites (SQLite's version 4): events partitioned by site (LIST, a partition made on a
    site's first event), unique per (site, hash); roster, alerts and models per site; existing
    data to `main`; forward cursors."""
    main = sql.Literal(DEFAULT_SITE)
    for statement in (
        sql.SQL(
            "CREATE TABLE sites (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "description TEXT NOT NULL DEFAULT '{}', updated_us BIGINT NOT NULL DEFAULT 0)"
        ),
        sql.SQL("ALTER TABLE events RENAME TO events_1"),
        sql.SQL("DROP INDEX events_worker_ts, events_ts"),  # the names go to the new table
        sql.SQL("CREATE SEQUENCE event_ids"),
        sql.SQL(
            "SELECT setval('event_ids', coalesce((SELECT max(id) FROM events_1), 0) + 1, false)"
        ),
        sql.SQL(
            """CREATE TABLE events (
                id BIGINT NOT NULL DEFAULT nextval('event_ids'),
                site_id TEXT NOT NULL,
                ts_us BIGINT NOT NULL,
                worker_id TEXT NOT NULL,
                workstation_id TEXT NOT NULL,
                event_type TEXT NOT NULL,
                confidence DOUBLE PRECISION NOT NULL,
                count INTEGER NOT NULL DEFAULT 0,
                model_version TEXT,
                camera_id TEXT,
                received_us BIGINT NOT NULL,
                event_hash TEXT NOT NULL,
                PRIMARY KEY (site_id, id),
                UNIQUE (site_id, event_hash)
            ) PARTITION BY LIST (site_id)"""
        ),
        sql.SQL("CREATE INDEX events_worker_ts ON events (site_id, worker_id, ts_us)"),
        sql.SQL("CREATE INDEX events_ts ON events (site_id, ts_us)"),
    ):
        conn.execute(statement)
    if conn.execute("SELECT EXISTS (SELECT 1 FROM events_1)").fetchone() == (True,):
        conn.execute(_partition_ddl(DEFAULT_SITE))
        conn.execute(
            sql.SQL(
                "INSERT INTO events (id, site_id, {columns}) SELECT id, {main}, {columns} "
                "FROM events_1 ORDER BY id"
            ).format(columns=sql.SQL(_NEW_COLUMNS), main=main)
        )
    later: tuple[sql.SQL | sql.Composed, ...] = (
        sql.SQL("DROP TABLE events_1"),
        *(
            sql.SQL(
                "ALTER TABLE {table} ADD COLUMN site_id TEXT NOT NULL DEFAULT {main}; "
                "ALTER TABLE {table} DROP CONSTRAINT {pkey}; "
                "ALTER TABLE {table} ADD PRIMARY KEY (site_id, {key})"
            ).format(
                table=sql.Identifier(table),
                main=main,
                pkey=sql.Identifier(f"{table}_pkey"),
                key=sql.Identifier(key),
            )
            for table, key in (("workers", "id"), ("workstations", "id"), ("models", "model_key"))
        ),
        sql.SQL("ALTER TABLE alerts ADD COLUMN site_id TEXT NOT NULL DEFAULT {}").format(main),
        sql.SQL("DROP INDEX alerts_open"),
        sql.SQL("DROP INDEX alerts_started"),
        sql.SQL(
            "CREATE INDEX alerts_open ON alerts (site_id, kind, subject) WHERE cleared_us IS NULL"
        ),
        sql.SQL("CREATE INDEX alerts_started ON alerts (site_id, started_us)"),
        sql.SQL(
            "CREATE TABLE forward_cursors (target TEXT PRIMARY KEY, last_id BIGINT NOT NULL, "
            "updated_us BIGINT NOT NULL)"
        ),
        sql.SQL(
            "INSERT INTO sites (id, name) SELECT {main}, {main} WHERE EXISTS "
            "(SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM workers)"
        ).format(main=main),
    )
    for step in later:
        conn.execute(step)


def _partition_ddl(site_id: str) -> sql.Composed:
    """The statement that makes the events partition of `site_id` (named by a digest, so any
    site id makes a valid, distinct table name)."""
    name = "events_site_" + hashlib.sha256(site_id.encode()).hexdigest()[:16]
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF events FOR VALUES IN ({})").format(
        sql.Identifier(name), sql.Literal(site_id)
    )


def _migration_3(conn: psycopg.Connection[Any]) -> None:
    """The audit trail (SQLite's version 5): connections, refusals, auth failures, per site."""
    conn.execute(
        """CREATE TABLE audit (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            site_id TEXT NOT NULL,
            at_us BIGINT NOT NULL,
            kind TEXT NOT NULL,
            peer TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )"""
    )
    conn.execute("CREATE INDEX audit_at ON audit (site_id, at_us)")


def _hash_bytes(event_hash: str) -> bytes:
    """How the events table keeps a hash (bytea): a SHA-256 hex digest as its 32 raw bytes,
    other text as its UTF-8 after `_TEXT_MARK`."""
    stored = stored_hash(event_hash)
    return stored if isinstance(stored, bytes) else _TEXT_MARK + stored.encode()


def _migration_4(conn: psycopg.Connection[Any]) -> None:
    """Hashes as bytes (SQLite's version 6): a digest's 32 raw bytes instead of its 64 hex
    digits, in each row and in the unique index (`_hash_bytes`; the table is rewritten)."""
    conn.execute(
        "ALTER TABLE events ALTER COLUMN event_hash TYPE bytea USING CASE "
        "WHEN event_hash ~ '^[0-9a-f]{64}$' THEN decode(event_hash, 'hex') "
        f"ELSE decode(repeat('00', {len(_TEXT_MARK)}), 'hex') || convert_to(event_hash, 'UTF8') "
        "END"
    )


def _migration_5(conn: psycopg.Connection[Any]) -> None:
    """Audit indexes for the console's reads, newest first (SQLite's version 7): of some
    kinds (a viewer's failed alert actions, each tick) and of every kind (the event log)."""
    conn.execute("CREATE INDEX audit_kind_id ON audit (site_id, kind, id)")
    conn.execute("CREATE INDEX audit_site_id ON audit (site_id, id)")


MIGRATIONS: Final = (_migration_1, _migration_2, _migration_3, _migration_4, _migration_5)
_HASH_BYTES_SINCE: Final = 4
SCHEMA_VERSION: Final = len(MIGRATIONS)


class PostgresStore(BackendBase):
    """A connection to one factory database on a PostgreSQL server (implements `Store`).

    Not shared between threads: open one per thread.
    """

    def __init__(
        self, conn: psycopg.Connection[Any], url: str, *, read_only: bool, site_id: str
    ) -> None:
        self._conn = conn
        self.location = mask_url(url)
        self.read_only = read_only
        self.site_id = site_id
        self._partitioned: set[str] = set()
        """Sites whose events partition this connection knows exists."""
        self._text_hashes = False
        """The events table keeps hashes as text (a schema before 4: only a test's
        `migrate_to` leaves one in use)."""
        self._event_columns = _EVENT_COLUMNS.replace("event_hash", _HASH_TEXT)
        self._engine_columns = _ENGINE_COLUMNS.replace("event_hash", _HASH_TEXT)

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str,
        *,
        read_only: bool = False,
        site: str = DEFAULT_SITE,
        migrate_to: int = SCHEMA_VERSION,
    ) -> PostgresStore:
        """Connect (creating or migrating the schema), or with `read_only` attach to it."""
        masked = mask_url(url)
        conn = connect(url)
        store = cls(conn, url, read_only=read_only, site_id=site)
        try:
            found = store.schema_version()
            problem = schema_problem(masked, found, SCHEMA_VERSION, read_only=read_only)
            if problem is not None:
                raise StoreError(problem)
            if read_only:
                # Every statement, autocommit included, is refused a write by the server.
                conn.execute("SET default_transaction_read_only = on")
            else:
                store._migrate(found, migrate_to)
                if max(found, migrate_to) < _HASH_BYTES_SINCE:
                    store._text_hashes = True
                    store._event_columns, store._engine_columns = _EVENT_COLUMNS, _ENGINE_COLUMNS
        except BaseException:
            conn.close()
            raise
        return store

    @_translate_errors
    def schema_version(self) -> int:
        """The schema version recorded in the database (0 for a new, empty one)."""
        exists = self._conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    @_translate_errors
    def _migrate(self, found: int, target: int) -> None:
        for number in range(found + 1, target + 1):
            with self._conn.transaction():
                if number == 1:
                    self._conn.execute(
                        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"
                    )
                MIGRATIONS[number - 1](self._conn)
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(number),),
                )

    def _require_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{self.location} is open read-only")

    def close(self) -> None:
        """Close the connection (a `scoped` copy shares it: close the store it came from)."""
        self._conn.close()

    # --- the process that owns the listener ---------------------------------------------------

    @_translate_errors
    def set_owner(self, pid: int, host: str, port: int) -> None:
        """Record which process listens for this database, so a second console can find it."""
        self._require_writable()
        with self._conn.transaction(), self._conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                owner_rows(pid, host, port),
            )

    @_translate_errors
    def owner(self) -> tuple[int, str, int] | None:
        """(pid, host, port) of the process that last recorded itself as the listener."""
        rows = self._conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('owner_pid', 'owner_host', 'owner_port')"
        )
        return owner_from(dict(rows.fetchall()))

    # --- roster -------------------------------------------------------------------------------

    @_translate_errors
    def upsert_roster(
        self, workers: Iterable[RosterEntry], workstations: Iterable[RosterEntry]
    ) -> None:
        """Insert or rename roster rows (from config on start); rows not named are kept."""
        self._require_writable()
        with self._conn.transaction(), self._conn.cursor() as cursor:
            for table, entries in (("workers", workers), ("workstations", workstations)):
                cursor.executemany(
                    sql.SQL(
                        "INSERT INTO {} (site_id, id, name) VALUES (%s, %s, %s) "
                        "ON CONFLICT (site_id, id) DO UPDATE SET name = excluded.name"
                    ).format(sql.Identifier(table)),
                    [(self.site_id, entry.id, entry.name) for entry in entries],
                )

    @_translate_errors
    def register_ids(self, worker_ids: Iterable[str], workstation_ids: Iterable[str]) -> None:
        """Add ids not yet in the roster, named by their id (auto-registration)."""
        self._require_writable()
        with self._conn.transaction(), self._conn.cursor() as cursor:
            for table, ids in (("workers", worker_ids), ("workstations", workstation_ids)):
                cursor.executemany(
                    sql.SQL(
                        "INSERT INTO {} (site_id, id, name) VALUES (%s, %s, %s) "
                        "ON CONFLICT (site_id, id) DO NOTHING"
                    ).format(sql.Identifier(table)),
                    [(self.site_id, item, item) for item in ids],
                )

    @_translate_errors
    def workers(self) -> dict[str, str]:
        """Worker id -> name, in id order."""
        rows = self._conn.execute(
            'SELECT id, name FROM workers WHERE site_id = %s ORDER BY id COLLATE "C"',
            (self.site_id,),
        )
        return dict(rows.fetchall())

    @_translate_errors
    def workstations(self) -> dict[str, str]:
        """Workstation id -> name, in id order."""
        rows = self._conn.execute(
            'SELECT id, name FROM workstations WHERE site_id = %s ORDER BY id COLLATE "C"',
            (self.site_id,),
        )
        return dict(rows.fetchall())

    # --- writing events -----------------------------------------------------------------------

    @_translate_errors
    def insert_rows(self, rows: Sequence[NewEventRow]) -> list[InsertStatus]:
        """Store rows in one transaction and one round trip for the rows (COPY, then one
        INSERT ... ON CONFLICT DO NOTHING RETURNING); per row, accepted or duplicate."""
        self._require_writable()
        if not rows:
            return []
        conn = self._conn
        with conn.transaction(), conn.cursor() as cursor:
            self._prepare_incoming(cursor)
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (EVENTS_LOCK,))
            if self.site_id not in self._partitioned:
                cursor.execute(_partition_ddl(self.site_id))
            keys = [self._stored_hash(row.event_hash) for row in rows]
            with cursor.copy(f"COPY incoming (seq, {_NEW_COLUMNS}) FROM STDIN") as copy:
                for seq, (row, key) in enumerate(zip(rows, keys, strict=True)):
                    copy.write_row((seq, *row[:9], key))
            cursor.execute(
                f"INSERT INTO events (site_id, {_NEW_COLUMNS}) SELECT %s, {_NEW_COLUMNS} "
                "FROM incoming ORDER BY seq ON CONFLICT (site_id, event_hash) DO NOTHING "
                "RETURNING event_hash",
                (self.site_id,),
            )
            new = {key for (key,) in cursor.fetchall()}
            self._keep_models(cursor, rows)
        self._partitioned.add(self.site_id)
        statuses: list[InsertStatus] = []
        for key in keys:
            if key in new:
                new.discard(key)  # a second copy in the batch is a duplicate
                statuses.append("accepted")
            else:
                statuses.append("duplicate")
        return statuses

    @_translate_errors
    def insert_fresh_rows(self, rows: Sequence[NewEventRow]) -> list[InsertStatus]:
        """Rows that are most likely all new (a forwarded backlog): one COPY straight into the
        events table, which costs about half of `insert_rows`' staging table and INSERT ...
        SELECT (multi-row heap inserts, less WAL). When one of them is there already, the
        transaction rolls back and the batch goes through `insert_rows` for exact statuses."""
        self._require_writable()
        if not rows:
            return []
        conn = self._conn
        try:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (EVENTS_LOCK,))
                if self.site_id not in self._partitioned:
                    cursor.execute(_partition_ddl(self.site_id))
                site = self.site_id
                with cursor.copy(f"COPY events (site_id, {_NEW_COLUMNS}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row((site, *row[:9], self._stored_hash(row[9])))
                self._keep_models(cursor, rows)
        except psycopg.errors.UniqueViolation:
            return self.insert_rows(rows)
        self._partitioned.add(self.site_id)
        return ["accepted"] * len(rows)

    def _keep_models(self, cursor: psycopg.Cursor[Any], rows: Sequence[NewEventRow]) -> None:
        """Each model_version's first event, as of this batch (inside its transaction)."""
        cursor.executemany(
            "INSERT INTO models (site_id, model_key, first_ts_us) VALUES (%s, %s, %s) "
            "ON CONFLICT (site_id, model_key) DO UPDATE "
            "SET first_ts_us = LEAST(models.first_ts_us, excluded.first_ts_us)",
            [(self.site_id, key, first) for key, first in model_firsts(rows).items()],
        )

    def _stored_hash(self, event_hash: str) -> str | bytes:
        return event_hash if self._text_hashes else _hash_bytes(event_hash)

    def _prepare_incoming(self, cursor: psycopg.Cursor[Any]) -> None:
        """The session's staging table for COPY, emptied at every commit (made in the
        transaction that uses it, so a rolled-back first batch cannot lose it)."""
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS incoming (seq INTEGER, ts_us BIGINT, "
            "worker_id TEXT, workstation_id TEXT, event_type TEXT, confidence DOUBLE PRECISION, "
            "count INTEGER, model_version TEXT, camera_id TEXT, received_us BIGINT, "
            f"event_hash {'TEXT' if self._text_hashes else 'BYTEA'}) ON COMMIT DELETE ROWS"
        )

    def checkpoint(self) -> None:
        """Nothing to do: the server writes its own checkpoints."""

    # --- reading events -----------------------------------------------------------------------

    @_translate_errors
    def read_since(self, cursor: int, limit: int = READ_BATCH) -> list[EventRecord]:
        """Rows with id > cursor, in id order, at most `limit` (the engine's tick read)."""
        rows = self._conn.execute(
            f"SELECT {self._event_columns} FROM events WHERE site_id = %s AND id > %s "
            "ORDER BY id LIMIT %s",
            (self.site_id, cursor, limit),
        ).fetchall()
        return [EventRecord(*row) for row in rows]

    @_translate_errors
    def _range_batch(self, after: tuple[int, int], high: int, batch: int) -> list[EventRecord]:
        rows = self._conn.execute(
            f"SELECT {self._event_columns} FROM events WHERE site_id = %s AND ts_us < %s AND "
            "(ts_us, id) > (%s, %s) ORDER BY ts_us, id LIMIT %s",
            (self.site_id, high, after[0], after[1], batch),
        ).fetchall()
        return [EventRecord(*row) for row in rows]

    @_translate_errors
    def latest_events(self, limit: int = 50, worker_id: str | None = None) -> list[EventRecord]:
        """The newest rows (by id), newest first; of one worker: by timestamp, newest first."""
        if worker_id is None:
            query = (
                f"SELECT {self._event_columns} FROM events WHERE site_id = %s "
                "ORDER BY id DESC LIMIT %s"
            )
            params: tuple[Any, ...] = (self.site_id, limit)
        else:
            query = (
                f"SELECT {self._event_columns} FROM events WHERE site_id = %s AND worker_id = %s "
                "ORDER BY ts_us DESC, id DESC LIMIT %s"
            )
            params = (self.site_id, worker_id, limit)
        return [EventRecord(*row) for row in self._conn.execute(query, params).fetchall()]

    @_translate_errors
    def count_events(self) -> int:
        """Number of stored events."""
        row = self._conn.execute(
            "SELECT count(*) FROM events WHERE site_id = %s", (self.site_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    @_translate_errors
    def max_event_id(self) -> int:
        """Id of the newest stored row (0 when empty)."""
        row = self._conn.execute(
            "SELECT coalesce(max(id), 0) FROM events WHERE site_id = %s", (self.site_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    @_translate_errors
    def count_since(self, cursor: int) -> int:
        """Number of stored rows with id > cursor (a forward backlog)."""
        row = self._conn.execute(
            "SELECT count(*) FROM events WHERE site_id = %s AND id > %s", (self.site_id, cursor)
        ).fetchone()
        return int(row[0]) if row else 0

    @_translate_errors
    def time_span(self) -> tuple[int, int] | None:
        """The oldest and newest event timestamps (None when there are no events)."""
        row = self._conn.execute(
            "SELECT min(ts_us), max(ts_us) FROM events WHERE site_id = %s", (self.site_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0]), int(row[1])

    # --- the engine's warm start --------------------------------------------------------------

    def engine_rows(self, from_us: int, to_us: int) -> Iterable[EngineRow]:
        """Every event with from_us <= ts_us <= to_us as the engine reads it (plain tuples in
        `EngineRow` order), streamed through a server-side cursor."""
        # Chained batches: the rows pass to the engine's chunking without a Python generator
        # step per row.
        return chain.from_iterable(
            self._stream(
                f"SELECT {self._engine_columns} FROM events "
                "WHERE site_id = %s AND ts_us >= %s AND ts_us <= %s",
                (self.site_id, from_us, to_us),
            )
        )

    def _stream(self, query: str, params: tuple[Any, ...]) -> Iterator[list[Any]]:
        """The rows of `query` in lists of `STREAM_ROWS`, from a server-side cursor in binary
        (numbers arrive as machine words: nothing to parse from text)."""
        try:
            with (
                self._conn.transaction(),
                self._conn.cursor(name="factory_tui_stream", binary=True) as cur,
            ):
                cur.execute(query, params)
                while rows := cur.fetchmany(STREAM_ROWS):
                    yield rows
        except psycopg.Error as error:
            raise StoreError(f"database error: {_one_line(error)}") from error

    @_translate_errors
    def worker_ids(self) -> list[str]:
        """The distinct worker ids of the stored events (a skip scan along the worker index)."""
        rows = self._conn.execute(
            "WITH RECURSIVE w(id) AS (SELECT min(worker_id) FROM events WHERE site_id = %(s)s "
            "UNION ALL SELECT (SELECT min(worker_id) FROM events WHERE site_id = %(s)s "
            "AND worker_id > w.id) FROM w WHERE w.id IS NOT NULL) "
            "SELECT id FROM w WHERE id IS NOT NULL",
            {"s": self.site_id},
        )
        return [worker_id for (worker_id,) in rows]

    @_translate_errors
    def engine_rows_before(
        self, worker_id: str, before_us: int, *, state_only: bool
    ) -> list[EngineRow]:
        """Every event of the worker at the instant of its latest (state) event before
        `before_us` (all of that instant: the engine orders ties by hash)."""
        condition = "AND event_type <> 'product_count'" if state_only else ""
        rows: list[Any] = self._conn.execute(
            f"SELECT {self._engine_columns} FROM events "
            "WHERE site_id = %(s)s AND worker_id = %(w)s "
            "AND ts_us = (SELECT ts_us FROM events WHERE site_id = %(s)s AND worker_id = %(w)s "
            f"AND ts_us < %(b)s {condition} ORDER BY ts_us DESC LIMIT 1)",
            {"s": self.site_id, "w": worker_id, "b": before_us},
        ).fetchall()
        return rows

    @_translate_errors
    def stations_before(self, before_us: int) -> list[str]:
        """Workstation ids seen in events older than `before_us`."""
        rows = self._conn.execute(
            "SELECT DISTINCT workstation_id FROM events WHERE site_id = %s AND ts_us < %s",
            (self.site_id, before_us),
        )
        return [station_id for (station_id,) in rows]

    # --- what the views read ------------------------------------------------------------------

    @_translate_errors
    def units_by_bucket(
        self, worker_id: str, from_us: int, to_us: int, bucket_us: int, max_id: int
    ) -> list[UnitsBucket]:
        """The worker's units in [from_us, to_us) per station and bucket, rows id <= max_id."""
        rows = self._conn.execute(
            "SELECT workstation_id, (ts_us - %s) / %s, sum(count), min(ts_us), max(ts_us) "
            "FROM events WHERE site_id = %s AND worker_id = %s AND event_type = 'product_count' "
            "AND ts_us >= %s AND ts_us < %s AND id <= %s GROUP BY 1, 2",
            (from_us, bucket_us, self.site_id, worker_id, from_us, to_us, max_id),
        ).fetchall()
        return [
            UnitsBucket(station, int(bucket), int(units), int(first), int(last))
            for station, bucket, units, first, last in rows
        ]

    @_translate_errors
    def model_first_seen(self) -> list[tuple[str | None, int]]:
        """Each model_version stored (None: events that named none) and its first timestamp."""
        rows = self._conn.execute(
            "SELECT model_key, first_ts_us FROM models WHERE site_id = %s "
            'ORDER BY model_key COLLATE "C"',
            (self.site_id,),
        ).fetchall()
        return [(key or None, int(first)) for key, first in rows]

    @_translate_errors
    def model_summary(
        self, from_us: int, to_us: int, max_id: int | None = None
    ) -> list[ModelSummary]:
        """Per model_version: events, mean and lowest confidence, units in [from_us, to_us)
        (with `max_id`: of the rows with id <= max_id, what a cursor has read)."""
        rows = self._conn.execute(
            "SELECT model_version, count(*), avg(confidence), min(confidence), "
            "coalesce(sum(CASE WHEN event_type = 'product_count' THEN count END), 0) "
            "FROM events WHERE site_id = %s AND ts_us >= %s AND ts_us < %s"
            + ("" if max_id is None else " AND id <= %s")
            + ' GROUP BY model_version ORDER BY model_version COLLATE "C" NULLS FIRST',
            (self.site_id, from_us, to_us, *(() if max_id is None else (max_id,))),
        ).fetchall()
        return [
            ModelSummary(model, int(events), float(mean), float(low), int(units))
            for model, events, mean, low, units in rows
        ]

    # --- alerts -------------------------------------------------------------------------------

    @_translate_errors
    def sync_alerts(self, conditions: Iterable[AlertCondition], at_us: int) -> None:
        """Make the active alerts match the conditions holding at `at_us`, in one transaction."""
        self._require_writable()
        with self._conn.transaction(), self._conn.cursor() as cursor:
            cursor.execute(
                "SELECT id, kind, subject, details FROM alerts "
                "WHERE site_id = %s AND cleared_us IS NULL FOR UPDATE",
                (self.site_id,),
            )
            changes = alert_changes(cursor.fetchall(), conditions)
            cursor.executemany(
                "UPDATE alerts SET cleared_us = %s WHERE id = %s",
                [(at_us, ident) for ident in changes.cleared],
            )
            cursor.executemany("UPDATE alerts SET details = %s WHERE id = %s", changes.details)
            cursor.executemany(
                "INSERT INTO alerts (site_id, kind, subject, details, started_us) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(self.site_id, *alert) for alert in changes.raised],
            )

    @_translate_errors
    def alerts(self, active_only: bool = False, limit: int = 500) -> list[AlertRecord]:
        """Alerts, newest first."""
        active = "AND cleared_us IS NULL" if active_only else ""
        rows = self._conn.execute(
            "SELECT id, kind, subject, details, started_us, cleared_us FROM alerts "
            f"WHERE site_id = %s {active} ORDER BY started_us DESC, id DESC LIMIT %s",
            (self.site_id, limit),
        ).fetchall()
        return [AlertRecord(*row) for row in rows]

    @_translate_errors
    def alerts_raised(self, from_us: int, to_us: int) -> list[AlertRecord]:
        """Alerts raised in [from_us, to_us), oldest first (the alerts_started index)."""
        rows = self._conn.execute(
            "SELECT id, kind, subject, details, started_us, cleared_us FROM alerts "
            "WHERE site_id = %s AND started_us >= %s AND started_us < %s "
            "ORDER BY started_us, id",
            (self.site_id, from_us, to_us),
        ).fetchall()
        return [AlertRecord(*row) for row in rows]

    # --- sites, forwarding and retention ------------------------------------------------------

    @_translate_errors
    def sites(self) -> list[SiteRecord]:
        """Every site described in the database, in id order."""
        rows = self._conn.execute(
            'SELECT id, name, description, updated_us FROM sites ORDER BY id COLLATE "C"'
        ).fetchall()
        return site_records(rows)

    @_translate_errors
    def describe_site(self, name: str, description: Mapping[str, Any], at_us: int) -> None:
        """Record this site's name and description (time zone, shifts, max_gap_s, ...)."""
        self._require_writable()
        self._conn.execute(
            "INSERT INTO sites (id, name, description, updated_us) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
            "description = excluded.description, updated_us = excluded.updated_us",
            (self.site_id, name, description_text(description), at_us),
        )

    @_translate_errors
    def forward_cursor(self, target: str) -> int:
        """Id of the last event of this database known to be committed at `target` (0: none)."""
        row = self._conn.execute(
            "SELECT last_id FROM forward_cursors WHERE target = %s", (target,)
        ).fetchone()
        return int(row[0]) if row else 0

    @_translate_errors
    def set_forward_cursor(self, target: str, last_id: int, at_us: int) -> None:
        """Record that every event up to `last_id` is committed at `target`."""
        self._require_writable()
        self._conn.execute(
            "INSERT INTO forward_cursors (target, last_id, updated_us) VALUES (%s, %s, %s) "
            "ON CONFLICT (target) DO UPDATE SET last_id = excluded.last_id, "
            "updated_us = excluded.updated_us",
            (target, last_id, at_us),
        )

    @_translate_errors
    def delete_events_before(self, before_us: int, *, max_id: int, limit: int) -> int:
        """Delete up to `limit` of this site's events older than `before_us` with id <= max_id
        (retention, one small transaction); returns how many were deleted."""
        self._require_writable()
        cursor = self._conn.execute(
            "DELETE FROM events WHERE site_id = %(s)s AND id IN (SELECT id FROM events "
            "WHERE site_id = %(s)s AND ts_us < %(b)s AND id <= %(m)s ORDER BY ts_us LIMIT %(n)s)",
            {"s": self.site_id, "b": before_us, "m": max_id, "n": limit},
        )
        return cursor.rowcount

    # --- the audit trail ----------------------------------------------------------------------

    @_translate_errors
    def add_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to this site's audit trail, in one transaction."""
        self._require_writable()
        if not entries:
            return
        with self._conn.transaction(), self._conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO audit (site_id, at_us, kind, peer, detail) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(self.site_id, *entry) for entry in entries],
            )

    @_translate_errors
    def audit_entries(
        self, limit: int = 200, *, kinds: Collection[str] | None = None
    ) -> list[AuditRecord]:
        """This site's newest audit entries, newest first (with `kinds`: only those kinds)."""
        if kinds is None:
            rows = self._conn.execute(
                "SELECT id, at_us, kind, peer, detail FROM audit WHERE site_id = %s "
                "ORDER BY id DESC LIMIT %s",
                (self.site_id, limit),
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT id, at_us, kind, peer, detail FROM audit WHERE site_id = %s "
                "AND kind = ANY(%s) ORDER BY id DESC LIMIT %s",
                (self.site_id, list(kinds), limit),
            ).fetchall()
        return [AuditRecord(*row) for row in rows]

    @_translate_errors
    def delete_audit_before(self, before_us: int, *, limit: int) -> int:
        """Delete up to `limit` of this site's audit entries older than `before_us`."""
        self._require_writable()
        cursor = self._conn.execute(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE site_id = %s "
            "AND at_us < %s ORDER BY at_us LIMIT %s)",
            (self.site_id, before_us, limit),
        )
        return cursor.rowcount
