"""The console: a Textual app over the tick pipeline and, when it owns the port, the listener.

Data flows one way. Once per `tick_s` the tick thread runs `TickPipeline.tick` (read new rows,
fold them in, Snapshot, alerts, the view on top's data) and posts the result; the UI thread
hands it down to the widgets inside one `batch_update`. `ConsoleServices` starts and stops
what runs beside the screen: the listener (or viewer mode), the stores, the simulator feed.
This class holds layout, bindings, the tick's scheduling and the message handlers.

`make_app` builds the app for the CLI and for the tests alike: the clock, the health reader and
the simulator feed are injected, so a test can pin "now" and the machine readings.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, ClassVar, Final, Literal

from rich.console import RenderableType
from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer

from factory_tui.config import Settings
from factory_tui.console.fleet import FleetPipeline, unknown_site_notice
from factory_tui.console.health import HealthReader, PsutilHealth
from factory_tui.console.messages import (
    OwnerChanged,
    TickCrashed,
    TickDone,
    TickFailed,
    ViewDone,
)
from factory_tui.console.owner_watch import OwnerWatch
from factory_tui.console.pipeline import Clock, TickPipeline, TickResult
from factory_tui.console.screens.alerts_screen import AlertsScreen
from factory_tui.console.screens.event_log_screen import EventLogScreen
from factory_tui.console.screens.floor_screen import FloorScreen
from factory_tui.console.screens.help_screen import (
    HelpScreen,
    main_screen_keys,
    view_screen_keys,
)
from factory_tui.console.screens.sites_screen import SitesScreen
from factory_tui.console.screens.station_detail_screen import StationDetailScreen
from factory_tui.console.screens.stations_screen import StationsScreen
from factory_tui.console.screens.view_screen import ViewScreen
from factory_tui.console.screens.worker_detail_screen import WorkerDetailScreen
from factory_tui.console.services import (
    STOP_TIMEOUT_S,
    ConsoleServices,
    Feeder,
    Role,
    StartError,
)
from factory_tui.console.status import clock_text, paused_status, stale_status, subtitle
from factory_tui.console.terminal_frames import TerminalShadow, plain_terminal, shadowed
from factory_tui.console.tick_loop import TickLoop, TickThread
from factory_tui.engine.snapshot import Snapshot
from factory_tui.ingest.listener import Listener
from factory_tui.models import now_us
from factory_tui.storage import StoreError, probe_owner
from factory_tui.view_models import ViewData, ViewNeeds
from factory_tui.widgets.summary_bar import (
    FeedStatus,
    IngestFigures,
    SummaryFigures,
)
from factory_tui.widgets.worker_grid import SORT_KEYS, SORT_LABELS, ListenAddress, WorkerGrid

THEMES: Final = ("textual-dark", "textual-light")
UNKNOWN_SITE_S: Final = 30.0
"""How long the notice of an unknown `--site` stays up (a wall screen's passer-by reads it)."""
START_NOTE_S: Final = 30.0
"""How long a warning said on stderr before the console started stays up on it (the screen
covers stderr until the console ends)."""
View = Literal["workers", "stations", "events", "alerts", "sites"]
VIEW_KEYS: Final[tuple[tuple[str, View, str], ...]] = (
    ("1", "workers", "Workers"),
    ("2", "stations", "Stations"),
    ("3", "events", "Events"),
    ("4", "alerts", "Alerts"),
)
"""The top-level views: key, name, footer label."""
VIEWS_GROUP: Final = Binding.Group("Views", compact=True)
"""The footer shows the view keys as one item."""


@dataclass(frozen=True, slots=True)
class TickTiming:
    """How long the last tick took: reading and computing (worker thread), and handing the
    Snapshot to the widgets (UI thread)."""

    compute_s: float
    apply_s: float
    new_rows: int


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
        Binding("0", "show_view('sites')", "Sites"),
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

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = now_us,
        health: HealthReader | None = None,
        role: Role = "console",
        feeder: Feeder | None = None,
        demo: bool = False,
        view: View = "workers",
        theme: str = "textual-dark",
        animations: bool = True,
        site_chosen: bool = False,
        notes: Sequence[str] = (),
    ) -> None:
        super().__init__()
        if not animations:
            self.animation_level = "none"
        self.settings = settings
        self._clock = clock
        self._health = health
        self._demo = demo
        self._start_view: View = view
        self._site_chosen = site_chosen
        """`--site` was given: a fleet database opens on that site's floor, not the Sites list."""
        self._notes = tuple(notes)
        """Warnings said on stderr before the console started: shown on it too, at mount."""
        self.theme = theme
        self.services = ConsoleServices(settings, role=role, feeder=feeder)
        self.services.on_lost = self._owner_lost
        self.pipeline: TickPipeline | FleetPipeline | None = None
        """The tick's data source (None until started, and if the console could not start)."""
        self.snapshot: Snapshot | None = None
        """The Snapshot on screen (None before the first tick)."""
        self.view_data: ViewData | None = None
        """The latest tick's data for the drill-down views (None before the first tick)."""
        self.last_timing: TickTiming | None = None
        self.ticks_done = 0
        self.error_message: str | None = None
        """Why the console could not start (port taken by another program, no database...)."""
        self.started = asyncio.Event()
        """Set once the console is running, or has failed to start (see `error_message`), or
        has stopped (a start that crashed)."""
        self._tick_thread = TickThread(self._run_tick)
        """Where the ticks run: one thread for the app's life (started by the first tick)."""
        self._ticks = TickLoop(self._tick_thread.start, settings.metrics.tick_s, time.monotonic())
        self._rows_per_s = 0.0
        self._owner_watch: OwnerWatch | None = None
        """A viewer's check that the database has an owner (None: we own it)."""
        self.unowned = False
        """A viewer found nobody owning the database: cameras are not being stored."""
        self._timer: Timer | None = None
        self._stopped = False
        # Held, so that ticks reach the tiles whatever screen is on top (help, or a detail
        # screen) and while the app shuts down.
        self.floor = FloorScreen(animations=animations)
        """The main screen: summary bar, health badge, filter and tiles."""
        self.summary = self.floor.summary
        self.health_badge = self.floor.health_badge
        self.grid = self.floor.grid
        self.terminal_shadow = TerminalShadow(plain=plain_terminal(os.environ, self.no_color))
        """What the terminal shows: each frame sends only the cells that changed (and a
        terminal without colour, NO_COLOR or TERM=vt100, gets plain text and ASCII)."""

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        # Fewer bytes over SSH: see terminal_frames.
        inline = self._driver is not None and self._driver.is_inline
        super()._display(screen, shadowed(self.terminal_shadow, renderable, inline))

    def _owner_lost(self, why: str) -> None:
        """Another process took the database over while we owned it: exit with one line."""
        self.error_message = why
        self.exit(return_code=2)

    @property
    def listener(self) -> Listener | None:
        """The ingest listener, when this console owns the port."""
        return self.services.listener

    def get_default_screen(self) -> Screen[Any]:
        return self.floor

    async def on_mount(self) -> None:
        # The first screen mounts in its own task; the title and an early exit need its header.
        await self.floor.mounted.wait()
        for note in self._notes:
            self.notify(note, title="Warning", severity="warning", timeout=START_NOTE_S)
        self.app_resume_signal.subscribe(self, lambda _app: self.terminal_shadow.reset())
        self.role = self.services.role  # a viewer asked for (a demo's second console) says so
        self._update_title()
        try:
            self.pipeline = await self.services.start(self._clock, self._health)
        except StartError as error:
            self.error_message = str(error)
            self.started.set()
            self.exit(return_code=2)
            return
        self.role = self.services.role
        if self.listener is None:
            self._owner_watch = self._watch_owner(self.pipeline)
        if self._site_chosen:
            self._say_if_site_unknown(self.settings.site.id)
        self.settings = self.services.settings  # a viewer's: the stored site's, as it describes it
        self._update_title()  # a fleet names the site on screen
        if self.listener is not None:  # an empty floor says where cameras connect
            ingest = self.settings.ingest
            self.grid.listening = ListenAddress(
                self.listener.host,
                self.listener.port,
                bool(ingest.token),
                ingest.auto_register,
                tls=ingest.tls,
            )
        self.screen_change_signal.subscribe(self, self._screen_changed)
        if not self.services.start_feed() and self.services.wants_feed:
            self.notify(
                "Another factory-tui owns the database, so this viewer runs no simulator.",
                title="Simulator off",
            )
        self._timer = self.set_interval(self.settings.metrics.tick_s, self.on_timer_tick)
        self._request_tick()
        if self._start_view != "workers":
            # A wall screen's view opens directly, over the site on screen (a fleet's `--site`,
            # else its first). Not over the Sites list: a screen popped before its header is
            # mounted crashed the header (textual's set_title: no HeaderTitle).
            await self.action_show_view(self._start_view)
        elif isinstance(self.pipeline, FleetPipeline) and not self._site_chosen:
            await self.action_show_view("sites")  # a database of many sites opens on the fleet
        self.started.set()

    def _watch_owner(self, pipeline: TickPipeline | FleetPipeline) -> OwnerWatch:
        """A viewer's check of the owner of the site on screen (see owner_watch)."""

        def site() -> str:
            if isinstance(pipeline, FleetPipeline):
                return pipeline.focus
            return pipeline.settings.site.id

        probe = probe_owner(self.settings.store.location)

        def recorded() -> bool:
            if probe.owned_before():
                return True
            return bool(pipeline.read(lambda store: store.owner() is not None))

        return OwnerWatch(probe, site, recorded)

    def _say_if_site_unknown(self, requested: str) -> None:
        """`--site` (a browser tab's `?site=`) named a site the database does not hold: say so,
        with the sites it holds, over the site shown instead (not silently)."""
        pipeline = self.pipeline
        if isinstance(pipeline, FleetPipeline):
            notice = unknown_site_notice(requested, pipeline.focus, pipeline.site_ids)
        else:  # a viewer of a database of one site shows that site, whatever was asked
            shown = self.services.settings.site.id
            notice = unknown_site_notice(requested, shown, (shown,))
        if notice is not None:
            self.notify(notice, title="Unknown site", severity="warning", timeout=UNKNOWN_SITE_S)

    # --- the tick -----------------------------------------------------------------------------

    def on_timer_tick(self) -> None:
        """What the interval timer does every tick_s: mark stale figures, start a tick."""
        self._check_stale()
        self._request_tick()

    def _request_tick(self) -> None:
        """Start a tick unless one is running (then run one right after it) or we are paused."""
        if not (self.paused or self._stopped or self.pipeline is None):
            self._ticks.request()

    def _run_tick(self, sequence: int) -> None:
        """In the tick thread: run one tick of the pipeline and post its result."""
        started = time.perf_counter()
        pipeline = self.pipeline  # set before the first tick is requested
        try:
            result = (
                None
                if pipeline is None
                else pipeline.tick(evaluate_alerts=self.services.feed_caught_up.is_set())
            )
            watch = self._owner_watch
            unowned = None if watch is None or result is None else watch.poll(time.monotonic())
        except StoreError as error:
            self.post_message(TickFailed(sequence, str(error)))
            return
        except Exception as error:  # a bug: the app ends with its traceback, as on a worker's
            self.post_message(TickCrashed(error))
            return
        if unowned is not None:
            self.post_message(OwnerChanged(unowned))
        if result is not None:  # None: the console is shutting down
            self.post_message(TickDone(sequence, result, time.perf_counter() - started))

    @work(thread=True, group="view")
    def _view_worker(self, pipeline: TickPipeline, shown: ViewData, needs: ViewNeeds) -> None:
        """While paused: what a newly opened view needs, for the frozen Snapshot on screen."""
        try:
            view = pipeline.view_for(shown, needs)
        except StoreError as error:
            self.post_message(TickFailed(self._ticks.sequence, str(error)))
            return
        if view is not None:
            self.post_message(ViewDone(view))

    def on_view_done(self, message: ViewDone) -> None:
        if self._stopped or not self.screen_stack or message.view.snapshot is not self.snapshot:
            return  # a live tick has shown newer figures since, or the app is closing
        self.view_data = message.view
        if isinstance(self.screen, ViewScreen):
            self.screen.show(self.services.with_ingest(message.view))

    def on_tick_done(self, message: TickDone) -> None:
        started = time.perf_counter()
        result = message.result
        self._rows_per_s = result.rows_per_s
        # An app on its way out may have popped its screens before this tick's answer came.
        if not self.paused and not self._stopped and self.screen_stack:
            self._show(result)
        self.ticks_done += 1
        self.last_timing = TickTiming(
            message.compute_s, time.perf_counter() - started, result.new_rows
        )
        self._finish_tick(message.sequence, None)

    def on_owner_changed(self, message: OwnerChanged) -> None:
        self.unowned = message.unowned
        if not self.paused and self.summary.status.state in ("live", "unowned"):
            self.summary.status = self._live_status()

    def _live_status(self) -> FeedStatus:
        """Ticks succeed: LIVE, unless a viewer found nobody owning the database."""
        if self.unowned:
            return FeedStatus("unowned", "cameras are not being stored")
        return FeedStatus("live")

    def on_tick_failed(self, message: TickFailed) -> None:
        self._finish_tick(message.sequence, message.error)

    def on_tick_crashed(self, message: TickCrashed) -> None:
        raise message.error  # Textual ends the app and prints the traceback

    def _finish_tick(self, sequence: int, error: str | None) -> None:
        if self._ticks.finished(sequence, time.monotonic(), error):
            self._request_tick()
        if error is not None:
            self._check_stale()

    def _show(self, result: TickResult) -> None:
        """Hand a Snapshot down to the widgets: one batch, only changed values redraw."""
        view = result.view
        snapshot = view.snapshot
        self.snapshot = snapshot
        self.view_data = view
        with self.batch_update():
            self.summary.alerts = view.alerts.count
            self.summary.figures = SummaryFigures.build(
                snapshot,
                view.window_title,
                view.shift,
                IngestFigures(*self.services.ingest_rate(self._rows_per_s)),
            )
            self.summary.status = self._live_status()
            self.summary.forward = self.services.forward_state()
            self.summary.mqtt = self.services.mqtt_state()
            if result.health is not None:
                self.health_badge.reading = result.health
            self.floor.show(snapshot)
            if isinstance(self.screen, ViewScreen):
                self.screen.show(self.services.with_ingest(view))

    def _screen_changed(self, screen: Screen[Any]) -> None:
        """Tell the tick what the screen now on top needs, and feed a view screen at once."""
        if screen is not self.screen or self.pipeline is None:
            return  # delivered late: a later change put another screen on top (it is told too)
        self._update_title()  # a fleet's title names the open site, none on the Sites list
        if isinstance(screen, ViewScreen):
            self.pipeline.needs = screen.needs
            if self.view_data is not None:
                screen.show(self.services.with_ingest(self.view_data))
            if self.paused and self.view_data is not None:
                self._view_worker(self.pipeline, self.view_data, screen.needs)
            else:
                self._request_tick()
        elif not isinstance(screen, HelpScreen):
            self.pipeline.needs = ViewNeeds()  # the tiles: nothing beyond the Snapshot

    def _check_stale(self) -> None:
        """Mark the figures stale when no tick has succeeded for a few tick intervals."""
        reason = self._ticks.stale_reason(time.monotonic())
        if not self.paused and reason is not None:
            failed = self._ticks.failure is not None
            status = stale_status(self._shown_at(), reason, failed=failed)
            if status is not None:
                self.summary.status = status

    async def tick_now(self) -> Snapshot | None:
        """Run a tick now (after the running one, if any) and wait until it is on screen.

        Raises `TicksEnded` when the app stops (exit, crash) before that tick lands; once
        stopped (or when the start crashed), returns the Snapshot on screen at once."""
        await self.started.wait()
        if not (self.paused or self.pipeline is None or self._stopped):
            await self._ticks.next_tick()
        return self.snapshot

    # --- view state ---------------------------------------------------------------------------

    def _shown_at(self) -> str | None:
        return None if self.snapshot is None else clock_text(self.snapshot.at_us, self.zone)

    def _update_title(self) -> None:
        site = (
            self.pipeline.settings.site.label if isinstance(self.pipeline, FleetPipeline) else None
        )
        if any(isinstance(screen, SitesScreen) for screen in self.screen_stack):
            site = None  # the Sites list: no site is open
        self.sub_title = subtitle(self.role, demo=self._demo, paused=self.paused, site=site)

    def watch_role(self) -> None:
        self._update_title()

    def watch_paused(self, paused: bool) -> None:
        self._update_title()
        if paused:
            self.summary.status = paused_status(self._shown_at())
        else:
            self.summary.status = (
                FeedStatus("loading") if self.snapshot is None else self._live_status()
            )
            self._ticks.resumed(time.monotonic())
            self._request_tick()

    def on_worker_grid_worker_selected(self, message: WorkerGrid.WorkerSelected) -> None:
        self.open_worker_detail(message.worker_id)

    def on_alerts_screen_retrain_requested(self, message: AlertsScreen.RetrainRequested) -> None:
        if isinstance(self.pipeline, TickPipeline):
            self.notify(self.pipeline.alerts.request_retrain(message.model_version))
            self._request_tick()  # raised (and handed to the actions) now, not next second
        else:
            self.notify("A console over several sites raises no alerts", severity="warning")

    def open_worker_detail(self, worker_id: str) -> None:
        """Open the detail of one worker (`enter` on a tile, a station's worker or an alert)."""
        top = self.screen
        if isinstance(top, WorkerDetailScreen) and top.worker_id == worker_id:
            return
        self.push_screen(WorkerDetailScreen(worker_id, zone=self.zone))

    def on_stations_screen_station_selected(self, message: StationsScreen.StationSelected) -> None:
        self.push_screen(StationDetailScreen(message.station_id, zone=self.zone))

    async def on_sites_screen_site_selected(self, message: SitesScreen.SiteSelected) -> None:
        if isinstance(self.pipeline, FleetPipeline):
            self.pipeline.set_focus(message.site_id)
            self._update_title()
            while len(self.screen_stack) > 1:
                await self.pop_screen()
            self._request_tick()

    @property
    def zone(self) -> tzinfo:
        """The time zone of the floor on screen (in a fleet, the open site's)."""
        return self.pipeline.settings.tz if self.pipeline is not None else self.settings.tz

    # --- actions ------------------------------------------------------------------------------

    TILE_ACTIONS: ClassVar[frozenset[str]] = frozenset({"filter", "clear_filter", "cycle_sort"})
    """Actions on the tiles: off (and out of the footer) while a view is over them."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if parameters == ("sites",):
            return isinstance(self.pipeline, FleetPipeline)  # only a fleet has a Sites view
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
        zone = self.zone
        if view == "stations":
            await self.push_screen(StationsScreen(zone=zone))
        elif view == "events":
            await self.push_screen(EventLogScreen(zone=zone))
        elif view == "sites":
            if isinstance(self.pipeline, FleetPipeline):
                await self.push_screen(SitesScreen(zone=zone))
        elif view == "alerts":
            await self.push_screen(AlertsScreen(zone=zone, alert_settings=self.settings.alerts))

    def action_filter(self) -> None:
        """Show the filter field and type into it."""
        self.floor.open_filter()

    def action_clear_filter(self) -> None:
        """Clear the filter (esc): in the field, or on the grid when a filter is applied."""
        self.floor.clear_filter()

    def action_cycle_sort(self) -> None:
        """Next sort order: name, utilization, units, UPH, last seen."""
        self.floor.cycle_sort()

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
        view_keys = " ".join(key for key, _, _ in VIEW_KEYS)
        if isinstance(top, ViewScreen):
            keys = view_screen_keys(top.HELP_KEYS, view_keys)
            self.push_screen(HelpScreen(keys, list(top.HELP_NOTES)))
            return
        sort_labels = [SORT_LABELS[key] for key in SORT_KEYS]
        self.push_screen(HelpScreen(*main_screen_keys(view_keys, sort_labels)))

    async def action_quit(self) -> None:
        """Stop the simulator and the listener (acking what was received), then exit."""
        await self.stop_services()
        self.exit()

    async def on_unmount(self) -> None:
        await self.stop_services()

    async def stop_services(self) -> None:
        """Stop ticking, then the feed and the listener (gracefully), and close the stores."""
        if self._stopped:
            return
        self._stopped = True
        if self._timer is not None:
            self._timer.stop()
        self._tick_thread.stop()  # no tick after the running one, which closing the stores awaits
        # No tick lands from now on (the app handles no TickDone while it stops): fail whoever
        # waits in tick_now rather than leave them waiting forever.
        self._ticks.close("the console stopped before the tick landed")
        self.started.set()  # a start that crashed (a bug in on_mount): tick_now waits no more
        await self.services.stop()
        if self._tick_thread.alive:
            await asyncio.to_thread(self._tick_thread.join, STOP_TIMEOUT_S)
        if self._owner_watch is not None:
            await asyncio.to_thread(self._owner_watch.close)


def make_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    health: HealthReader | None = None,
    role: Role = "console",
    feeder: Feeder | None = None,
    demo: bool = False,
    view: View = "workers",
    theme: str = "textual-dark",
    animations: bool = True,
    site_chosen: bool = False,
    notes: Sequence[str] = (),
) -> FactoryApp:
    """The console, as the CLI and the tests build it.

    `clock` is "now" in UTC microseconds (wall clock by default; the demo's simulated clock;
    a fixed instant in snapshot tests); `health` reads the machine and the database's disk
    (psutil by default); `view` is the top-level view open at start (a wall screen's
    `--view stations`); `animations=False` (tests) switches off animation and the cursor blink;
    `site_chosen` (`--site`) opens a database of several sites on that site's floor; `notes`
    are warnings already said on stderr, shown on the console at start too.
    """
    return FactoryApp(
        settings,
        clock=clock or now_us,
        health=health if health is not None else PsutilHealth(settings.store.location),
        role=role,
        feeder=feeder,
        demo=demo,
        view=view,
        theme=theme,
        animations=animations,
        site_chosen=site_chosen,
        notes=notes,
    )
