"""The ingest listener's threads: validation, hashing and SQLite writes, and WAL checkpoints.

Everything heavy runs off the event loop, so the console can run the listener inside
Textual's loop without its commits blocking the screen. `BatchWriter` turns a batch of framed
lines into one transaction and one reply per line, in order, in two steps: `prepare`
(validation and hashing, pure, in a parse thread) and `store_batch` (the roster check and the
insert, in the writer thread, which owns its own `Store`, opened with `bulk_writer=True`). The
listener prepares the next batch while the writer stores the one before: SQLite's insert runs
without the interpreter lock, so the two overlap on two cores. `Checkpointer` lives in a third
thread with a connection of its own and checkpoints the WAL after each commit, beside the
writer rather than inside its commits.

Nothing here touches the event loop or a socket: the listener hands each object to its own
single-thread executor and calls every method through it (`prepare` through the parse
thread's), so the store is only ever used from one thread. Memory is whatever batches the
listener hands in (bounded there: one being prepared, one being stored) plus the roster's ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, Final

from factory_tui.ingest.protocol import (
    ACCEPTED,
    DUPLICATE,
    Line,
    Refused,
    excerpt,
    parse_row,
    rejected,
)
from factory_tui.models import EventError, NewEventRow, RosterEntry, now_us
from factory_tui.records import AuditEntry
from factory_tui.storage import DEFAULT_SITE, Durability, RowError, Store, open_store

log = logging.getLogger("factory_tui.ingest")

# Bad lines shorter than this are remembered within a batch (events are longer: about 100
# bytes at the least), so the lookup costs valid lines nothing and the memory stays small.
SHORT_LINE_BYTES: Final = 64
# Validation lets other threads have the interpreter lock after this many lines (about 1 ms).
YIELD_EVERY_LINES: Final = 256


@dataclass(slots=True)
class BatchOutcome:
    """What the writer thread hands back for one batch."""

    replies: list[bytes]
    accepted: int
    duplicates: int
    rejections: list[tuple[int, str, str]]
    """(index in the batch, line excerpt, error) of every rejected line."""


@dataclass(slots=True)
class Prepared:
    """A batch validated and hashed (`BatchWriter.prepare`), waiting to be stored."""

    lines: Sequence[Line]
    rows: list[NewEventRow]
    """The valid lines' rows, in line order (the roster is checked when they are stored)."""
    slots: list[int]
    """Each row's index in `lines`."""
    rejections: list[tuple[int, str, str]]
    """(index, line excerpt, error) of every line that is not a valid event, in order."""


class BatchWriter:
    """Validation, hashing and SQLite writes. Every method runs in the writer thread."""

    def __init__(
        self,
        path: Path | str,
        durability: Durability,
        tz: tzinfo,
        *,
        auto_register: bool,
        site: str = DEFAULT_SITE,
    ) -> None:
        self._path = path
        self._site = site
        self._durability = durability
        self._tz = tz
        self._auto_register = auto_register
        self._store: Store | None = None
        self._workers: set[str] = set()
        self._stations: set[str] = set()
        self._fresh = True
        """The last batch held no duplicate: try the next one as all new (`insert_fresh_rows`,
        a plain COPY on PostgreSQL), as cameras rarely re-send."""

    @property
    def store(self) -> Store:
        """The writer's own store (writer thread only)."""
        if self._store is None:
            raise RuntimeError("the writer's store is not open")
        return self._store

    def open(
        self,
        workers: Sequence[RosterEntry],
        stations: Sequence[RosterEntry],
        site_name: str,
        description: Mapping[str, Any],
    ) -> None:
        """Open the store in this thread for our site, describe the site, and make sure the
        configured roster is in it."""
        self._store = open_store(
            self._path, durability=self._durability, bulk_writer=True, site=self._site
        )
        self._store.describe_site(site_name, description, now_us())
        if workers or stations:
            self._store.upsert_roster(workers, stations)
        self._load_roster()

    def _load_roster(self) -> None:
        self._workers = set(self.store.workers())
        self._stations = set(self.store.workstations())

    def set_owner(self, pid: int, host: str, port: int) -> None:
        """Record this process as the database's listener (writer thread)."""
        self.store.set_owner(pid, host, port)

    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit trail (writer thread, between two batches)."""
        self.store.add_audit(entries)

    def close(self) -> None:
        """Close the store (writer thread); a writer that is not open does nothing."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def commit(self, lines: Sequence[Line]) -> BatchOutcome:
        """Validate and store one batch in one transaction; one reply per line, in order."""
        return self.store_batch(self.prepare(lines))

    def prepare(self, lines: Sequence[Line]) -> Prepared:
        """Validate and hash one batch (any thread: it reads only the time zone).

        The listener runs it in a thread of its own while the writer stores the batch before:
        SQLite's insert runs without the interpreter lock (`Store.insert_fresh_rows`)."""
        received = now_us()
        tz = self._tz
        rejections: list[tuple[int, str, str]] = []
        rows: list[NewEventRow] = []
        slots: list[int] = []
        # A short bad line seen before in this batch is not parsed again: a flood of `x` lines
        # costs a dict lookup each instead of a failed parse (about 20 us).
        bad_lines: dict[bytes, tuple[str, str]] = {}
        for index, line in enumerate(lines):
            if not index % YIELD_EVERY_LINES:
                # Let a thread waiting for the interpreter lock have it (the writer back from
                # SQLite, the event loop): it would otherwise wait out a whole switch interval
                # (5 ms) for every chunk it stores while this runs.
                time.sleep(0)
            if isinstance(line, Refused):
                rejections.append((index, excerpt(line.head), line.error))
                continue
            if len(line) < SHORT_LINE_BYTES and line in bad_lines:
                rejections.append((index, *bad_lines[line]))
                continue
            try:
                row = parse_row(line, tz, received)
            except EventError as error:
                why = (excerpt(line), str(error))
                if len(line) < SHORT_LINE_BYTES:
                    bad_lines[line] = why
                rejections.append((index, *why))
                continue
            rows.append(row)
            slots.append(index)
        return Prepared(lines, rows, slots, rejections)

    def store_batch(self, batch: Prepared) -> BatchOutcome:
        """Check a prepared batch against the roster and store it in one transaction (writer
        thread); one reply per line, in order. Batches must come in the order of their lines."""
        lines, rows, slots, rejections = batch.lines, batch.rows, batch.slots, batch.rejections
        workers, stations = self._workers, self._stations
        known = [row[1] in workers and row[2] in stations for row in rows]
        if not all(known):
            unknown: list[tuple[int, NewEventRow]] = []
            kept_slots: list[int] = []
            kept_rows: list[NewEventRow] = []
            for slot, row, is_known in zip(slots, rows, known, strict=True):
                if is_known:
                    kept_slots.append(slot)
                    kept_rows.append(row)
                else:
                    unknown.append((slot, row))
            slots, rows = kept_slots, kept_rows
            self._settle_unknown(unknown, lines, rows, slots, rejections)
        accepted = duplicates = 0
        if rows:
            statuses = self._insert(rows)
            if not rejections and statuses.count("accepted") == len(lines):
                return BatchOutcome([ACCEPTED] * len(lines), len(lines), 0, [])
            replies: list[bytes] = [b""] * len(lines)
            for slot, status in zip(slots, statuses, strict=True):
                if status == "accepted":
                    replies[slot] = ACCEPTED
                    accepted += 1
                elif status == "duplicate":
                    replies[slot] = DUPLICATE
                    duplicates += 1
                else:
                    line = lines[slot]
                    assert isinstance(line, bytes)
                    rejections.append((slot, excerpt(line), status))
            rejections.sort(key=lambda item: item[0])
        else:
            replies = [b""] * len(lines)
        reply_to: dict[str, bytes] = {}  # garbage repeats its error: build each reply once
        for index, _line, message in rejections:
            reply = reply_to.get(message)
            if reply is None:
                reply = reply_to[message] = rejected(message)
            replies[index] = reply
        return BatchOutcome(replies, accepted, duplicates, rejections)

    def _insert(self, rows: list[NewEventRow]) -> list[str]:
        """insert_rows, with a row SQLite cannot take isolated instead of failing the batch.

        Validation should let no such row through; this keeps one bad row from costing every
        other line of the batch its acknowledgement if one ever does. A status other than
        accepted / duplicate is the rejection message of that row.
        """
        try:
            insert = self.store.insert_fresh_rows if self._fresh else self.store.insert_rows
            stored: list[str] = list(insert(rows))
            self._fresh = "duplicate" not in stored
            return stored
        except RowError:
            log.exception("a batch could not be stored; storing its rows one by one")
        statuses: list[str] = []
        for row in rows:
            try:
                statuses.extend(self.store.insert_rows([row]))
            except RowError as error:
                statuses.append(f"line: cannot be stored ({error})")
        return statuses

    def _settle_unknown(
        self,
        unknown: list[tuple[int, NewEventRow]],
        lines: Sequence[Line],
        rows: list[NewEventRow],
        slots: list[int],
        rejections: list[tuple[int, str, str]],
    ) -> None:
        """Register unknown ids (auto-register) or re-read the roster once, then decide."""
        if self._auto_register:
            new_workers = {row[1] for _, row in unknown} - self._workers
            new_stations = {row[2] for _, row in unknown} - self._stations
            self.store.register_ids(sorted(new_workers), sorted(new_stations))
            self._workers |= new_workers
            self._stations |= new_stations
        else:
            # The roster may have grown since start (a console or a config reload added ids).
            self._load_roster()
        late: list[tuple[int, NewEventRow]] = []
        for index, row in unknown:
            if row[1] not in self._workers:
                error = f"worker_id: {row[1]!r} is not in the roster"
            elif row[2] not in self._stations:
                error = f"workstation_id: {row[2]!r} is not in the roster"
            else:
                late.append((index, row))
                continue
            line = lines[index]
            assert isinstance(line, bytes)
            rejections.append(
                (index, excerpt(line), error + " (add it to the config, or use --auto-register)")
            )
        if late:
            # Keep line order in the insert, so of two copies of one event the first is accepted.
            merged = sorted([*zip(slots, rows, strict=True), *late], key=lambda pair: pair[0])
            slots[:] = [index for index, _ in merged]
            rows[:] = [row for _, row in merged]
        rejections.sort(key=lambda item: item[0])


class Checkpointer:
    """Passive WAL checkpoints on a connection of its own; every method runs in its thread."""

    def __init__(self, path: Path | str, durability: Durability) -> None:
        self._path = path
        self._durability = durability
        self._store: Store | None = None

    def open(self) -> None:
        """Open the checkpoint connection (checkpoint thread)."""
        self._store = open_store(self._path, durability=self._durability)

    def run(self) -> None:
        """Copy what is committed into the database file without waiting on the writer."""
        if self._store is not None:
            self._store.checkpoint()

    def close(self) -> None:
        """Close the checkpoint connection (checkpoint thread)."""
        if self._store is not None:
            self._store.close()
            self._store = None
