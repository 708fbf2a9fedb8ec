"""When the console ticks: one tick at a time, a request during a tick runs right after it,
callers can wait for the next tick to land, and figures go stale when ticks stop succeeding.

`TickLoop` runs on the UI thread's event loop and knows nothing of Textual: the app hands it a
function that starts a tick and reports each tick's end. `TickThread` is where the ticks run:
one thread for the console's life, woken for each tick.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Final

STALE_AFTER_TICKS: Final = 3
"""Figures are stale when no tick has succeeded for this many tick intervals."""


class TicksEnded(RuntimeError):
    """No tick will land any more: the console stopped (exit, crash) while someone waited."""


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
        self.closed: str | None = None
        """Why no tick will land any more (None while the loop runs; see `close`)."""

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

    def close(self, reason: str) -> None:
        """No tick will land any more (the app stops): whoever waits in `next_tick` gets
        `TicksEnded(reason)` now rather than waiting forever, and so does any later caller."""
        if self.closed is not None:
            return
        self.closed = reason
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            if not future.done():
                future.set_exception(TicksEnded(reason))

    async def next_tick(self) -> None:
        """Wait for the next tick to start and end (right now, or right after the running
        one, which may have read the store before the caller's last write).

        Raises `TicksEnded` once the loop is closed, or when it closes during the wait."""
        if self.closed is not None:
            raise TicksEnded(self.closed)
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


class TickThread:
    """One long-lived thread that runs each tick `TickLoop` starts.

    `start(sequence)` wakes the thread to call `run(sequence)`; `run` reports the tick's end
    itself (the app's posts a message to the UI thread). One thread woken per tick rather than
    a Textual thread worker per tick (an asyncio task, an executor hand-off and state messages
    for the UI thread each time): with 200 workers, request to tick start went from 0.3-0.5 to
    0.1 ms median and the UI thread's CPU per tick down by about 0.5 ms (benchmarks/tui.py).
    """

    def __init__(self, run: Callable[[int], None], name: str = "factory-tui tick") -> None:
        self._run = run
        self._name = name
        self._wake = threading.Condition()
        self._due: int | None = None
        """The tick to run next (None: none asked for)."""
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self, sequence: int) -> None:
        """Run tick `sequence` in the thread (started on the first tick); nothing once stopped."""
        with self._wake:
            if self._stopping:
                return
            self._due = sequence
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            else:
                self._wake.notify()

    def stop(self) -> None:
        """Ask the thread to end once the tick it runs (if any) has ended; a tick asked for and
        not yet begun is not run, and later `start`s run nothing. Does not wait (see `join`)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()

    def join(self, timeout_s: float | None = None) -> bool:
        """Stop the thread and wait up to `timeout_s` for it to end; True when it has."""
        self.stop()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    @property
    def alive(self) -> bool:
        """The thread is running (started and not yet stopped)."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._due is None and not self._stopping:
                    self._wake.wait()
                sequence, self._due = self._due, None
                if self._stopping or sequence is None:
                    return
            self._run(sequence)
