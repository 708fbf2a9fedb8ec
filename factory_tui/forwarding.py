"""Store-and-forward: ship one site's events from its own database to a central one.

A site box keeps its own database as the buffer in front of the central one (PostgreSQL, or a
SQLite file for a small company or the demo). `Forwarder` copies the site's events there in id
order, in batches, through the storage interface. Each batch is one central transaction, and
`insert_rows` is idempotent on (site, event hash): a batch sent again because the link dropped
after the central commit but before we heard of it comes back "already there", never as a
second copy. The cursor (the last id known to be committed centrally) is kept in the site's own
database and advanced only after the central commit. The site's name and description (time
zone, shifts, max_gap_s) and its roster travel too, so the central side needs no per-site
configuration.

The forwarder never touches the listener: the listener writes to the site database whatever
happens centrally, so the site keeps accepting and acknowledging while the central database is
unreachable; the backlog waits on the site's disk, the forwarder retries with a capped,
jittered exponential backoff, and drains the backlog oldest first once the link is back.

No Textual here: `factory-tui forward` runs a `Forwarder` in its main thread; `serve` and the
console run one in a `BackgroundForwarder` thread and read its `state()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from factory_tui.config import Settings
from factory_tui.models import NewEventRow, RosterEntry, now_us
from factory_tui.records import ForwardState
from factory_tui.storage import (
    DEFAULT_SITE,
    Durability,
    RowError,
    Store,
    StoreError,
    StoreUnreachable,
    is_postgres_url,
    mask_url,
    open_store,
)

log = logging.getLogger("factory_tui.forward")

BATCH_SIZE: Final = 20_000
INTERVAL_S: Final = 1.0
RETRY_FIRST_S: Final = 0.5
RETRY_MAX_S: Final = 60.0
STOP_TIMEOUT_S: Final = 30.0
"""How long `BackgroundForwarder.stop` waits for a batch in flight (or a connect) to end."""

Side = Literal["site", "central"]
TargetOpener = Callable[[str, str], Store]
"""Opens the central database (location, site id), writable."""


class ForwardError(Exception):
    """Forwarding cannot run as asked; the message is one sentence saying why."""


class _Failure(Exception):
    """A database on one side failed; the round ends and is retried after a backoff."""

    def __init__(self, side: Side, error: StoreError) -> None:
        super().__init__(str(error))
        self.side: Side = side
        self.unreachable = isinstance(error, StoreUnreachable)
        """The link or server is down (shown as "unreachable for 3m"); otherwise the server
        answered with a refusal (a newer schema, a permission) that is shown as it is."""


@dataclass(frozen=True, slots=True)
class ForwardTally:
    """What a forwarder has shipped since it started."""

    forwarded: int = 0
    """Events new at the target."""
    already_there: int = 0
    """Events the target held already (sent before, its acknowledgement lost on the way)."""
    batches: int = 0
    """Central transactions that committed."""
    refused: int = 0
    """Events the target cannot hold (a value it cannot store); logged and passed over."""
    elapsed_s: float = 0.0

    @property
    def events(self) -> int:
        """Events the cursor moved past."""
        return self.forwarded + self.already_there + self.refused

    @property
    def rate_per_s(self) -> float:
        """Events per second over the run."""
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> str:
        """The final tally as one line."""
        text = (
            f"forwarded {self.forwarded:,}, already there {self.already_there:,}, "
            f"in {self.batches:,} batch{'' if self.batches == 1 else 'es'}, "
            f"{self.elapsed_s:.1f} s ({self.rate_per_s:,.0f} events/s)"
        )
        if self.refused:
            text += f"; {self.refused:,} refused by the target (see the log)"
        return text


class Backoff:
    """Exponential waits between attempts: doubling from `first_s`, capped at `max_s`, each
    jittered down by up to half so that sites cut off together do not retry in step."""

    def __init__(self, first_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_s(self) -> float:
        """The wait before the next attempt."""
        ceiling = min(self.max_s, self.first_s * 2.0 ** min(self._attempt, 32))
        self._attempt += 1
        return ceiling * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        """An attempt succeeded: start again from `first_s`."""
        self._attempt = 0


def location_name(location: Path | str) -> str:
    """A database location as messages and cursor keys name it: a URL with its password
    masked, or an absolute path (the same file whatever folder the command ran in)."""
    if is_postgres_url(location):
        return mask_url(str(location))
    return str(Path(location).expanduser().resolve())


def cursor_key(target: Path | str, site_id: str) -> str:
    """The name of the forward cursor of `site_id` towards `target` in the site's database:
    one per (site, target), so a file holding several sites forwards each of them apart."""
    return f"{site_id} -> {location_name(target)}"


def choose_site(stored: Sequence[str], configured: str, *, explicit: bool) -> str:
    """The site to forward from a database holding the sites `stored`: the configured one,
    or, when none was asked for and the database holds exactly one other, that one."""
    if explicit or configured in stored or not stored:
        return configured
    if len(stored) == 1:
        return stored[0]
    raise ForwardError(
        f"the database holds sites {', '.join(stored)} and not {configured!r}: "
        "say which with --site (or [site] id)"
    )


def _open_target(location: str, site_id: str) -> Store:
    return open_store(location, site=site_id)


class _ReadAhead:
    """Reads the site's next batch in a thread of its own (with its own read-only connection)
    while the current batch is on its way: the central commit is the slow part and runs on
    the server, so the site's read and the rows' conversion hide behind it."""

    def __init__(self, source: Path | str, site_id: str, batch_size: int) -> None:
        self._source = source
        self._site_id = site_id
        self._batch_size = batch_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward-read")
        self._store: Store | None = None
        """Used only in the pool's thread."""

    def read(self, after: int) -> Future[tuple[int, list[NewEventRow]]]:
        """The rows after id `after` (at most a batch) and the id of the last one."""
        return self._pool.submit(self._read, after)

    def reset(self) -> None:
        """Close the connection (after a failure); the next read opens a new one."""
        self._pool.submit(self._close)

    def close(self) -> None:
        """Close the connection and end the thread."""
        self._pool.submit(self._close)
        self._pool.shutdown(wait=True)

    def _read(self, after: int) -> tuple[int, list[NewEventRow]]:
        if self._store is None:
            self._store = open_store(self._source, read_only=True, site=self._site_id)
        rows = self._store.read_since(after, self._batch_size)
        return (rows[-1].id if rows else after), [row.as_new_row() for row in rows]

    def _close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(StoreError):
                self._store.close()
            self._store = None


class Forwarder:
    """Ships one site's events (and its description and roster) to a target database.

    `run` does the work in the calling thread (it opens both stores there); `state` and
    `tally` may be read from any thread.
    """

    def __init__(
        self,
        source: Path | str,
        target: Path | str,
        *,
        site_id: str = DEFAULT_SITE,
        site_name: str = "",
        description: Mapping[str, Any] | None = None,
        batch_size: int = BATCH_SIZE,
        interval_s: float = INTERVAL_S,
        retry_first_s: float = RETRY_FIRST_S,
        retry_max_s: float = RETRY_MAX_S,
        durability: Durability = "crash",
        open_target: TargetOpener = _open_target,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        on_progress: Callable[[Forwarder], None] | None = None,
    ) -> None:
        self.source = source
        self.target = str(target)
        self.site_id = site_id
        self.source_name = location_name(source)
        self.target_name = location_name(target)
        if self.source_name == self.target_name:
            raise ForwardError(f"the forward target {self.target_name} is this site's own database")
        self.key = cursor_key(target, site_id)
        """The name of our cursor in the site's database."""
        self.batch_size = batch_size
        self.interval_s = interval_s
        self._fallback_name = site_name or site_id
        self._fallback_description = dict(description or {})
        self._durability: Durability = durability
        self._open_target = open_target
        self._backoff = Backoff(retry_first_s, retry_max_s, rng)
        self._monotonic = monotonic
        self._on_progress = on_progress
        self._source_store: Store | None = None
        self._target_store: Store | None = None
        self._reader: _ReadAhead | None = None
        self._sent_description: tuple[Any, ...] | None = None
        """What the target was last told of the site on this connection."""
        self._cursor: int | None = None
        self.caught_up = threading.Event()
        """Set while the latest round found nothing left to send; cleared when one finds rows."""
        self._lock = threading.Lock()
        self._behind: int | None = None
        self._down_since: float | None = None
        self._error = ""
        self._tally = ForwardTally()
        self._started = monotonic()

    @classmethod
    def from_settings(
        cls, settings: Settings, target: Path | str | None = None, **options: Any
    ) -> Forwarder:
        """The forwarder of this site's configured database to `target` (default
        `forward.url`), with the configured batch size, interval and retry cap."""
        forward = settings.forward
        where = target if target is not None else forward.url
        if where is None:
            raise ForwardError("no forward target: pass --to, or set [forward] url")
        options.setdefault("batch_size", forward.batch_size)
        options.setdefault("interval_s", forward.interval_s)
        options.setdefault("retry_max_s", forward.retry_max_s)
        options.setdefault("retry_first_s", min(RETRY_FIRST_S, forward.retry_max_s))
        return cls(
            settings.store.location,
            where,
            site_id=settings.site.id,
            site_name=settings.site.label,
            description=settings.site_description(),
            durability=settings.store.durability,
            **options,
        )

    # --- what others read ---------------------------------------------------------------------

    def state(self) -> ForwardState:
        """Where forwarding stands now."""
        with self._lock:
            # Whole seconds: a console redraws the text only when it changes.
            down = None
            if self._down_since is not None:
                down = float(int(self._monotonic() - self._down_since))
            return ForwardState(self.target_name, self._behind, down, self._error)

    @property
    def cursor(self) -> int | None:
        """Id of the site's last event known to be committed at the target (None: not read
        from the site's database yet)."""
        return self._cursor

    @property
    def tally(self) -> ForwardTally:
        """What was shipped since the start, and how long that took so far."""
        with self._lock:
            tally = self._tally
        return ForwardTally(
            tally.forwarded,
            tally.already_there,
            tally.batches,
            tally.refused,
            self._monotonic() - self._started,
        )

    # --- the loop -----------------------------------------------------------------------------

    def run(
        self, stop: threading.Event, *, once: bool = False, give_up_after: int | None = None
    ) -> ForwardTally:
        """Forward until `stop` is set (with `once`: until caught up), retrying failures after
        a backoff; returns the tally. With `give_up_after`, that many failures in a row (or one
        refusal by the central database) raise ForwardError instead. Both stores are opened in
        this thread and closed on return."""
        self._started = self._monotonic()
        self._reader = _ReadAhead(self.source, self.site_id, self.batch_size)
        failures = 0
        try:
            while not stop.is_set():
                try:
                    caught_up = self._round(stop)
                except _Failure as failure:
                    failures += 1
                    self._failed(failure)
                    # A refusal (no such database, a newer schema) will not pass by itself:
                    # a run that is to give up does so at once rather than after the retries.
                    refused = failure.side == "central" and not failure.unreachable
                    if give_up_after is not None and (failures >= give_up_after or refused):
                        behind = self.state().behind
                        waiting = "its events" if behind is None else f"{behind:,} events"
                        raise ForwardError(
                            f"{failure}; {waiting} wait in {self.source_name}"
                        ) from None
                    stop.wait(self._backoff.next_s())
                    continue
                failures = 0
                self._backoff.reset()
                if caught_up:
                    if once:
                        break
                    stop.wait(self.interval_s)
        finally:
            self._reader.close()
            self._close_target()
            if self._source_store is not None:
                self._source_store.close()
                self._source_store = None
        return self.tally

    def _round(self, stop: threading.Event) -> bool:
        """Ship batches until caught up (True) or stopped (False); raises _Failure."""
        source = self._source()
        with self._side("site"):
            if self._cursor is None:
                self._cursor = source.forward_cursor(self.key)
            cursor = self._cursor
            behind = source.count_since(cursor)
        with self._lock:
            self._behind = behind
        target = self._target()
        self._describe(source, target)
        self._reachable()
        reader = self._reader
        assert reader is not None
        pending: Future[tuple[int, list[NewEventRow]]] | None = reader.read(cursor)
        while pending is not None and not stop.is_set():
            with self._side("site"):
                last, batch = pending.result()
            if not batch:
                self._set_behind(0)
                self.caught_up.set()
                return True
            self.caught_up.clear()
            # A full batch: there may be more, read it while this one is shipped.
            pending = reader.read(last) if len(batch) == self.batch_size else None
            shipped = self._ship(target, batch)
            with self._side("site"):
                source.set_forward_cursor(self.key, last, now_us())
            self._cursor = last
            self._count(shipped, len(batch))
            if self._on_progress is not None:
                self._on_progress(self)
        if pending is None:
            self.caught_up.set()
            return True
        return False

    def _ship(self, target: Store, batch: Sequence[NewEventRow]) -> tuple[int, int, int]:
        """Store a batch at the target in one transaction: (new, already there, refused)."""
        try:
            with self._side("central"):
                statuses = target.insert_fresh_rows(batch)
        except _Failure as failure:
            if not isinstance(failure.__cause__, RowError):
                raise
            return self._ship_one_by_one(target, batch)
        new = statuses.count("accepted")
        return new, len(statuses) - new, 0

    def _ship_one_by_one(self, target: Store, batch: Sequence[NewEventRow]) -> tuple[int, int, int]:
        """A batch the target refused as a whole: each row on its own, so one value it cannot
        hold (a NUL character in a text, for PostgreSQL) does not hold back every later event."""
        new = there = refused = 0
        for row in batch:
            try:
                with self._side("central"):
                    (status,) = target.insert_rows([row])
            except _Failure as failure:
                if not isinstance(failure.__cause__, RowError):
                    raise
                refused += 1
                log.warning(
                    "forward: %s cannot hold event %s of site %s (%s); passed over",
                    self.target_name,
                    row.event_hash,
                    self.site_id,
                    failure,
                )
                continue
            if status == "accepted":
                new += 1
            else:
                there += 1
        return new, there, refused

    def _describe(self, source: Store, target: Store) -> None:
        """Tell the target the site's name, description and roster when they changed."""
        with self._side("site"):
            record = next((site for site in source.sites() if site.id == self.site_id), None)
            workers = source.workers()
            stations = source.workstations()
        name = record.name if record is not None else self._fallback_name
        description = dict(record.description) if record is not None else {}
        description = description or self._fallback_description
        at_us = record.updated_us if record is not None and record.updated_us else now_us()
        told = (
            name,
            json.dumps(description, sort_keys=True),
            tuple(workers.items()),
            tuple(stations.items()),
        )
        if told == self._sent_description:
            return
        with self._side("central"):
            target.describe_site(name, description, at_us)
            target.upsert_roster(
                [RosterEntry(ident, label) for ident, label in workers.items()],
                [RosterEntry(ident, label) for ident, label in stations.items()],
            )
        self._sent_description = told

    # --- the stores ---------------------------------------------------------------------------

    def _source(self) -> Store:
        if self._source_store is None:
            with self._side("site"):
                self._source_store = open_store(
                    self.source, durability=self._durability, site=self.site_id
                )
        return self._source_store

    def _target(self) -> Store:
        if self._target_store is None:
            with self._side("central"):
                self._target_store = self._open_target(self.target, self.site_id)
            self._sent_description = None
        return self._target_store

    def _close_target(self) -> None:
        if self._target_store is not None:
            with contextlib.suppress(StoreError):
                self._target_store.close()
            self._target_store = None

    @contextlib.contextmanager
    def _side(self, side: Side) -> Iterator[None]:
        try:
            yield
        except StoreError as error:
            raise _Failure(side, error) from error

    # --- state --------------------------------------------------------------------------------

    def _failed(self, failure: _Failure) -> None:
        if failure.side == "central":
            self._close_target()
        else:
            if self._reader is not None:
                self._reader.reset()
            if self._source_store is not None:
                with contextlib.suppress(StoreError):
                    self._source_store.close()
                self._source_store = None
        with self._lock:
            down = failure.side == "central" and failure.unreachable
            first = self._down_since is None and down
            changed = str(failure) != self._error
            if first:
                self._down_since = self._monotonic()
            elif not down:
                self._down_since = None
            self._error = str(failure) if failure.side == "central" else f"site: {failure}"
        if first or changed:
            where = self.target_name if failure.side == "central" else self.source_name
            log.warning(
                "forward: %s failed: %s; retrying (events wait in %s)",
                where,
                failure,
                self.source_name,
            )
        if self._on_progress is not None:
            self._on_progress(self)

    def _reachable(self) -> None:
        with self._lock:
            down_since, self._down_since, self._error = self._down_since, None, ""
            behind = self._behind
        if down_since is not None:
            log.info(
                "forward: %s reachable again after %.0f s; %s events to forward",
                self.target_name,
                self._monotonic() - down_since,
                f"{behind:,}" if behind is not None else "some",
            )
            if self._on_progress is not None:
                self._on_progress(self)

    def _set_behind(self, behind: int) -> None:
        with self._lock:
            self._behind = behind

    def _count(self, shipped: tuple[int, int, int], rows: int) -> None:
        new, there, refused = shipped
        with self._lock:
            tally = self._tally
            self._tally = ForwardTally(
                tally.forwarded + new,
                tally.already_there + there,
                tally.batches + 1,
                tally.refused + refused,
            )
            if self._behind is not None:
                self._behind = max(0, self._behind - rows)


class BackgroundForwarder:
    """A `Forwarder` in a thread of its own, beside a listener (`serve`, the console)."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="factory-tui forward", daemon=True)

    def start(self) -> None:
        """Start forwarding."""
        log.info("forwarding site %s to %s", self.forwarder.site_id, self.forwarder.target_name)
        self._thread.start()

    def state(self) -> ForwardState:
        """Where forwarding stands now."""
        return self.forwarder.state()

    @property
    def running(self) -> bool:
        """The thread is forwarding (started, not stopped yet)."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop after the batch in flight (its cursor is kept); the rest waits for next time."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self.forwarder.run(self._stop)
        except Exception:  # a bug: say so in the log, the listener goes on
            log.exception("forwarding stopped")
