"""Retention: events older than `[store] keep_days` deleted while `serve` or the console runs.

Disks fill: a 200-camera floor writes about 1.7M events a day. `Retention.sweep` deletes, for
every site in the database, the events older than the cut-off through
`Store.delete_events_before`, a bounded number of rows per transaction with a short pause
between two, so the listener's writer never waits long for the database. With forwarding on
(`[forward] url`) an event goes only once it is committed at the central database: a site's
sweep never passes its forward cursor towards that target (the same cursor the forwarder
advances, named by `forwarding.cursor_key`).

The audit trail (`[audit] keep_days`) is swept the same way, by its own cut-off.

`BackgroundRetention` sweeps in a thread of its own, with its own connection opened in that
thread, at start and then every `INTERVAL_S`, and logs what it deleted. No SQL here (it is all
behind the storage interface) and no Textual.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from factory_tui.config import Settings
from factory_tui.forwarding import cursor_key
from factory_tui.models import iso_utc, now_us
from factory_tui.storage import Store, StoreError, open_store

log = logging.getLogger("factory_tui.retention")

BATCH: Final = 500
"""Events deleted per transaction: about 50 ms of SQLite's write lock on a busy 2-core box
(PostgreSQL, which locks rows, not the database: under 10 ms)."""
PAUSE_S: Final = 0.05
"""Between two transactions, so the listener's writer gets the lock in between."""
INTERVAL_S: Final = 300.0
"""How often a background sweep runs."""
STOP_TIMEOUT_S: Final = 30.0
"""How long `BackgroundRetention.stop` waits for the transaction in flight to end."""
US_PER_DAY: Final = 86_400 * 1_000_000
_NEVER_BEFORE: Final = -(2**63)
"""The cut-off when events are kept: no timestamp is before it."""
NO_LIMIT: Final = 2**63 - 1
"""The highest id a sweep may delete when nothing is forwarded."""

StoreOpener = Callable[[], Store]
"""Opens the database, writable (called in the thread that uses the store)."""


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep deleted."""

    before_us: int
    """The cut-off: events with an older timestamp went (if forwarded, when forwarding)."""
    deleted: Mapping[str, int]
    """Events deleted per site, for the sites that lost any."""
    audit_deleted: int = 0
    """Audit entries deleted, over all sites (`[audit] keep_days`)."""
    audit_before_us: int | None = None
    """The audit trail's cut-off (None: not swept)."""

    @property
    def total(self) -> int:
        """Events deleted over all sites."""
        return sum(self.deleted.values())

    def describe(self) -> str:
        """What was deleted, as one log line."""
        said = []
        if self.deleted:
            parts = ", ".join(f"{count:,} of site {site}" for site, count in self.deleted.items())
            said.append(f"deleted {parts} (timestamps before {iso_utc(self.before_us)})")
        if self.audit_deleted and self.audit_before_us is not None:
            said.append(
                f"deleted {self.audit_deleted:,} audit entries (before "
                f"{iso_utc(self.audit_before_us)})"
            )
        return "retention: " + "; ".join(said or ["nothing to delete"])


class Retention:
    """Which events a sweep deletes: older than `keep_days` before the clock, and, with a
    `forward_target`, already forwarded there."""

    def __init__(
        self,
        keep_days: float | None,
        *,
        forward_target: Path | str | None = None,
        audit_keep_days: float | None = None,
        batch: int = BATCH,
        pause_s: float = PAUSE_S,
        clock: Callable[[], int] = now_us,
    ) -> None:
        for name, days in (("keep_days", keep_days), ("audit keep_days", audit_keep_days)):
            if days is not None and days <= 0:
                raise ValueError(f"{name} must be above 0, got {days:g}")
        self.keep_days = keep_days
        """Events older than this many days go (None: events are kept)."""
        self.audit_keep_days = audit_keep_days
        """Audit entries older than this many days go (None: they are kept)."""
        self.forward_target = forward_target
        self.batch = batch
        self.pause_s = pause_s
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention | None:
        """The configured retention (None: `[store] keep_days` unset, keep everything)."""
        keep_days = settings.store.keep_days
        audit_days = settings.audit.keep_days
        if keep_days is None and audit_days is None:
            return None
        return cls(keep_days, forward_target=settings.forward.url, audit_keep_days=audit_days)

    def cut_off_us(self) -> int:
        """Events with a timestamp before this go (none when events are kept)."""
        if self.keep_days is None:
            return _NEVER_BEFORE
        return self._clock() - round(self.keep_days * US_PER_DAY)

    def sweep(self, store: Store, stop: threading.Event | None = None) -> Sweep:
        """Delete every site's events older than the cut-off, never one not yet forwarded.
        Stops early once `stop` is set (the rest waits for the next sweep)."""
        stop = stop or threading.Event()
        before_us = self.cut_off_us()
        sites = sorted({store.site_id, *(site.id for site in store.sites())})
        deleted: dict[str, int] = {}
        for site_id in sites if self.keep_days is not None else ():
            if stop.is_set():
                break
            count = self._sweep_site(store.scoped(site_id), before_us, stop)
            if count:
                deleted[site_id] = count
        if self.audit_keep_days is None:
            return Sweep(before_us, deleted)
        audit_before_us = self._clock() - round(self.audit_keep_days * US_PER_DAY)
        audit_deleted = 0
        for site_id in sites:
            audit_deleted += self._sweep_audit(store.scoped(site_id), audit_before_us, stop)
        return Sweep(before_us, deleted, audit_deleted, audit_before_us)

    def _sweep_audit(self, store: Store, before_us: int, stop: threading.Event) -> int:
        total = 0
        while not stop.is_set():
            count = store.delete_audit_before(before_us, limit=self.batch)
            total += count
            if count < self.batch:
                break
            stop.wait(self.pause_s)
        return total

    def _sweep_site(self, store: Store, before_us: int, stop: threading.Event) -> int:
        max_id = NO_LIMIT
        if self.forward_target is not None:
            max_id = store.forward_cursor(cursor_key(self.forward_target, store.site_id))
        total = 0
        while not stop.is_set():
            count = store.delete_events_before(before_us, max_id=max_id, limit=self.batch)
            total += count
            if count < self.batch:
                break
            stop.wait(self.pause_s)
        return total


class BackgroundRetention:
    """A `Retention` sweeping in a thread of its own beside a listener (`serve`, the console)."""

    def __init__(
        self, retention: Retention, open_writer: StoreOpener, *, interval_s: float = INTERVAL_S
    ) -> None:
        self.retention = retention
        self.interval_s = interval_s
        self._open_writer = open_writer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="factory-tui retention", daemon=True)
        self._lock = threading.Lock()
        self._sweeps = 0
        self._deleted = 0
        self.swept = threading.Condition(self._lock)
        """Notified after every sweep, done or failed (`wait_for_sweeps` waits on it)."""

    @classmethod
    def from_settings(
        cls, settings: Settings, *, interval_s: float = INTERVAL_S
    ) -> BackgroundRetention | None:
        """Retention of the configured database (None: `[store] keep_days` unset)."""
        retention = Retention.from_settings(settings)
        if retention is None:
            return None
        store = settings.store

        def open_writer() -> Store:
            return open_store(store.location, durability=store.durability, site=settings.site.id)

        return cls(retention, open_writer, interval_s=interval_s)

    def start(self) -> None:
        """Sweep now, then every `interval_s`."""
        forwarded = "" if self.retention.forward_target is None else ", once forwarded"
        if self.retention.keep_days is not None:
            log.info(
                "retention: events older than %s are deleted every %.0f s%s",
                _days(self.retention.keep_days),
                self.interval_s,
                forwarded,
            )
        if self.retention.audit_keep_days is not None:
            log.info(
                "retention: audit entries older than %s are deleted every %.0f s",
                _days(self.retention.audit_keep_days),
                self.interval_s,
            )
        self._thread.start()

    @property
    def running(self) -> bool:
        """The thread runs (started, not stopped yet)."""
        return self._thread.is_alive()

    @property
    def deleted(self) -> int:
        """Events deleted since the start."""
        with self._lock:
            return self._deleted

    def wait_for_sweeps(self, count: int, timeout_s: float) -> bool:
        """Wait until `count` sweeps have ended; False when `timeout_s` passed first."""
        with self.swept:
            return self.swept.wait_for(lambda: self._sweeps >= count, timeout_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop after the transaction in flight; the rest waits for the next start."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        store: Store | None = None
        try:
            while not self._stop.is_set():
                deleted = 0
                try:
                    if store is None:
                        store = self._open_writer()
                    sweep = self.retention.sweep(store, self._stop)
                except StoreError as error:
                    log.warning("retention: %s; trying again in %.0f s", error, self.interval_s)
                    _close(store)
                    store = None
                else:
                    deleted = sweep.total
                    if deleted or sweep.audit_deleted:
                        log.info("%s", sweep.describe())
                with self.swept:
                    self._sweeps += 1
                    self._deleted += deleted
                    self.swept.notify_all()
                self._stop.wait(self.interval_s)
        except Exception:  # a bug: say so in the log, the listener goes on
            log.exception("retention stopped")
        finally:
            _close(store)


def _close(store: Store | None) -> None:
    if store is not None:
        with contextlib.suppress(StoreError):
            store.close()


def _days(count: float) -> str:
    """`1 day`, `30 days`, `0.5 days`."""
    return f"{count:g} day" if count == 1 else f"{count:g} days"
