"""What a console runs beside its screen: the listener (or, when another factory-tui owns the
port, viewer mode), the stores its tick pipeline reads and writes, the simulator feed, the
forwarder to a central database (`[forward] url`), retention (`[store] keep_days`), and their
orderly stop.

The console that owns the database runs the `Listener` in the app's event loop (its commits
run in the listener's own thread); a console that finds the database owned by another
factory-tui (its claim, `storage.claim_owner`, held: whatever port either was given) becomes a
read-only viewer of that database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, Literal

from factory_tui.config import Settings
from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.console.fleet import FleetPipeline
from factory_tui.console.health import HealthReader
from factory_tui.console.pipeline import Clock, TickPipeline
from factory_tui.forwarding import BackgroundForwarder, Forwarder, ForwardError
from factory_tui.ingest.http_ingest import HttpIngest, HttpIngestError
from factory_tui.ingest.listener import Listener, ListenerError
from factory_tui.ingest.mqtt_client import MqttError
from factory_tui.ingest.mqtt_ingest import MqttIngest
from factory_tui.metrics_export import (
    FloorCollector,
    FloorFigures,
    IngestFigures,
    MetricsHttpError,
    MetricsServer,
    on_loop,
)
from factory_tui.records import ForwardState, MqttState, SiteRecord
from factory_tui.retention import BackgroundRetention
from factory_tui.storage import (
    DEFAULT_SITE,
    OwnerClaim,
    OwnerTaken,
    Store,
    StoreError,
    claim_owner,
    mask_url,
    open_store,
)
from factory_tui.view_models import ViewData

Role = Literal["console", "viewer"]
SubmitLines = Callable[[Sequence[bytes]], Awaitable[list[dict[str, Any]]]]
Feeder = Callable[[SubmitLines, asyncio.Event, asyncio.Event], Coroutine[Any, Any, object]]
"""An in-process event source (the camera simulator): it submits lines until the first event
(stop) is set, and sets the second (caught up) once its backfill is in and it runs live."""

STOP_TIMEOUT_S: Final = 10.0
KEEP_CLAIM_S: Final = 10.0
"""How often the owner's claim is checked (a PostgreSQL session can end under it)."""


class StartError(Exception):
    """The console cannot start; the message is one sentence for the command line."""


def live_owner(
    store_path: Path | str, port: int | None = None, *, site: str = DEFAULT_SITE
) -> int | None:
    """Pid of the running process that owns this database (on PostgreSQL, `site`), if any: as
    its `meta` rows record it, 0 before it has recorded itself. The claim decides, so an owner
    on any port counts (`port` is no longer needed). Probing takes the claim for an instant
    when it is free."""
    try:
        claim = claim_owner(store_path, site)
    except OwnerTaken:
        pass
    except StoreError:
        return None
    else:
        claim.release()
        return None
    try:
        store = open_store(store_path, read_only=True)
    except StoreError:
        return 0
    try:
        owner = store.owner()
    except StoreError:
        owner = None
    finally:
        store.close()
    return 0 if owner is None else owner[0]


class ConsoleServices:
    """Starts and stops everything a console needs besides its widgets.

    `start` decides the role (owning the listener, or viewing), opens the stores and returns the
    tick pipeline; `start_feed` runs the simulator through the listener; `stop` stops the feed
    and the listener (answering what was received) and closes the stores.
    """

    def __init__(self, settings: Settings, *, role: Role, feeder: Feeder | None) -> None:
        self.settings = settings
        self.role: Role = role
        self.listener: Listener | None = None
        self.claim: OwnerClaim | None = None
        """This process's claim on the database (held from start to stop by the owner only)."""
        self.on_lost: Callable[[str], object] | None = None
        """Called (on the event loop) with one line when another process took the database
        over while we owned it: the console must stop, or both would ingest and fire alerts."""
        self._claim_watch: asyncio.Task[None] | None = None
        self.forwarder: BackgroundForwarder | None = None
        """Ships the site's events to `forward.url` (only the console owning the listener)."""
        self.retention: BackgroundRetention | None = None
        """Deletes events older than `store.keep_days` (only the console owning the listener)."""
        self.pipeline: TickPipeline | FleetPipeline | None = None
        self.metrics_http: MetricsServer | None = None
        self.mqtt: MqttIngest | None = None
        """The `[ingest.mqtt]` subscription (only the console owning the listener)."""
        """`/metrics` (only the console owning the listener, with `[metrics_http] port`)."""
        self.http_ingest: HttpIngest | None = None
        """`POST /api/events` (only the console owning the listener, with `[ingest.http] port`)."""
        self._feeder = feeder
        self._feed_task: asyncio.Task[object] | None = None
        self._feed_stop = asyncio.Event()
        self.feed_caught_up = asyncio.Event()
        """Set by the feeder once its backfill is in; alerts wait for it. Without a feeder,
        set from the start."""
        if feeder is None:
            self.feed_caught_up.set()
        self._stopped = False

    async def start(
        self, clock: Clock, health: HealthReader | None
    ) -> TickPipeline | FleetPipeline:
        """Own the port (or fall back to viewing), open the stores, build the pipeline: a
        fleet of every site when the database holds more than one, else our site's.

        Raises StartError with one sentence when the console cannot run.
        """
        path = self.settings.store.location
        if self.role == "console":
            await self._start_listener(path)
        if self.listener is not None and self.settings.ingest.http.port is not None:
            http_ingest = HttpIngest(self.settings, self.listener)
            try:
                await http_ingest.start()
            except HttpIngestError as error:
                raise StartError(str(error)) from None
            self.http_ingest = http_ingest
        if self.listener is not None and self.settings.forward.url is not None:
            try:
                self.forwarder = BackgroundForwarder(Forwarder.from_settings(self.settings))
            except ForwardError as error:
                raise StartError(str(error)) from None
            self.forwarder.start()
        if self.listener is not None and self.settings.ingest.mqtt.url is not None:
            try:
                self.mqtt = MqttIngest(self.listener)
                self.mqtt.start()
            except MqttError as error:
                raise StartError(str(error)) from None
        if self.listener is not None:
            self.retention = BackgroundRetention.from_settings(self.settings)
            if self.retention is not None:
                self.retention.start()
        try:
            reader = await asyncio.to_thread(
                open_store, path, read_only=True, site=self.settings.site.id
            )
        except StoreError as error:
            raise StartError(str(error)) from None
        try:
            sites = await asyncio.to_thread(reader.sites)
        except StoreError as error:
            reader.close()
            raise StartError(str(error)) from None
        if len(sites) > 1:
            self.pipeline = await asyncio.to_thread(
                FleetPipeline, self.settings, reader, clock=clock, health=health
            )
            self._start_metrics_http(None)
            return self.pipeline
        if self.listener is None and sites:
            reader = self._as_stored_site(reader, sites[0])
        # The owner of the listener keeps the alerts table; it writes through its own
        # connection (the listener's thread has the other one).
        writer: Store | None = None
        if self.listener is not None:
            try:
                writer = await asyncio.to_thread(
                    open_store,
                    path,
                    durability=self.settings.store.durability,
                    site=self.settings.site.id,
                )
            except StoreError as error:
                reader.close()
                raise StartError(str(error)) from None
        self.pipeline = TickPipeline(
            self.settings, reader, AlertKeeper(self.settings, writer), clock=clock, health=health
        )
        self._start_metrics_http(self.pipeline)
        return self.pipeline

    def _as_stored_site(self, reader: Store, site: SiteRecord) -> Store:
        """A viewer of a database of one site reads it as `report` does: when that site is
        not ours (a box's file opened without its config) it is the one shown, with its stored
        description (time zone, shifts, max_gap_s, roster); ours read with a config file is
        what that file says (`Settings.as_read`)."""
        if site.id != self.settings.site.id:
            reader = reader.scoped(site.id)
        self.settings = self.settings.as_read(site, mask_url(str(self.settings.store.location)))
        return reader

    def _start_metrics_http(self, pipeline: TickPipeline | None) -> None:
        """Serve the last tick's figures and the listener's counters on `[metrics_http] port`
        (a fleet's console: the counters alone, its floor being several sites')."""
        listener, port = self.listener, self.settings.metrics_http.port
        if listener is None or port is None:
            return

        def floor() -> FloorFigures | None:
            if pipeline is None:
                return None
            latest = pipeline.latest
            if latest is None:
                return None
            snapshot = latest.view.snapshot
            return FloorFigures(snapshot, latest.view.alerts.active, latest.models)

        def ingest() -> IngestFigures:
            return IngestFigures(
                listener.stats(), listener.commit_latency(), self.forward_state(), self.mqtt_state()
            )

        collector = FloorCollector(
            self.settings.site.id, floor, on_loop(asyncio.get_running_loop(), ingest)
        )
        http = self.settings.metrics_http
        server = MetricsServer(collector, http.host, port, token=http.token)
        try:
            server.start()
        except MetricsHttpError as error:
            raise StartError(str(error)) from None
        self.metrics_http = server

    async def _start_listener(self, path: Path | str) -> None:
        """Own the database and listen, or become a viewer when another process owns it.

        The claim, not the port, decides: two processes on one database with different ports
        would otherwise both ingest, forward, run retention and fire every alert action.
        """
        try:
            claim = await asyncio.to_thread(claim_owner, path, self.settings.site.id)
        except OwnerTaken:
            self.role = "viewer"
            return
        except StoreError as error:
            raise StartError(str(error)) from None
        listener = Listener(self.settings, path)
        try:
            await listener.start()
        except ListenerError as error:  # a port taken now is not a factory-tui's on this db
            await asyncio.to_thread(claim.release)
            raise StartError(str(error)) from None
        await asyncio.to_thread(claim.announce, listener.host, listener.port)
        self.claim = claim
        self.listener = listener
        self._claim_watch = asyncio.create_task(self._keep_claim(claim), name="factory-tui claim")

    async def _keep_claim(self, claim: OwnerClaim) -> None:
        """Every KEEP_CLAIM_S, check we still own the database (a PostgreSQL session that
        ended is taken again); tell `on_lost` if another process took it meanwhile."""
        while True:
            await asyncio.sleep(KEEP_CLAIM_S)
            problem = await asyncio.to_thread(claim.keep)
            if problem is not None:
                if self.on_lost is not None:
                    self.on_lost(f"stopped, no longer the owner: {problem}")
                return

    def start_feed(self) -> bool:
        """Start the simulator feed through our listener; False when there is none to run
        (no feeder, or a viewer: it owns no listener)."""
        if self._feeder is None or self.listener is None:
            return False
        self._feed_task = asyncio.create_task(
            self._feeder(self.listener.submit, self._feed_stop, self.feed_caught_up),
            name="factory-tui feed",
        )
        # A feed that ends (or fails) early must not hold the alerts for ever.
        self._feed_task.add_done_callback(lambda _: self.feed_caught_up.set())
        return True

    def ingest_rate(self, stored_per_s: float) -> tuple[float, int | None]:
        """Events per second and rejected lines for the summary bar: the listener's own, or
        for a viewer the rate rows reach the database (`stored_per_s`; rejected lines never
        do, None). UI thread only: the listener lives in its event loop."""
        if self.listener is not None:
            stats = self.listener.stats()
            return stats.rate_per_s, stats.rejected
        return stored_per_s, None

    def with_ingest(self, view: ViewData) -> ViewData:
        """The view's data with the listener's counters when the event log is what needs them
        (UI thread only)."""
        if self.listener is None or view.events is None:
            return view
        return replace(view, ingest=self.listener.stats())

    def forward_state(self) -> ForwardState | None:
        """Where forwarding stands (None: this console does not forward)."""
        return self.forwarder.state() if self.forwarder is not None else None

    def mqtt_state(self) -> MqttState | None:
        """Where the MQTT subscription stands (None: this console subscribes to none)."""
        return self.mqtt.state() if self.mqtt is not None else None

    @property
    def wants_feed(self) -> bool:
        """A feeder was given (a viewer that cannot run it says so)."""
        return self._feeder is not None

    async def stop(self) -> None:
        """Stop the feed, stop the listener gracefully, then forwarding and retention, and
        close the stores (once)."""
        if self._stopped:
            return
        self._stopped = True
        self._feed_stop.set()
        if self._claim_watch is not None:
            self._claim_watch.cancel()
        if self.metrics_http is not None:
            await asyncio.to_thread(self.metrics_http.stop)
        if self._feed_task is not None:
            try:
                await asyncio.wait_for(self._feed_task, STOP_TIMEOUT_S)
            except (TimeoutError, asyncio.CancelledError):
                self._feed_task.cancel()
            except ListenerError:
                pass  # the listener stopped under the feed: nothing left to send to
        if self.http_ingest is not None:
            await self.http_ingest.stop()  # before the listener: what it received is answered
        if self.mqtt is not None:
            await self.mqtt.stop()  # before the listener: its last messages are stored and acked
        if self.listener is not None:
            await self.listener.stop()
        if self.forwarder is not None:
            await asyncio.to_thread(self.forwarder.stop)
        if self.retention is not None:
            await asyncio.to_thread(self.retention.stop)
        if self.pipeline is not None:
            await asyncio.to_thread(self.pipeline.close)
        if self.claim is not None:  # last: nothing of ours writes to the database any more
            await asyncio.to_thread(self.claim.release)
