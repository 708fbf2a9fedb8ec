"""When the console ticks: one tick at a time, a request during a tick runs right after it,
callers can wait for the next tick to land, and figures go stale when ticks stop succeeding.

Runs on the UI thread's event loop and knows nothing of Textual: the app hands it a function
that starts a tick (a thread worker) and reports each tick's end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

STALE_AFTER_TICKS: Final = 3
"""Figures are stale when no tick has succeeded for this many tick intervals."""


class TickLoop:
    """Schedules ticks and tracks whether the figures on screen are current.

    `start(sequence)` launches tick number `sequence`; the owner calls `finished` when it
    ends, successfully or not. Time (`now_s`) is any monotonic clock, passed in.
    """

    def __init__(self, start: Callable[[int], None], tick_s: float, now_s: float) -> None:
        self._start = start
        self._tick_s = tick_s
        self.sequence = 0
        """Number of the last tick started."""
        self._busy = False
        self._pending = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._last_success = now_s
        self.failure: str | None = None
        """Why the last tick failed (None after a success)."""

    def request(self) -> None:
        """Start a tick now, or right after the running one."""
        if self._busy:
            self._pending = True
            return
        self._busy = True
        self._pending = False
        self.sequence += 1
        self._start(self.sequence)

    def finished(self, sequence: int, now_s: float, error: str | None = None) -> bool:
        """Tick `sequence` ended (with `error` when it failed); wakes its waiters. Returns True
        when a tick requested meanwhile should start now (call `request`)."""
        self._busy = False
        if error is None:
            self._last_success = now_s
        self.failure = error
        waiting = []
        for target, future in self._waiters:
            if sequence >= target:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((target, future))
        self._waiters = waiting
        return self._pending

    def resumed(self, now_s: float) -> None:
        """Live updates resume: the silence while paused does not make the figures stale."""
        self._last_success = now_s

    async def next_tick(self) -> None:
        """Wait for the next tick to start and end (right now, or right after the running
        one, which may have read the store before the caller's last write)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self.sequence + 1, future))
        self.request()
        await future

    def stale_reason(self, now_s: float) -> str | None:
        """Why the figures on screen are stale (None while ticks keep succeeding)."""
        if self.failure is not None:
            return self.failure
        if now_s - self._last_success > STALE_AFTER_TICKS * self._tick_s:
            return "the database is not answering"
        return None
