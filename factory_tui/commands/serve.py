"""`factory-tui serve`: the ingest listener alone, headless, logging its counters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Annotated, Final

import typer

from factory_tui.commands.common import (
    AutoRegisterOption,
    ConfigOption,
    DbOption,
    HostOption,
    PortOption,
    dotted,
    fail,
    log_to_stderr,
    settings_from,
)
from factory_tui.config import Settings
from factory_tui.console.headless import AlertProcess
from factory_tui.console.health import low_disk_warning
from factory_tui.forwarding import BackgroundForwarder, Forwarder, ForwardError
from factory_tui.ingest.http_ingest import HttpIngest, HttpIngestError
from factory_tui.ingest.listener import Listener, ListenerError, format_stats
from factory_tui.ingest.mqtt_client import MqttError
from factory_tui.ingest.mqtt_ingest import MqttIngest
from factory_tui.metrics_export import (
    FloorCollector,
    IngestFigures,
    MetricsHttpError,
    MetricsServer,
    StoreFloor,
    on_loop,
)
from factory_tui.records import MqttState
from factory_tui.retention import BackgroundRetention
from factory_tui.storage import OwnerClaim, StoreError, claim_owner, mask_url

log = logging.getLogger("factory_tui.serve")

DISK_CHECK_S: Final = 300.0
"""How often the database's free disk space is checked (and logged when low)."""
KEEP_CLAIM_S: Final = 10.0
"""How often the owner's claim is checked (a PostgreSQL session can end under it)."""


def serve(
    config: ConfigOption = None,
    db: DbOption = None,
    host: HostOption = None,
    port: PortOption = None,
    auto_register: AutoRegisterOption = False,
    http_port: Annotated[
        int | None,
        typer.Option(
            "--http-port",
            min=0,
            max=65535,
            help="Also take events over HTTP on this port: POST /api/events (0 picks a free one).",
        ),
    ] = None,
    alerts: Annotated[
        bool | None,
        typer.Option(
            "--alerts/--no-alerts",
            help="Evaluate the alerts and run [[alerts.actions]] (default: [alerts] in_serve, on).",
        ),
    ] = None,
    log_every: Annotated[
        float,
        typer.Option(
            "--log-every", min=0.1, help="Seconds between two log lines of counters.", hidden=True
        ),
    ] = 60.0,
) -> None:
    """Run the ingest listener without the console (Ctrl-C or SIGTERM stops it cleanly).

    Prints `listening on HOST:PORT` once bound (and, with `--http-port` or `[ingest.http] port`,
    `HTTP ingest on http://HOST:PORT/api/events`), then one line of counters a minute on stderr.
    The ingest token comes from the config file or $FACTORY_TUI_TOKEN. With `[ingest.mqtt] url`
    set, it also subscribes to that MQTT broker (events acknowledged once stored). With
    `[forward] url` set, the site's events are forwarded to that central database in the
    background; with
    `[store] keep_days`, older events are deleted. A warning is logged while the database's
    disk is under 10 % free. Alerts are evaluated every `[metrics] tick_s` as in the console
    that owns the listener, by a child process: written to the alerts table, handed to
    `[[alerts.actions]]` and logged when raised and cleared (`--no-alerts` or
    `[alerts] in_serve = false`: not at all). One process owns a database (on PostgreSQL, a
    site): when another factory-tui does, on any port, it exits with one line naming it.
    """
    settings = settings_from(
        config,
        **dotted(
            store__path=db,
            ingest__host=host,
            ingest__port=port,
            ingest__auto_register=True if auto_register else None,
            ingest__http__port=http_port,
            alerts__in_serve=alerts,
        ),
    )
    # Our loggers only, and only while serving: the handler holds this process's stderr.
    with log_to_stderr():
        error = asyncio.run(_serve(settings, log_every))
    if error is not None:
        fail(error)


async def _serve(settings: Settings, log_every: float) -> str | None:
    """Own the database, then serve until SIGINT/SIGTERM; a one-sentence error when another
    process owns it (naming it) or the listener cannot start."""
    # The claim comes first: a second serve on the same database (any port) must touch
    # nothing, and a killed owner's claim is gone with it (storage.claim).
    try:
        claim = await asyncio.to_thread(claim_owner, settings.store.location, settings.site.id)
    except StoreError as error:
        return str(error)
    try:
        return await _serve_owned(settings, log_every, claim)
    finally:
        await asyncio.to_thread(claim.release)


async def _serve_owned(settings: Settings, log_every: float, claim: OwnerClaim) -> str | None:
    """Run until SIGINT/SIGTERM, holding `claim`; a one-sentence error when the listener
    cannot start."""
    forwarder: BackgroundForwarder | None = None
    if settings.forward.url is not None:
        try:
            forwarder = BackgroundForwarder(Forwarder.from_settings(settings))
        except ForwardError as error:
            return str(error)
    listener = Listener(settings)
    # Before "listening on": whoever waits for that line may stop us at once, and a SIGTERM
    # then must be the orderly stop, not the default action.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await listener.start()
    except ListenerError as error:
        return str(error)
    await asyncio.to_thread(claim.announce, listener.host, listener.port)
    # On stdout, for whoever started us (a script waiting for the port); logs go to stderr.
    print(f"listening on {listener.host}:{listener.port}", flush=True)
    http_ingest: HttpIngest | None = None
    if settings.ingest.http.port is not None:
        http_ingest = HttpIngest(settings, listener)
        try:
            await http_ingest.start()
        except HttpIngestError as error:
            await listener.stop()
            return str(error)
        print(f"HTTP ingest on http://{http_ingest.host}:{http_ingest.port}/api/events", flush=True)
    metrics_http: MetricsServer | None = None
    floor: StoreFloor | None = None
    mqtt: MqttIngest | None = None
    if settings.metrics_http.port is not None:
        floor = StoreFloor(settings)
        metrics_http = metrics_server(
            settings,
            listener,
            forwarder,
            floor,
            lambda: mqtt.state() if mqtt is not None else None,
        )
        try:
            metrics_http.start()
        except MetricsHttpError as error:
            await listener.stop()
            return str(error)
        log.info("serving /metrics on %s:%d", metrics_http.host, metrics_http.port)
    if settings.ingest.mqtt.url is not None:
        try:
            mqtt = MqttIngest(listener)
            mqtt.start()
        except MqttError as error:
            if metrics_http is not None:
                await asyncio.to_thread(metrics_http.stop)
            await listener.stop()
            return str(error)
    if forwarder is not None:
        forwarder.start()
    # After the handlers: a sweep's log line must not come before SIGTERM stops us cleanly.
    retention = BackgroundRetention.from_settings(settings)
    if retention is not None:
        retention.start()
    log.info("database %s; Ctrl-C stops", mask_url(str(listener.store_path)))
    # Owning the database makes us the one process that raises its alerts (a console opened
    # beside us, on any port, finds the claim taken and only views the table). They tick in a
    # child process of their own: their CPU does not come out of ingest's.
    headless = AlertProcess(settings) if settings.alerts.in_serve else None
    if headless is not None:
        for warning in settings.alerts.token_in_clear():
            log.warning("%s", warning)
        headless.start()
    disk_watch = asyncio.create_task(_watch_disk(settings, stop), name="factory-tui disk")
    lost: list[str] = []
    claim_watch = asyncio.create_task(_keep_claim(claim, stop, lost), name="factory-tui claim")
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), log_every)
            except TimeoutError:
                forward = "" if forwarder is None else f"; forward {forwarder.state().describe()}"
                if mqtt is not None:
                    forward += f"; {mqtt.state().describe()}"
                log.info("%s%s", format_stats(listener.stats()), forward)
    finally:
        disk_watch.cancel()
        claim_watch.cancel()
        # First: its queued actions get their few seconds while the rest stops.
        alerts_stopped = asyncio.create_task(_stop_alerts(headless))
        if http_ingest is not None:
            await http_ingest.stop()  # before the listener: what it received is answered
        if metrics_http is not None:
            await asyncio.to_thread(metrics_http.stop)
        if floor is not None:
            await asyncio.to_thread(floor.close)
        log.info("stopping: answering what was received")
        if mqtt is not None:
            await mqtt.stop()  # before the listener: its last messages are stored and acked
        await listener.stop()
        if forwarder is not None:
            await asyncio.to_thread(forwarder.stop)
        if retention is not None:
            await asyncio.to_thread(retention.stop)
        await alerts_stopped
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return lost[0] if lost else None


async def _keep_claim(claim: OwnerClaim, stop: asyncio.Event, lost: list[str]) -> None:
    """Every KEEP_CLAIM_S, check we still own the database (a PostgreSQL session that ended is
    taken again); if another process took it meanwhile, say why in `lost` and stop serving:
    two owners would both ingest and both fire every alert action."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), KEEP_CLAIM_S)
        if stop.is_set():
            return
        problem = await asyncio.to_thread(claim.keep)
        if problem is not None:
            log.error("no longer the owner, stopping: %s", problem)
            lost.append(f"stopped, no longer the owner: {problem}")
            stop.set()
            return


async def _stop_alerts(headless: AlertProcess | None) -> None:
    """Stop the alerts' process (its queued actions get a few seconds)."""
    if headless is not None:
        await asyncio.to_thread(headless.stop)


def metrics_server(
    settings: Settings,
    listener: Listener,
    forwarder: BackgroundForwarder | None,
    floor: StoreFloor,
    mqtt_state: Callable[[], MqttState | None] = lambda: None,
) -> MetricsServer:
    """`/metrics` for `serve`: figures from the store, counters from the running listener."""

    def ingest() -> IngestFigures:
        forward = None if forwarder is None else forwarder.state()
        return IngestFigures(listener.stats(), listener.commit_latency(), forward, mqtt_state())

    collector = FloorCollector(settings.site.id, floor, on_loop(asyncio.get_running_loop(), ingest))
    http = settings.metrics_http
    return MetricsServer(collector, http.host, http.port or 0, token=http.token)


async def _watch_disk(settings: Settings, stop: asyncio.Event) -> None:
    """Log a warning at start, and every DISK_CHECK_S after, while the database's disk is
    low (a SQLite file's; a PostgreSQL server's disk is not ours to read)."""
    while not stop.is_set():
        warning = low_disk_warning(settings.store.location)
        if warning is not None:
            log.warning("%s", warning)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), DISK_CHECK_S)


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command()(serve)
