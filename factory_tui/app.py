"""The console: a Textual app over the store, the engine and (when it owns the port) the listener.

Data flows one way. Once per `tick_s` a thread worker reads the rows stored since the last tick
(`Store.read_since`), folds them into the `Engine` and the drift tracker, takes a `Snapshot` at
the clock's "now", evaluates the alerts and computes what the drill-down view on top needs
(`drilldown.ViewData`), and posts it all; the UI thread hands it down to the widgets inside one
`batch_update`. The
console that owns the ingest port runs the `Listener` in this app's event loop (its SQLite commits
run in the listener's own thread); a console that finds the port held by another factory-tui on
the same database becomes a read-only viewer of that database.

`make_app` builds the app for the CLI and for the tests alike: the clock, the health reader and
the simulator feed are injected, so a test can pin "now" and the machine readings.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import psutil
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input

from factory_tui.alerting import (
    ALERT_HISTORY,
    AlertKeeper,
    load_drift_history,
)
from factory_tui.config import Settings
from factory_tui.drilldown import ViewData, ViewNeeds, view_data
from factory_tui.engine import Engine
from factory_tui.engine.snapshot import Snapshot, Window
from factory_tui.health import HealthReader, HealthReading, PsutilHealth
from factory_tui.history import history_floor, load_history
from factory_tui.ingest.server import Listener, ListenerError, PortInUseError
from factory_tui.models import from_utc_us, to_utc_us
from factory_tui.store import READ_BATCH, Store, StoreError, now_us
from factory_tui.widgets.alerts_view import AlertsScreen
from factory_tui.widgets.event_log import EventLogScreen
from factory_tui.widgets.health_badge import HealthBadge
from factory_tui.widgets.help_screen import HelpScreen
from factory_tui.widgets.station_detail import StationDetailScreen
from factory_tui.widgets.stations_view import StationsScreen
from factory_tui.widgets.summary_bar import (
    FeedStatus,
    IngestFigures,
    SummaryBar,
    SummaryFigures,
    ViewState,
)
from factory_tui.widgets.view_screen import ViewScreen
from factory_tui.widgets.worker_detail import WorkerDetailScreen
from factory_tui.widgets.worker_grid import SORT_KEYS, SORT_LABELS, WorkerGrid

Role = Literal["console", "viewer"]
Clock = Callable[[], int]
"""Returns "now" as UTC epoch microseconds."""
SubmitLines = Callable[[Sequence[bytes]], Awaitable[list[dict[str, Any]]]]
Feeder = Callable[[SubmitLines, asyncio.Event, asyncio.Event], Coroutine[Any, Any, object]]
"""An in-process event source (the camera simulator): it submits lines until the first event
(stop) is set, and sets the second (caught up) once its backfill is in and it runs live."""

MAX_BATCHES_PER_TICK: Final = 20
"""A tick reads at most this many `READ_BATCH`es; a backlog is worked off over several ticks."""
STALE_AFTER_TICKS: Final = 3
RATE_WINDOW_S: Final = 5.0
STOP_TIMEOUT_S: Final = 10.0
THEMES: Final = ("textual-dark", "textual-light")
View = Literal["workers", "stations", "events", "alerts"]
VIEW_KEYS: Final[tuple[tuple[str, View, str], ...]] = (
    ("1", "workers", "Workers"),
    ("2", "stations", "Stations"),
    ("3", "events", "Events"),
    ("4", "alerts", "Alerts"),
)
"""The top-level views: key, name, footer label."""
VIEWS_GROUP: Final = Binding.Group("Views", compact=True)
"""The footer shows the view keys as one item."""


def live_owner(store_path: Path, port: int) -> int | None:
    """Pid of a running process recorded as the listener of this database on `port`, if any."""
    try:
        store = Store.open(store_path, read_only=True)
    except StoreError:
        return None
    try:
        owner = store.owner()
    except sqlite3.Error:
        return None
    finally:
        store.close()
    if owner is None:
        return None
    pid, _host, owner_port = owner
    if owner_port != port or not psutil.pid_exists(pid):
        return None
    return pid


@dataclass(frozen=True, slots=True)
class TickTiming:
    """How long the last tick took: reading and computing (worker thread), and handing the
    Snapshot to the widgets (UI thread)."""

    compute_s: float
    apply_s: float
    new_rows: int


class _RowRate:
    """Stored rows per second over the last few seconds (the viewer's ingest rate)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at: float, rows: int) -> None:
        self._samples.append((at, rows))

    def per_second(self, now: float) -> float:
        while self._samples and self._samples[0][0] < now - RATE_WINDOW_S:
            self._samples.popleft()
        return sum(rows for _, rows in self._samples) / RATE_WINDOW_S


class FactoryApp(App[None]):
    """The factory floor console: summary bar, health badge and the grid of worker tiles, with
    the drill-down views (worker, stations, station, event log, alerts) pushed over them."""

    CSS_PATH = "app.tcss"
    TITLE = "factory-tui"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(key, f"show_view('{view}')", label, group=VIEWS_GROUP)
            for key, view, label in VIEW_KEYS
        ),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear", show=False),
        Binding("s", "cycle_sort", "Sort"),
        Binding("space", "toggle_pause", "Pause"),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
    ]

    paused: reactive[bool] = reactive(False)
    """Live updates are suspended (the screen keeps the last Snapshot, marked PAUSED)."""
    role: reactive[Role] = reactive[Role]("console")
    """console: this process owns the listener; viewer: another one does, we only read."""

    class TickDone(Message):
        """A tick's result, posted by the tick worker: the Snapshot, the shift and its title,
        and what the view on top needs, all in `view`."""

        def __init__(
            self,
            sequence: int,
            view: ViewData,
            health: HealthReading | None,
            new_rows: int,
            initial: bool,
            compute_s: float,
        ) -> None:
            self.sequence = sequence
            self.view = view
            self.health = health
            self.new_rows = new_rows
            self.initial = initial
            self.compute_s = compute_s
            super().__init__()

    class ViewDone(Message):
        """A view's data computed while paused, for the Snapshot on screen."""

        def __init__(self, view: ViewData) -> None:
            self.view = view
            super().__init__()

    class TickFailed(Message):
        """The tick could not read the database; the figures on screen are going stale."""

        def __init__(self, sequence: int, error: str) -> None:
            self.sequence = sequence
            self.error = error
            super().__init__()

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = now_us,
        health: HealthReader | None = None,
        role: Role = "console",
        feeder: Feeder | None = None,
        demo: bool = False,
        theme: str = "textual-dark",
        animations: bool = True,
    ) -> None:
        super().__init__()
        self._animations = animations
        if not animations:
            self.animation_level = "none"
        self.settings = settings
        self.store_path = settings.store.path
        self._clock = clock
        self._health = health
        self._requested_role = role
        self._feeder = feeder
        self._demo = demo
        self.theme = theme
        self.listener: Listener | None = None
        self.snapshot: Snapshot | None = None
        """The Snapshot on screen (None before the first tick)."""
        self.last_timing: TickTiming | None = None
        self.ticks_done = 0
        self.error_message: str | None = None
        """Why the console could not start (port taken by another program, no database...)."""
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        """Held by the tick thread while it uses the store, and to close it."""
        self._engine: Engine | None = None
        self._alerts: AlertKeeper | None = None
        self._needs = ViewNeeds()
        """What the drill-down view on top needs from the tick (set on the UI thread)."""
        self.view_data: ViewData | None = None
        """The latest tick's data for the drill-down views (None before the first tick)."""
        self._roster: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self._read_cursor = 0
        self._loaded = False
        self._tick_sequence = 0
        self._tick_busy = False
        self._tick_pending = False
        self._tick_waiters: list[tuple[int, asyncio.Future[Snapshot | None]]] = []
        self._last_success = time.monotonic()
        self._failure: str | None = None
        self._row_rate = _RowRate()
        self._timer: Timer | None = None
        self._feed_stop = asyncio.Event()
        self._feed_caught_up = asyncio.Event()
        """Set by the feeder once its backfill is in; alerts wait for it (a half-loaded history
        would raise every camera as dark). Without a feeder, set from the start."""
        if feeder is None:
            self._feed_caught_up.set()
        self._feed_task: asyncio.Task[object] | None = None
        self._stopped = False
        self._started = asyncio.Event()
        # The main screen's widgets, held so that ticks and focus events reach them whatever
        # screen is on top (help, or a detail screen) and while the app shuts down.
        self.summary = SummaryBar(id="summary")
        """The summary bar."""
        self.health_badge = HealthBadge(id="health")
        """The machine-health badge."""
        self.filter_field = Input(
            placeholder="filter: id, name, station or state", id="filter", compact=True
        )
        """The filter field (shown by `/`)."""
        self.grid = WorkerGrid(id="grid")
        """The tile grid."""

    # --- composition --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        with Horizontal(id="top"):
            yield self.summary
            yield self.health_badge
        yield self.filter_field
        yield self.grid
        yield Footer()

    async def on_mount(self) -> None:
        # Snapshot tests switch animations off; a blinking cursor would make them flaky too.
        self.filter_field.cursor_blink = self._animations
        if self._requested_role == "viewer":
            self.role = "viewer"  # asked for (a demo's second console): the title says so
        self._update_title()
        self.grid.focus()
        self._update_view()
        if self._requested_role == "console" and not await self._start_listener():
            return
        try:
            self._store = await asyncio.to_thread(Store.open, self.store_path, read_only=True)
        except StoreError as error:
            self._fail(str(error))
            return
        # The owner of the listener keeps the alerts table; it writes through its own
        # connection (the listener's thread has the other one).
        writer: Store | None = None
        if self.listener is not None:
            try:
                writer = await asyncio.to_thread(
                    Store.open, self.store_path, durability=self.settings.store.durability
                )
            except StoreError as error:
                self._fail(str(error))
                return
        self._alerts = AlertKeeper(self.settings, writer)
        self.screen_change_signal.subscribe(self, self._screen_changed)
        self._engine = Engine(
            max_gap_s=self.settings.metrics.max_gap_s,
            workers={entry.id: entry.name for entry in self.settings.roster_workers()},
            workstations={entry.id: entry.name for entry in self.settings.roster_workstations()},
        )
        if self._feeder is not None and self.listener is not None:
            self._feed_task = asyncio.create_task(
                self._feeder(self.listener.submit, self._feed_stop, self._feed_caught_up),
                name="factory-tui feed",
            )
            # A feed that ends (or fails) early must not hold the alerts for ever.
            self._feed_task.add_done_callback(lambda _: self._feed_caught_up.set())
        elif self._feeder is not None:
            self.notify(
                "Another factory-tui owns the port, so this viewer runs no simulator.",
                title="Simulator off",
            )
        self._timer = self.set_interval(self.settings.metrics.tick_s, self._on_timer)
        self._request_tick()
        self._started.set()

    def _fail(self, error: str) -> None:
        """Exit at once with a one-sentence error for the command line to print."""
        self.error_message = error
        self._started.set()
        self.exit(return_code=2)

    async def _start_listener(self) -> bool:
        """Own the port, or fall back to viewer mode; False when the app is exiting instead."""
        listener = Listener(self.settings, self.store_path)
        try:
            await listener.start()
        except PortInUseError as error:
            port = self.settings.ingest.port
            pid = await asyncio.to_thread(live_owner, self.store_path, port) if port else None
            if pid is None:
                self._fail(str(error))
                return False
            self.role = "viewer"
            return True
        except ListenerError as error:
            self._fail(str(error))
            return False
        self.listener = listener
        return True

    # --- the tick -----------------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._check_stale()
        self._request_tick()

    def _request_tick(self) -> None:
        """Start a tick unless one is running (then run one right after it) or we are paused."""
        if self.paused or self._stopped or self._store is None:
            return
        if self._tick_busy:
            self._tick_pending = True
            return
        self._tick_busy = True
        self._tick_pending = False
        self._tick_sequence += 1
        self._tick_worker(self._tick_sequence)

    @work(thread=True, exclusive=True, group="tick")
    def _tick_worker(self, sequence: int) -> None:
        """Read new rows, fold them in, take a Snapshot, read the machine's health."""
        started = time.perf_counter()
        try:
            with self._store_lock:
                message = self._compute_tick(sequence)
        except (StoreError, sqlite3.Error) as error:
            self.post_message(self.TickFailed(sequence, str(error)))
            return
        if message is None:
            return  # the console is shutting down
        message.compute_s = time.perf_counter() - started
        self.post_message(message)

    @work(thread=True, group="view")
    def _view_worker(self, shown: ViewData, needs: ViewNeeds) -> None:
        """While paused: what a newly opened view needs, for the frozen Snapshot on screen.

        No rows are read and nothing is evaluated, so the figures stay those of the Snapshot.
        """
        try:
            with self._store_lock:
                store, engine = self._store, self._engine
                if store is None or engine is None:
                    return
                alerts = shown.alerts
                if needs.alert_history and alerts.history is None:
                    alerts = replace(alerts, history=tuple(store.alerts(limit=ALERT_HISTORY)))
                view = view_data(
                    engine,
                    store,
                    shown.snapshot,
                    shown.shift,
                    shown.window_title,
                    alerts,
                    needs,
                    self.settings.metrics.max_gap_s,
                )
        except (StoreError, sqlite3.Error) as error:
            self.post_message(self.TickFailed(self._tick_sequence, str(error)))
            return
        self.post_message(self.ViewDone(view))

    def on_factory_app_view_done(self, message: FactoryApp.ViewDone) -> None:
        if self._stopped or message.view.snapshot is not self.snapshot:
            return  # a live tick has shown newer figures since
        self.view_data = message.view
        if isinstance(self.screen, ViewScreen):
            self.screen.show(self._with_ingest(message.view))

    def _compute_tick(self, sequence: int) -> FactoryApp.TickDone | None:
        store, engine, alerts = self._store, self._engine, self._alerts
        if store is None or engine is None or alerts is None:
            return None
        at_us = self._clock()
        shift, title = self.window_at(at_us)
        # Figures cover the shift so far: a rate over the whole shift would read low until its
        # end. The engine clips counted time at `at` anyway; this also fixes the divisors.
        window = Window(shift.from_us, max(shift.from_us, min(shift.to_us, at_us)), shift.label)
        self._sync_roster(store, engine)
        initial = not self._loaded
        if initial:
            new_rows = self._initial_load(store, engine, window, at_us)
            load_drift_history(alerts.tracker, store, at_us)
            self._loaded = True
        else:
            new_rows = 0
            for _ in range(MAX_BATCHES_PER_TICK):
                rows = store.read_since(self._read_cursor)
                if not rows:
                    break
                new_rows += engine.apply(rows)
                alerts.tracker.apply(rows)
                self._read_cursor = rows[-1].id
                if len(rows) < READ_BATCH:
                    break
        snapshot = engine.snapshot(window, at_us)
        needs = self._needs
        alert_state = alerts.state(
            store,
            snapshot,
            lambda worker_id: engine.idle_since(worker_id, window, at_us),
            history=needs.alert_history,
            evaluate=self._feed_caught_up.is_set(),
        )
        view = view_data(
            engine,
            store,
            snapshot,
            shift,
            title,
            alert_state,
            needs,
            self.settings.metrics.max_gap_s,
        )
        health = self._health() if self._health is not None else None
        return self.TickDone(sequence, view, health, new_rows, initial, 0.0)

    def _initial_load(self, store: Store, engine: Engine, window: Window, at_us: int) -> int:
        """Fold in what the current window needs, not the database's whole history.

        See factory_tui.history. The id ceiling is read first: rows stored while we read have
        higher ids and are picked up (or skipped, if already held) by the next `read_since`.
        """
        ceiling = store.max_event_id()
        floor = history_floor(window, at_us, self.settings.metrics.max_gap_s)
        applied = load_history(engine, store, floor)
        self._read_cursor = ceiling
        return applied

    def _sync_roster(self, store: Store, engine: Engine) -> None:
        """Names come from the database (the owner's config, auto-registered ids) and our own
        config; the engine is only told when they changed."""
        workers = {entry.id: entry.name for entry in self.settings.roster_workers()}
        stations = {entry.id: entry.name for entry in self.settings.roster_workstations()}
        workers.update(store.workers())
        stations.update(store.workstations())
        if (workers, stations) != self._roster:
            engine.set_roster(workers, stations)
            self._roster = (workers, stations)

    def window_at(self, at_us: int) -> tuple[Window, str]:
        """The window shown at `at_us` (the running shift, else the day) and its title."""
        start, end, label = self.settings.current_window(from_utc_us(at_us))
        is_shift = any(shift.name == label for shift in self.settings.shifts)
        title = f"Shift {label}" if is_shift else f"Day {label}"
        return Window(to_utc_us(start), to_utc_us(end), label), title

    def on_factory_app_tick_done(self, message: FactoryApp.TickDone) -> None:
        started = time.perf_counter()
        self._tick_busy = False
        self._last_success = time.monotonic()
        self._failure = None
        if not message.initial:
            self._row_rate.add(self._last_success, message.new_rows)
        if not self.paused and not self._stopped:
            self._show(message)
        self.ticks_done += 1
        self.last_timing = TickTiming(
            message.compute_s, time.perf_counter() - started, message.new_rows
        )
        self._finish_tick(message.sequence)

    def on_factory_app_tick_failed(self, message: FactoryApp.TickFailed) -> None:
        self._tick_busy = False
        self._failure = message.error
        self._check_stale()
        self._finish_tick(message.sequence)

    def _finish_tick(self, sequence: int) -> None:
        waiting = []
        for target, future in self._tick_waiters:
            if sequence >= target:
                if not future.done():
                    future.set_result(self.snapshot)
            else:
                waiting.append((target, future))
        self._tick_waiters = waiting
        if self._tick_pending:
            self._request_tick()

    def _show(self, message: FactoryApp.TickDone) -> None:
        """Hand a Snapshot down to the widgets: one batch, only changed values redraw."""
        view = message.view
        snapshot = view.snapshot
        self.snapshot = snapshot
        self.view_data = view
        with self.batch_update():
            self.summary.alerts = view.alerts.count
            self.summary.figures = SummaryFigures.build(
                snapshot, view.window_title, view.shift, self._ingest_figures()
            )
            self.summary.status = FeedStatus("live")
            if message.health is not None:
                self.health_badge.reading = message.health
            self.grid.show(snapshot)
            self._update_view()
            if isinstance(self.screen, ViewScreen):
                self.screen.show(self._with_ingest(view))

    def _with_ingest(self, view: ViewData) -> ViewData:
        """The view's data with the listener's counters, read here on the UI thread (the
        listener lives in this event loop), when the event log is what needs them."""
        if self.listener is None or view.events is None:
            return view
        return replace(view, ingest=self.listener.stats())

    def _screen_changed(self, screen: Screen[Any]) -> None:
        """Tell the tick what the screen now on top needs, and feed a view screen at once."""
        if screen is not self.screen:
            return  # delivered late: a later change put another screen on top (it is told too)
        if isinstance(screen, ViewScreen):
            self._needs = screen.needs
            if self.view_data is not None:
                screen.show(self._with_ingest(self.view_data))
            if self.paused and self.view_data is not None:
                self._view_worker(self.view_data, screen.needs)
            else:
                self._request_tick()
        elif not isinstance(screen, HelpScreen):
            self._needs = ViewNeeds()  # the tiles: nothing beyond the Snapshot

    def _ingest_figures(self) -> IngestFigures:
        if self.listener is not None:
            stats = self.listener.stats()
            return IngestFigures(stats.rate_per_s, stats.rejected)
        # A viewer sees what reaches the database; rejected lines never do.
        return IngestFigures(self._row_rate.per_second(time.monotonic()), None)

    def _check_stale(self) -> None:
        """Mark the figures stale when no tick has succeeded for a few tick intervals."""
        if self.paused:
            return
        if self.snapshot is None:
            if self._failure is not None:
                self.summary.status = FeedStatus("stale", f"no data: {self._failure}")
            return
        silent_s = time.monotonic() - self._last_success
        limit_s = STALE_AFTER_TICKS * self.settings.metrics.tick_s
        if self._failure is not None or silent_s > limit_s:
            reason = self._failure or "the database is not answering"
            self.summary.status = FeedStatus(
                "stale", f"as of {self._local_time(self.snapshot.at_us)}: {reason}"
            )

    async def tick_now(self) -> Snapshot | None:
        """Run a tick now (after the running one, if any) and wait until it is on screen."""
        await self._started.wait()
        if self.paused or self._store is None or self._stopped:
            return self.snapshot
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Snapshot | None] = loop.create_future()
        # The next tick to start (right now, or right after the running one, which may have
        # read the store before the caller's last write).
        target = self._tick_sequence + 1
        self._tick_waiters.append((target, future))
        self._request_tick()
        return await future

    # --- view state ---------------------------------------------------------------------------

    def _local_time(self, at_us: int) -> str:
        return from_utc_us(at_us).astimezone(self.settings.tz).strftime("%H:%M:%S")

    def _update_title(self) -> None:
        role: str = "demo" if self._demo and self.role == "console" else self.role
        if self.role == "viewer":
            role = "viewer (read-only)"
        self.sub_title = f"{role} · PAUSED" if self.paused else role

    def _update_view(self) -> None:
        grid = self.grid
        self.summary.view = ViewState(
            SORT_LABELS[grid.sort_key], grid.filter_text, len(grid.shown_ids), grid.total
        )

    def watch_role(self) -> None:
        self._update_title()

    def watch_paused(self, paused: bool) -> None:
        self._update_title()
        if paused:
            detail = ""
            if self.snapshot is not None:
                detail = f"as of {self._local_time(self.snapshot.at_us)} · space resumes"
            self.summary.status = FeedStatus("paused", detail)
        else:
            self.summary.status = FeedStatus("loading" if self.snapshot is None else "live")
            self._last_success = time.monotonic()
            self._request_tick()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.grid.filter_text = event.value
        self._update_view()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.grid.focus()
        self._sync_filter_input()

    def _sync_filter_input(self) -> None:
        field = self.filter_field
        if not field.is_attached:
            return  # focus moves as the app shuts down
        field.display = field.has_focus or bool(field.value)

    def on_descendant_blur(self) -> None:
        self._sync_filter_input()

    def on_worker_grid_worker_selected(self, message: WorkerGrid.WorkerSelected) -> None:
        self.open_worker_detail(message.worker_id)

    def open_worker_detail(self, worker_id: str) -> None:
        """Open the detail of one worker (`enter` on a tile, a station's worker or an alert)."""
        top = self.screen
        if isinstance(top, WorkerDetailScreen) and top.worker_id == worker_id:
            return
        self.push_screen(WorkerDetailScreen(worker_id, zone=self.settings.tz))

    def on_stations_screen_station_selected(self, message: StationsScreen.StationSelected) -> None:
        self.push_screen(StationDetailScreen(message.station_id, zone=self.settings.tz))

    # --- actions ------------------------------------------------------------------------------

    TILE_ACTIONS: ClassVar[frozenset[str]] = frozenset({"filter", "clear_filter", "cycle_sort"})
    """Actions on the tiles: off (and out of the footer) while a view is over them."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in self.TILE_ACTIONS and len(self.screen_stack) > 1)

    async def action_show_view(self, view: View) -> None:
        """Switch to a top-level view (1 workers, 2 stations, 3 event log, 4 alerts).

        The views are siblings over the tiles: what was open above the tiles is closed first,
        so `esc` from any of them leads back to the tiles.
        """
        top = self.screen
        if isinstance(top, ViewScreen) and view == top.VIEW:
            return
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        zone = self.settings.tz
        if view == "stations":
            await self.push_screen(StationsScreen(zone=zone))
        elif view == "events":
            await self.push_screen(EventLogScreen(zone=zone))
        elif view == "alerts":
            await self.push_screen(AlertsScreen(zone=zone, alert_settings=self.settings.alerts))

    def action_filter(self) -> None:
        """Show the filter field and type into it."""
        field = self.filter_field
        field.display = True
        field.focus()

    def action_clear_filter(self) -> None:
        """Clear the filter (esc): in the field, or on the grid when a filter is applied."""
        field = self.filter_field
        if field.has_focus or field.value:
            field.value = ""
            self.grid.filter_text = ""
            self.grid.focus()
            self._sync_filter_input()
            self._update_view()

    def action_cycle_sort(self) -> None:
        """Next sort order: name, utilization, units, UPH, last seen."""
        grid = self.grid
        grid.sort_key = SORT_KEYS[(SORT_KEYS.index(grid.sort_key) + 1) % len(SORT_KEYS)]
        self._update_view()

    def action_toggle_pause(self) -> None:
        """Pause or resume live updates."""
        self.paused = not self.paused

    def action_toggle_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    def action_help(self) -> None:
        """Show every key."""
        top = self.screen
        if isinstance(top, HelpScreen):
            return
        views = [(" ".join(key for key, _, _ in VIEW_KEYS), "Workers, stations, event log, alerts")]
        if isinstance(top, ViewScreen):
            own = [*top.HELP_KEYS, *views, ("space", "Pause / resume live updates")]
            own += [("t", "Dark / light theme"), ("?", "These keys"), ("q", "Quit")]
            self.push_screen(HelpScreen(own, list(top.HELP_NOTES)))
            return
        keys: list[tuple[str, str]] = [
            ("/", "Filter tiles by id, name, station or state (all words must match)"),
            ("esc", "Clear the filter"),
            ("s", "Cycle sort: " + ", ".join(SORT_LABELS[key] for key in SORT_KEYS)),
            ("space", "Pause / resume live updates"),
            ("t", "Dark / light theme"),
            ("← ↑ → ↓", "Move between tiles (home / end, page up / down)"),
            ("enter", "Open the worker's detail"),
            *views,
            ("?", "These keys"),
            ("q", "Quit"),
        ]
        notes = [
            "Tiles: state (also as a word), station, utilization, units and UPH over the shift "
            "so far, activity over the last hour, time since the last event, mean confidence.",
            "Summary: avg util and avg UPH are means over the workers that have a value.",
        ]
        self.push_screen(HelpScreen(keys, notes))

    async def action_quit(self) -> None:
        """Stop the simulator and the listener (acking what was received), then exit."""
        await self.stop_services()
        self.exit()

    async def on_unmount(self) -> None:
        await self.stop_services()

    async def stop_services(self) -> None:
        """Stop ticking, stop the feed, stop the listener gracefully, close the store."""
        if self._stopped:
            return
        self._stopped = True
        if self._timer is not None:
            self._timer.stop()
        self._feed_stop.set()
        if self._feed_task is not None:
            try:
                await asyncio.wait_for(self._feed_task, STOP_TIMEOUT_S)
            except (TimeoutError, asyncio.CancelledError):
                self._feed_task.cancel()
            except ListenerError:
                pass  # the listener stopped under the feed: nothing left to send to
        if self.listener is not None:
            await self.listener.stop()
        # A tick thread may still be reading (a cancelled thread worker runs on); closing
        # under the lock waits for it instead of pulling the connection from under it.
        await asyncio.to_thread(self._close_store)

    def _close_store(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._alerts is not None:
                self._alerts.close()


def make_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    health: HealthReader | None = None,
    role: Role = "console",
    feeder: Feeder | None = None,
    demo: bool = False,
    theme: str = "textual-dark",
    animations: bool = True,
) -> FactoryApp:
    """The console, as the CLI and the tests build it.

    `clock` is "now" in UTC microseconds (wall clock by default; the demo's simulated clock;
    a fixed instant in snapshot tests); `health` reads the machine (psutil by default);
    `animations=False` (tests) switches off animation and the cursor blink.
    """
    return FactoryApp(
        settings,
        clock=clock or now_us,
        health=health if health is not None else PsutilHealth(),
        role=role,
        feeder=feeder,
        demo=demo,
        theme=theme,
        animations=animations,
    )
