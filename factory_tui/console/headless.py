"""The console's alerts without a console: `serve`'s tick, on a thread of its own.

A site box that runs only `serve` must still raise its alerts and fire their actions: nobody
keeps a console open there. `HeadlessAlerts` runs the console's own `TickPipeline` (the same
warm start, engine, pruning, drift tracker and `AlertKeeper`) every `[metrics] tick_s`, with
nothing on top: the view it builds asks for nothing beyond the Snapshot. As in the console
that owns the listener, the keeper writes the alerts table (so a viewer opened later shows
them) and hands each alert raised or cleared to the actions; here each is also logged.

The tick runs in its own thread, one at a time, never in the event loop: the listener only
shares the interpreter with it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from factory_tui.alert_actions import AlertEvent
from factory_tui.config import Settings
from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.console.pipeline import Clock, TickPipeline
from factory_tui.models import now_us
from factory_tui.storage import Store, StoreError, open_store

log = logging.getLogger("factory_tui.serve")

STOP_WAIT_S: Final = 10.0
"""How long stopping waits for a running tick (a warm start on a large database) to end."""


def log_alert(event: AlertEvent) -> None:
    """One log line per alert raised or cleared: `alert raised: camera_dark W3: no event...`."""
    log.warning("alert %s: %s %s: %s", event.phase, event.kind, event.subject, event.details)


class HeadlessAlerts:
    """Evaluates the alerts every `tick_s` in a thread, as the console owning the listener does.

    `open` opens the stores (a read-only one for the tick, a writable one for the alerts
    table); `start` starts the thread; `stop` ends it after the running tick, then closes the
    stores and gives queued actions up to `alert_actions.CLOSE_WAIT_S`.
    """

    def __init__(self, pipeline: TickPipeline, tick_s: float) -> None:
        self.pipeline = pipeline
        self.tick_s = tick_s
        self.ticks = 0
        """Ticks completed (for tests and logs)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None
        """The last tick's error, logged once until a tick succeeds again."""

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = now_us) -> HeadlessAlerts:
        """The stores and the pipeline for our site; raises StoreError (one sentence)."""
        location, site = settings.store.location, settings.site.id
        reader = open_store(location, read_only=True, site=site)
        writer: Store | None = None
        try:
            writer = open_store(location, durability=settings.store.durability, site=site)
        except StoreError:
            reader.close()
            raise
        keeper = AlertKeeper(settings, writer, announce=log_alert)
        # serve's /metrics reads its own per-model figures: the tick needs no tally of them.
        pipeline = TickPipeline(settings, reader, keeper, clock=clock, tally_models=False)
        return cls(pipeline, settings.metrics.tick_s)

    def start(self) -> None:
        """Start ticking (the first tick, the warm start, at once)."""
        self._thread = threading.Thread(target=self._run, name="factory-tui alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the running tick, close the stores; blocks (call it off the loop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
            if self._thread.is_alive():
                log.warning("alerts: a tick still running after %g s is left", STOP_WAIT_S)
        # Waits for a tick that is still running, then stops the actions.
        self.pipeline.close()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._tick()
            # A fixed rate; a tick longer than tick_s is followed by the next at once.
            next_at = max(next_at + self.tick_s, time.monotonic())
            if self._stop.wait(next_at - time.monotonic()):
                break

    def _tick(self) -> None:
        try:
            result = self.pipeline.tick()
        except StoreError as error:
            self._failed(f"alerts: the database cannot be read: {error}")
            return
        except Exception as error:  # a bug must not end alerting for the rest of the run
            why = f"alerts: the tick failed: {error!r}"
            if why != self._failing:
                log.exception("%s", why)
            self._failing = why
            return
        if result is None:  # closed
            return
        self.ticks += 1
        not_saved = result.view.alerts.error
        if not_saved is not None:
            self._failed(f"alerts: {not_saved}")
            return
        if self._failing is not None:
            log.info("alerts: evaluated again")
            self._failing = None
        if result.initial:
            active = len(result.view.alerts.active)
            log.info(
                "alerts: evaluated every %g s (%d rows loaded, %d active)",
                self.tick_s,
                result.new_rows,
                active,
            )

    def _failed(self, why: str) -> None:
        """Log a failure once, not every tick while it lasts."""
        if why != self._failing:
            log.warning("%s", why)
        self._failing = why
