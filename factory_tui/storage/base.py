"""The storage interface: every read and write the rest of factory-tui makes of its database.

A backend (today `storage.sqlite`) implements `Store` and holds every SQL statement; nothing
outside `factory_tui.storage` speaks SQL or imports a database driver. Rows that cross the seam
are named: `NewEventRow` in, `EventRecord` and `EngineRow` out, `UnitsBucket` for the charts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple, Protocol, Self

from factory_tui.config import DEFAULT_SITE_ID
from factory_tui.models import EngineRow, EventRecord, NewEventRow, RosterEntry, WireEvent
from factory_tui.records import AlertRecord, AuditEntry, AuditRecord, ModelSummary, SiteRecord

InsertStatus = Literal["accepted", "duplicate"]
Durability = Literal["crash", "power"]
"""crash: a commit survives the process dying; power: it survives the machine losing power."""

DEFAULT_SITE: Final = DEFAULT_SITE_ID
"""The site of a database that names none (every database before sites existed)."""
READ_BATCH: Final = 50_000
"""Rows per cursor read: large enough to be cheap per row, small enough to keep a tick short."""

AlertCondition = tuple[str, str, str, int]
"""(kind, subject, details, started_us) of an alert condition holding now."""


class StoreError(Exception):
    """The database cannot be used as asked; the message says why and what to do."""


class StoreUnreachable(StoreError):
    """The database server cannot be reached (refused, timed out, the link cut): worth
    retrying as it is. Other `StoreError`s (a newer schema, a permission refused) need a person."""


class ReadOnlyError(StoreError):
    """A write was attempted on a store opened read-only."""


class RowError(StoreError):
    """A row the database cannot hold (an integer too large, an unencodable string); the
    rest of its batch was not stored either."""


def schema_problem(location: str, found: int, known: int, *, read_only: bool) -> str | None:
    """Why a database with schema version `found` cannot be opened by a factory-tui that knows
    versions up to `known` (None: it can; a writer migrates an older one in place)."""
    if found > known:
        return (
            f"{location} was written by a newer factory-tui (schema {found}, this one knows "
            f"{known}); upgrade factory-tui"
        )
    if read_only and found == 0:
        return f"{location} is not a factory-tui database"
    if read_only and found < known:
        return (
            f"{location} uses an older schema ({found}); open it once with write access "
            "(`factory-tui serve`) to migrate it"
        )
    return None


class UnitsBucket(NamedTuple):
    """A worker's units at one station in one fixed-length time bucket."""

    station_id: str
    bucket: int
    """Index of the bucket from the start of the range."""
    units: int
    first_us: int
    last_us: int


class Store(Protocol):
    """One open database, scoped to one site: every read and write below concerns `site_id`
    (`scoped` gives the same connection for another site). Not shared between threads: open
    one per thread."""

    read_only: bool
    location: str
    """Where the data lives, as a user would name it in a message (a path, a masked URL)."""
    site_id: str

    def scoped(self, site_id: str) -> Store:
        """The same connection, reading and writing another site's data (close the original)."""

    def close(self) -> None:
        """Close the connection."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def schema_version(self) -> int:
        """The schema version recorded in the database (0 for a new, empty one)."""

    # --- the process that owns the listener ---------------------------------------------------

    def set_owner(self, pid: int, host: str, port: int) -> None:
        """Record which process listens for this database, so a second console can find it."""

    def owner(self) -> tuple[int, str, int] | None:
        """(pid, host, port) of the process that last recorded itself as the listener."""

    # --- roster -------------------------------------------------------------------------------

    def upsert_roster(
        self, workers: Iterable[RosterEntry], workstations: Iterable[RosterEntry]
    ) -> None:
        """Insert or rename roster rows (from config on start); rows not named are kept."""

    def register_ids(self, worker_ids: Iterable[str], workstation_ids: Iterable[str]) -> None:
        """Add ids not yet in the roster, named by their id (auto-registration)."""

    def workers(self) -> dict[str, str]:
        """Worker id -> name, in id order."""

    def workstations(self) -> dict[str, str]:
        """Workstation id -> name, in id order."""

    # --- writing events -----------------------------------------------------------------------

    def insert_rows(self, rows: Sequence[NewEventRow]) -> list[InsertStatus]:
        """Store rows in one transaction; per row, accepted (new) or duplicate (hash known)."""

    def insert_fresh_rows(self, rows: Sequence[NewEventRow]) -> list[InsertStatus]:
        """`insert_rows` for rows that are most likely all new (a forwarded backlog): as fast
        as the backend can store rows it need not check first, exact statuses all the same."""

    def insert_batch(
        self, events: Sequence[WireEvent], received_us: int | None = None
    ) -> list[InsertStatus]:
        """`insert_rows` for validated events, received now unless told otherwise."""

    def checkpoint(self) -> None:
        """Move committed writes into the main database file, without waiting on writers."""

    # --- reading events -----------------------------------------------------------------------

    def read_since(self, cursor: int, limit: int = READ_BATCH) -> list[EventRecord]:
        """Rows with id > cursor, in id order, at most `limit` (the engine's tick read)."""

    def iter_since(self, cursor: int = 0, batch: int = READ_BATCH) -> Iterator[EventRecord]:
        """Every row with id > cursor, read in batches with no transaction held in between."""

    def iter_range(
        self, from_us: int | None = None, to_us: int | None = None, batch: int = READ_BATCH
    ) -> Iterator[EventRecord]:
        """Rows with from_us <= ts_us < to_us in (ts_us, id) order, read in batches."""

    def latest_events(self, limit: int = 50, worker_id: str | None = None) -> list[EventRecord]:
        """The newest rows (by id), newest first; of one worker: by timestamp, newest first."""

    def count_events(self) -> int:
        """Number of stored events."""

    def max_event_id(self) -> int:
        """Id of the newest stored row (0 when empty)."""

    def count_since(self, cursor: int) -> int:
        """Number of stored rows with id > cursor (a forward backlog)."""

    def time_span(self) -> tuple[int, int] | None:
        """The oldest and newest event timestamps (None when there are no events)."""

    # --- the engine's warm start --------------------------------------------------------------

    def engine_rows(self, from_us: int, to_us: int) -> Iterable[EngineRow]:
        """Every event with from_us <= ts_us <= to_us, as the engine reads it, in any order."""

    def worker_ids(self) -> list[str]:
        """The distinct worker ids of the stored events."""

    def engine_rows_before(
        self, worker_id: str, before_us: int, *, state_only: bool
    ) -> list[EngineRow]:
        """Every event of the worker at the instant of its latest event (with `state_only`:
        its latest state event) before `before_us`; none when there is no such event."""

    def stations_before(self, before_us: int) -> list[str]:
        """Workstation ids seen in events older than `before_us`."""

    # --- what the views read ------------------------------------------------------------------

    def units_by_bucket(
        self, worker_id: str, from_us: int, to_us: int, bucket_us: int, max_id: int
    ) -> list[UnitsBucket]:
        """The worker's product_count units in [from_us, to_us) per station and bucket, counting
        only rows with id <= max_id (what the engine has folded in)."""

    def model_first_seen(self) -> list[tuple[str | None, int]]:
        """Each model_version stored (None: events that named none) and its first timestamp."""

    def model_summary(
        self, from_us: int, to_us: int, max_id: int | None = None
    ) -> list[ModelSummary]:
        """Per model_version: events, mean and lowest confidence, units in [from_us, to_us)
        (with `max_id`: of the rows with id <= max_id, what a cursor has read)."""

    # --- alerts -------------------------------------------------------------------------------

    def sync_alerts(self, conditions: Iterable[AlertCondition], at_us: int) -> None:
        """Make the active alerts match the conditions holding at `at_us`, in one transaction:
        a new condition raises an alert from its start, a held one keeps its start and takes
        the new details, an alert whose condition is gone is cleared at `at_us`."""

    def alerts(self, active_only: bool = False, limit: int = 500) -> list[AlertRecord]:
        """Alerts, newest first."""

    def alerts_raised(self, from_us: int, to_us: int) -> list[AlertRecord]:
        """Alerts raised in [from_us, to_us), oldest first (a shift's report)."""

    # --- sites, forwarding and retention ------------------------------------------------------

    def sites(self) -> list[SiteRecord]:
        """Every site described in the database, in id order."""

    def describe_site(self, name: str, description: Mapping[str, Any], at_us: int) -> None:
        """Record this site's name and description (time zone, shifts, max_gap_s, roster)."""

    def forward_cursor(self, target: str) -> int:
        """Id of the last event of this database known to be committed at `target` (0: none)."""

    def set_forward_cursor(self, target: str, last_id: int, at_us: int) -> None:
        """Record that every event up to `last_id` is committed at `target`."""

    def delete_events_before(self, before_us: int, *, max_id: int, limit: int) -> int:
        """Delete up to `limit` of this site's events older than `before_us` with id <= max_id
        (retention, in small transactions); returns how many were deleted."""

    # --- the audit trail ----------------------------------------------------------------------

    def add_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to this site's audit trail, in one transaction."""

    def audit_entries(
        self, limit: int = 200, *, kinds: Collection[str] | None = None
    ) -> list[AuditRecord]:
        """This site's newest audit entries, newest first (with `kinds`: only those kinds)."""

    def delete_audit_before(self, before_us: int, *, limit: int) -> int:
        """Delete up to `limit` of this site's audit entries older than `before_us`
        (retention); returns how many were deleted."""
