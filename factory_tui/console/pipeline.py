"""The console's tick, without Textual: store reader, engine, alerts, cursor, roster and window.

Once per tick the app's worker thread calls `TickPipeline.tick`: it reads the rows stored since
the last tick, folds them into the `Engine` and the drift tracker, takes a `Snapshot` at the
clock's "now", evaluates the alerts and builds what the view on top needs (`ViewData`). The
first tick loads only the history the current window needs (`warm_start`). Everything the
screen shows comes out of here as frozen values, so the tick is tested directly, without a
pilot.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, TypeVar

from factory_tui.config import Settings
from factory_tui.console.alert_keeper import ALERT_HISTORY, AlertKeeper
from factory_tui.console.drilldown import view_data
from factory_tui.console.health import HealthReader
from factory_tui.engine import Engine, Window
from factory_tui.engine.rate import RateMeter
from factory_tui.metrics_export import ModelTally
from factory_tui.records import HealthReading, ModelSummary
from factory_tui.storage import READ_BATCH, Store
from factory_tui.view_models import ViewData, ViewNeeds
from factory_tui.warm_start import (
    ShiftWindow,
    drift_keep_floor,
    history_floor,
    keep_floor,
    load_drift_history,
    load_history,
    roster_names,
    shift_window,
)

Clock = Callable[[], int]
"""Returns "now" as UTC epoch microseconds."""

MAX_BATCHES_PER_TICK: Final = 20
"""A tick reads at most this many `READ_BATCH`es; a backlog is worked off over several ticks."""
RATE_WINDOW_S: Final = 5.0
"""The stored-rows rate (a viewer's ingest figure) is over this many seconds."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick computed, for the screen."""

    view: ViewData
    """The Snapshot, the shift and its title, and what the view on top needs."""
    health: HealthReading | None
    new_rows: int
    """Rows folded in by this tick (the whole warm start on the first)."""
    initial: bool
    """This tick was the warm start."""
    rows_per_s: float
    """Rows stored per second over the last few seconds, as read (a viewer's ingest rate)."""
    models: tuple[ModelSummary, ...] = ()
    """Per model_version figures of the window so far, kept from the rows read (only with
    `[metrics_http] port`: `/metrics` is their one reader)."""


class TickPipeline:
    """One console's live data: it owns the read-only store and the alert keeper.

    `tick` and `view_for` run in a worker thread, one at a time; `close` may come from any
    thread and waits for a running tick. `needs` is set by the UI thread.
    """

    def __init__(
        self,
        settings: Settings,
        reader: Store,
        alerts: AlertKeeper,
        *,
        clock: Clock,
        health: HealthReader | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        tally_models: bool | None = None,
    ) -> None:
        self.settings = settings
        self._tally_models = (
            settings.metrics_http.port is not None if tally_models is None else tally_models
        )
        """Keep `TickResult.models` (by default with `[metrics_http] port`, their one reader;
        `serve` reads its own figures for `/metrics`)."""
        self.store: Store | None = reader
        """The read-only store (None once closed)."""
        self.alerts = alerts
        self.needs = ViewNeeds()
        """What the view on top needs beyond the Snapshot."""
        self._clock = clock
        self._health = health
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._roster: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self.engine = Engine(
            max_gap_s=settings.metrics.max_gap_s,
            workers={entry.id: entry.name for entry in settings.roster_workers()},
            workstations={entry.id: entry.name for entry in settings.roster_workstations()},
        )
        self.cursor = 0
        """Id of the last stored row read."""
        self.loaded = False
        """The warm start is done."""
        self._rate = RateMeter(RATE_WINDOW_S, started_s=monotonic())
        self.latest: TickResult | None = None
        """The last tick's result, for readers in other threads (the `/metrics` endpoint)."""
        self._models: ModelTally | None = None

    def window_at(self, at_us: int) -> ShiftWindow:
        """The window shown at `at_us`: the running shift (else the day) so far, and its title."""
        return shift_window(self.settings, at_us)

    def tick(self, *, evaluate_alerts: bool = True) -> TickResult | None:
        """Read new rows, fold them in, take a Snapshot, evaluate alerts, build the view data.

        None once closed. `evaluate_alerts=False` holds the alerts (an embedded simulator's
        backfill is still going in: a half-loaded history would raise every camera as dark).
        Raises StoreError when the database cannot be read.
        """
        with self._lock:
            store = self.store
            if store is None:
                return None
            at_us = self._clock()
            shown = self.window_at(at_us)
            self._sync_roster(store)
            initial = not self.loaded
            new_rows = self._warm_start(store, shown, at_us) if initial else self._read_new(store)
            self._forget(shown, at_us)
            if not initial:
                self._rate.add(self._monotonic(), new_rows)
            engine = self.engine
            window = shown.so_far
            snapshot = engine.snapshot(window, at_us)
            needs = self.needs
            alert_state = self.alerts.state(
                store,
                snapshot,
                lambda worker_id: engine.idle_since(worker_id, window, at_us),
                history=needs.alert_history,
                evaluate=evaluate_alerts,
            )
            view = view_data(
                engine,
                store,
                snapshot,
                shown.shift,
                shown.title,
                alert_state,
                needs,
                self.settings.metrics.max_gap_s,
            )
            health = self._health() if self._health is not None else None
            rate = self._rate.per_second(self._monotonic())
            models = self._model_figures(store, window, at_us) if self._tally_models else ()
            self.latest = TickResult(view, health, new_rows, initial, rate, models)
            return self.latest

    def view_for(self, shown: ViewData, needs: ViewNeeds) -> ViewData | None:
        """What a newly opened view needs, for the frozen Snapshot of `shown` (while paused).

        No rows are read and nothing is evaluated, so the figures stay those of the Snapshot.
        None once closed.
        """
        with self._lock:
            store = self.store
            if store is None:
                return None
            alerts = shown.alerts
            if needs.alert_history and alerts.history is None:
                alerts = replace(alerts, history=tuple(store.alerts(limit=ALERT_HISTORY)))
            return view_data(
                self.engine,
                store,
                shown.snapshot,
                shown.shift,
                shown.window_title,
                alerts,
                needs,
                self.settings.metrics.max_gap_s,
            )

    def read(self, reader: Callable[[Store], T]) -> T | None:
        """Run `reader` on the read-only store between two ticks (None once closed): a one-off
        read such as a shift report, in the caller's worker thread."""
        with self._lock:
            return None if self.store is None else reader(self.store)

    def close(self) -> None:
        """Close the stores, after a running tick (a cancelled thread worker runs on)."""
        with self._lock:
            if self.store is not None:
                self.store.close()
                self.store = None
                gc.unfreeze()  # what the warm start froze can be collected again
            self.alerts.close()

    def _warm_start(self, store: Store, shown: ShiftWindow, at_us: int) -> int:
        """Fold in what the current window needs, not the database's whole history.

        The id ceiling is read first: rows stored while we read have higher ids and are picked
        up (or skipped, if already held) by the next cursor read.
        """
        ceiling = store.max_event_id()
        floor = history_floor(shown.so_far, at_us, self.settings.metrics.max_gap_s)
        applied = load_history(self.engine, store, floor)
        load_drift_history(self.alerts.tracker, store, at_us)
        self.cursor = ceiling
        self.loaded = True
        # What is held now (the history, the app's widgets) lives as long as the console: out of
        # the cycle collector's sight, a full collection scans only what came later. At 200
        # workers (about 90,000 objects) one that fell in a tick stopped both threads for
        # 86-103 ms, 7-12 ms after this (benchmarks/tui.py). `close` gives them back.
        gc.freeze()
        return applied

    def _model_figures(self, store: Store, window: Window, at_us: int) -> tuple[ModelSummary, ...]:
        """Per-model figures of the window up to `at_us`: one query when a window starts,
        then only the rows the cursor reads (as `serve`'s `/metrics` does)."""
        end = window.instants_end(at_us)
        if self._models is None or self._models.from_us != window.from_us:
            self._models = ModelTally(window)
            self._models.seed(store.model_summary(window.from_us, end, max_id=self.cursor))
            self._models.add(row for row in store.iter_range(end, None) if row.id <= self.cursor)
        return self._models.summary(end)

    def _read_new(self, store: Store) -> int:
        """Fold in the rows stored since the last read, at most MAX_BATCHES_PER_TICK batches."""
        new_rows = 0
        for _ in range(MAX_BATCHES_PER_TICK):
            rows = store.read_since(self.cursor)
            if not rows:
                break
            new_rows += self.engine.apply(rows)
            self.alerts.tracker.apply(rows)
            if self._models is not None:
                self._models.add(rows)
            self.cursor = rows[-1].id
            if len(rows) < READ_BATCH:
                break
        return new_rows

    def _forget(self, shown: ShiftWindow, at_us: int) -> None:
        """Forget what neither the shown window nor the previous one needs (nor the drift
        checks): a console left running for days keeps flat memory. Work is done only when the
        cut-off moves (a shift change)."""
        cut = keep_floor(self.settings, shown, at_us)
        tracker = self.alerts.tracker
        horizon = self.engine.horizon
        self.engine.prune(cut)
        if self.engine.horizon != horizon:
            tracker.forget_before(min(cut, drift_keep_floor(tracker, at_us)))
        tracker.settle(self.cursor)

    def _sync_roster(self, store: Store) -> None:
        """Names come from our config and the database; the engine is told only of changes."""
        roster = roster_names(self.settings, store)
        if roster != self._roster:
            self.engine.set_roster(*roster)
            self._roster = roster
