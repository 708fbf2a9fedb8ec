"""The listener's audit trail: who connected, who was refused, who failed to authenticate.

Each entry goes to the log at once (logger `factory_tui.audit`) and to the store's `audit`
table a moment later: entries made on the event loop are gathered for `DELAY_S` and written
together by the listener's writer thread, between two batches, so a burst of connections
costs one small transaction rather than one each, and the event loop never waits on the
database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from factory_tui.models import now_us
from factory_tui.records import AUDIT_KINDS, AuditEntry

log = logging.getLogger("factory_tui.audit")

DELAY_S: Final = 0.2
"""Entries made within this long of each other are written in one transaction."""

WriteAudit = Callable[[list[AuditEntry]], "asyncio.Future[None]"]
"""Writes entries to the store off the event loop (the listener's writer thread)."""


class AuditTrail:
    """Audit entries of one listener: logged now, stored in small batches."""

    def __init__(self, write: WriteAudit, *, delay_s: float = DELAY_S) -> None:
        self._write = write
        self._delay_s = delay_s
        self._pending: list[AuditEntry] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writing: set[asyncio.Future[None]] = set()
        self.recorded = 0
        """Entries recorded since the start."""

    def record(self, kind: str, peer: str, detail: str = "") -> None:
        """Log an entry and queue it for the store (event loop thread)."""
        if kind not in AUDIT_KINDS:
            raise ValueError(f"unknown audit kind {kind!r}")
        log.info("audit: %s %s%s", kind, peer, f" ({detail})" if detail else "")
        self._pending.append(AuditEntry(now_us(), kind, peer, detail))
        self.recorded += 1
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay_s, self.flush)

    def flush(self) -> None:
        """Hand what is queued to the writer now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        entries, self._pending = self._pending, []
        future = self._write(entries)
        self._writing.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[None]) -> None:
        self._writing.discard(future)
        if not future.cancelled() and future.exception() is not None:
            # The entries are in the log already; the table misses them.
            log.warning("could not store audit entries: %s", future.exception())

    async def drain(self) -> None:
        """Write what is queued and wait until every write has ended."""
        self.flush()
        if self._writing:
            await asyncio.wait(list(self._writing))
