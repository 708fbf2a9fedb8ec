"""`factory-tui demo`: the console fed by the camera simulator, on its own demo database."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from factory_tui.commands.common import fail
from factory_tui.commands.console import ViewerOption, ViewName, ViewOption, run_to_exit
from factory_tui.config import ConfigError, Settings, demo_data
from factory_tui.models import from_utc_us, now_us, to_utc_us
from factory_tui.storage import Store, StoreError, open_store

if TYPE_CHECKING:
    from factory_tui.console.services import Feeder, SubmitLines
    from factory_tui.ingest.simulator import SimClock

DEMO_DB: Final = Path("factory-demo.db")
DEMO_PORT: Final = 7879
"""Not the production default (7878), so a demo can run beside a real console."""
DEFAULT_SPEED: Final = 10.0
DEMO_WEB_PORT: Final = 8000


def demo_settings(*, port: int = DEMO_PORT, workers: int | None = None) -> Settings:
    """The demo's settings: demo roster and shifts, `factory-demo.db`, loopback on `port`.

    Built from the demo data alone, never from factory.toml or FACTORY_TUI_* variables, so a
    demo cannot write simulated events into a production database.
    """
    from factory_tui.ingest.simulator import extend_roster

    data: dict[str, Any] = demo_data()
    base = Settings.model_validate(data)
    if workers is not None:
        roster = extend_roster(base.roster_workers(), workers, "W")
        data["workers"] = [{"id": entry.id, "name": entry.name} for entry in roster]
    data["store"] = {"path": str(DEMO_DB)}
    data["ingest"] = {"host": "127.0.0.1", "port": port}
    try:
        return Settings.model_validate(data)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"demo settings: {error}") from None


def simulator_feeder(
    settings: Settings, *, speed: float, seed: int, start_us: int | None = None
) -> tuple[SimClock, Feeder]:
    """A simulated clock and a feeder that runs the camera fleet of `settings`' roster.

    The feeder first sends the current window's history (from the shift start up to the
    clock's now), then keeps pace with the clock. The app uses the same clock as its "now".
    """
    from factory_tui.ingest.simulator import CameraFleet, SimClock, run_fleet

    clock = SimClock(now_us() if start_us is None else start_us, speed)
    try:
        fleet = CameraFleet(settings.roster_workers(), settings.roster_workstations(), seed=seed)
    except ValueError as error:
        fail(f"cannot simulate this roster: {error}")
    now = clock.now_us()
    window_start = settings.current_window(from_utc_us(now))[0]
    from_us = min(now, to_utc_us(window_start))

    async def feed(submit: SubmitLines, stop: asyncio.Event, caught_up: asyncio.Event) -> object:
        return await run_fleet(
            fleet, clock, submit, stop=stop, from_us=from_us, caught_up=caught_up
        )

    return clock, feed


class NewestEventClock:
    """ "Now" for a demo viewer: the newest stored event time.

    The demo's owner runs simulated time (maybe 10x the wall clock), which a second process
    cannot know; the newest event is where simulated time has got to, within a heartbeat.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._store: Store | None = None
        self._last = now_us()

    def __call__(self) -> int:
        """The newest event's timestamp (the previous answer while the database is busy)."""
        try:
            if self._store is None:
                self._store = open_store(self._path, read_only=True)
            span = self._store.time_span()
        except StoreError:
            return self._last
        if span is not None:
            self._last = max(self._last, span[1])
        return self._last


def remove_database(path: Path) -> None:
    """Delete a database file with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def demo(
    port: Annotated[
        int | None, typer.Option("--port", "-p", help=f"Listener TCP port (default {DEMO_PORT}).")
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0.1, max=3600.0, help="Simulated seconds per real second."),
    ] = DEFAULT_SPEED,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, max=2000, help="Number of simulated workers (default: 6)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Simulator seed (same seed, same floor).")
    ] = 1,
    sites: Annotated[
        int | None,
        typer.Option(
            "--sites",
            min=2,
            max=5,
            help="Simulate this many sites (own rosters, sizes and time zones) into the demo "
            "database and open on the fleet view.",
        ),
    ] = None,
    web: Annotated[
        bool,
        typer.Option("--web", help="Open the demo in a web browser instead of this terminal."),
    ] = False,
    web_port: Annotated[
        int, typer.Option("--web-port", min=0, max=65535, help="HTTP port of --web (0: free).")
    ] = DEMO_WEB_PORT,
    viewer: ViewerOption = False,
    view: ViewOption = ViewName.workers,
    site: Annotated[
        str | None,
        typer.Option(
            "--site", help="A viewer's site to show (a `--sites` demo's; a browser tab's ?site=)."
        ),
    ] = None,
) -> None:
    """The console with simulated cameras, on a fresh factory-demo.db in this folder.

    Runs the demo roster on port 7879 (so it can run beside a real console on 7878) with
    simulated time running --speed times faster than the clock; the current shift's history is
    filled in first. A second `factory-tui demo` while one runs becomes its read-only viewer.
    With --web the simulator runs here and the console opens in the browser (one viewer per
    tab, on http://127.0.0.1:8000/ unless --web-port says otherwise; with --sites, the fleet).
    """
    from factory_tui.console.app import make_app
    from factory_tui.console.services import live_owner

    try:
        settings = demo_settings(port=DEMO_PORT if port is None else port, workers=workers)
    except ConfigError as error:
        fail(str(error))
    if viewer and web:
        fail("--web serves viewers of the demo, and a --viewer runs in this terminal: pick one")
    owner = live_owner(DEMO_DB)
    if site is not None and web:
        fail("--web serves every site, so --site is a tab's: add ?site=ID to its address")
    if site is not None and not viewer and owner is None:
        fail(
            "--site picks what a demo viewer shows, and this demo would run the simulator: "
            "open the fleet with --sites N, then a second `factory-tui demo --site ID`"
        )
    if web:
        fleet = sites if owner is None else None  # a running demo is only served, as it is
        _demo_web(settings, owner=owner, speed=speed, seed=seed, web_port=web_port, sites=fleet)
        return
    if sites is not None and owner is None and not viewer:
        _demo_sites(settings, sites, speed=speed, seed=seed)
        return
    if viewer or owner is not None:
        if site is not None:
            try:
                settings = settings.for_site(site, site, {})
            except ValueError as error:  # pydantic's ValidationError: not a site id
                fail(f"--site {site!r}: {error}")
        app = make_app(
            settings,
            clock=NewestEventClock(DEMO_DB),
            role="viewer",
            demo=True,
            view=view.value,
            site_chosen=site is not None,
        )
    else:
        # Each demo starts from an empty floor; the file is ours (see demo_settings).
        remove_database(DEMO_DB)
        clock, feeder = simulator_feeder(settings, speed=speed, seed=seed)
        app = make_app(settings, clock=clock.now_us, feeder=feeder, demo=True, view=view.value)
    run_to_exit(app)


def _demo_sites(settings: Settings, count: int, *, speed: float, seed: int) -> None:
    """`demo --sites N`: N simulated sites into one fresh demo database, seen as a fleet."""
    from factory_tui.console.app import make_app

    remove_database(DEMO_DB)
    owned, clock, feeder = _fleet(settings, count, speed=speed, seed=seed)
    app = make_app(owned, clock=clock.now_us, feeder=feeder, demo=True)
    run_to_exit(app)


def _fleet(
    settings: Settings, count: int, *, speed: float, seed: int
) -> tuple[Settings, SimClock, Feeder]:
    """`count` demo sites described in the (fresh) demo database: the settings of the site
    whose listener the owner runs, the simulated clock and the feeder of every site."""
    from factory_tui.commands.demo_sites import describe_sites, fleet_feeder, fleet_settings

    sites = fleet_settings(settings, count)
    try:
        describe_sites(DEMO_DB, sites)
    except StoreError as error:
        fail(str(error))
    clock, feeder = fleet_feeder(sites, speed=speed, seed=seed)
    return sites[0], clock, feeder


def _demo_web(
    settings: Settings,
    *,
    owner: int | None,
    speed: float,
    seed: int,
    web_port: int,
    sites: int | None = None,
) -> None:
    """`demo --web`: the simulator and its listener here (unless a demo already runs), and a
    web server whose tabs each run `factory-tui demo --viewer`; with `sites`, the simulated
    fleet (`demo --sites N`), each tab opening on its Sites view (or `?site=`'s floor)."""
    from factory_tui.commands.web import make_server, serve_web
    from factory_tui.console.services import ConsoleServices, StartError

    server = make_server(
        ["demo"], host="127.0.0.1", port=web_port, token="", title="factory-tui demo"
    )

    async def run() -> str | None:
        if owner is not None:  # another demo feeds the database: only serve it
            return await serve_web(server, browser=True)
        remove_database(DEMO_DB)
        clock: SimClock
        feeder: Feeder
        if sites is None:
            owned = settings
            clock, feeder = simulator_feeder(settings, speed=speed, seed=seed)
        else:
            owned, clock, feeder = _fleet(settings, sites, speed=speed, seed=seed)
        services = ConsoleServices(owned, role="console", feeder=feeder)
        try:
            pipeline = await services.start(clock.now_us, None)
        except StartError as error:
            return str(error)
        services.start_feed()
        return await serve_web(
            server,
            services=services,
            tick=pipeline.tick,
            tick_s=owned.metrics.tick_s,
            browser=True,
        )

    error = asyncio.run(run())
    if error is not None:
        fail(error)


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command()(demo)
