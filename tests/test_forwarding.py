"""Store-and-forward: a site's events reach the central database in id order, once each, with
the site's description and roster; a cut link delays them and loses none.

Real parts throughout: SQLite site databases, a real PostgreSQL (`pg_url`) or SQLite central
database, a real listener fed by simulated cameras over TCP, and a loopback TCP proxy in front
of PostgreSQL that the test cuts and restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from factory_tui.config import Settings, load_settings
from factory_tui.engine import Snapshot, Window
from factory_tui.forwarding import (
    BackgroundForwarder,
    Backoff,
    Forwarder,
    ForwardError,
    choose_site,
    cursor_key,
)
from factory_tui.ingest.client import IngestClient
from factory_tui.ingest.listener import Listener
from factory_tui.ingest.simulator import CameraFleet
from factory_tui.models import NewEventRow, RosterEntry, to_utc_us
from factory_tui.records import ForwardState
from factory_tui.storage import Store, StoreUnreachable, open_store
from factory_tui.warm_start import load_engine
from tests.demo_config import write_demo_config
from tests.ingest.conftest import ServeProcess, start_cli

US = 1_000_000
SHIFT = to_utc_us(datetime(2025, 3, 3, 6, 0, tzinfo=UTC))
WAIT_S = 30.0
"""The bound on every wait: generous, the waits themselves are event-driven."""


def site_settings(db: Path | str, site: str, name: str = "", **dotted: Any) -> Settings:
    """Demo roster and shifts, the site `site`, its database `db`, a free port."""
    overrides = {"store.path": db, "site.id": site, "site.name": name, "ingest.port": 0}
    overrides.update(dotted)
    return load_settings(write_demo_config(Path.cwd()), environ={}, overrides=overrides)


def fleet_lines(settings: Settings, hours: float, seed: int = 3) -> list[bytes]:
    """The simulated cameras' lines over `hours` of the shift (duplicates and late ones too)."""
    fleet = CameraFleet(settings.roster_workers(), settings.roster_workstations(), seed=seed)
    return fleet.events_between(SHIFT, SHIFT + int(hours * 3600 * US))


def stored(location: Path | str, site: str) -> list[tuple[Any, ...]]:
    """Every event of `site`, in id order, without its id (ids are each database's own)."""
    with open_store(location, read_only=True, site=site) as store:
        return [tuple(row.as_new_row()) for row in store.iter_since(0)]


def fill(settings: Settings, lines: list[bytes]) -> int:
    """Store `lines` in the site's database as its listener would; returns the newest id."""
    from factory_tui.models import parse_event

    with open_store(settings.store.location, site=settings.site.id) as store:
        store.describe_site(settings.site.label, settings.site_description(), 1)
        store.upsert_roster(settings.roster_workers(), settings.roster_workstations())
        store.insert_batch([parse_event(line) for line in lines], received_us=SHIFT)
        return store.max_event_id()


class Watch:
    """Wakes the test whenever the forwarder (in its own thread) reports progress."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.changed = asyncio.Event()
        self.hold_after: int | None = None
        """Batches after which the forwarder thread waits for `release` (a cut mid-stream)."""
        self.held = asyncio.Event()
        self.release = threading.Event()

    def __call__(self, forwarder: Forwarder) -> None:
        self.loop.call_soon_threadsafe(self.changed.set)
        if self.hold_after is not None and forwarder.tally.batches == self.hold_after:
            self.hold_after = None
            self.loop.call_soon_threadsafe(self.held.set)
            self.release.wait(WAIT_S)

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not condition():
                self.changed.clear()
                if condition():
                    return
                await self.changed.wait()


class LinkProxy:
    """A loopback TCP proxy to a server, with a switch: `cut` closes every connection and
    refuses new ones (accepted, then reset at once) until `restore`."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.is_cut = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def cut(self) -> None:
        self.is_cut = True
        for writer in list(self._open):
            writer.transport.abort()

    def restore(self) -> None:
        self.is_cut = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        for end in (writer, up_writer):
            self._open.add(end)
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)
        self._pipes.difference_update(pipes)
        for end in (writer, up_writer):
            self._open.discard(end)
            end.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


def through(url: str, port: int) -> str:
    """`url` with its host and port replaced by 127.0.0.1:`port`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[LinkProxy]:
    parts = urlsplit(pg_url)
    running = LinkProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await running.start()
    yield running
    await running.close()


@pytest.fixture(params=["sqlite", "postgres"])
def central(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The central database: a SQLite file, then a fresh PostgreSQL schema."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return str(tmp_path / "central.db")


# --- the parts ----------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_jittered_down_by_at_most_half() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(1))
    waits = [backoff.next_s() for _ in range(8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert len(set(waits)) == len(waits)  # jittered
    backoff.reset()
    assert backoff.next_s() <= 0.5


def test_the_site_to_forward_is_the_configured_one_or_the_only_one_stored() -> None:
    assert choose_site(["main"], "main", explicit=False) == "main"
    assert choose_site(["pune"], "main", explicit=False) == "pune"
    assert choose_site([], "main", explicit=False) == "main"
    assert choose_site(["pune", "austin"], "austin", explicit=False) == "austin"
    assert choose_site(["pune"], "main", explicit=True) == "main"
    with pytest.raises(ForwardError, match="holds sites pune, austin"):
        choose_site(["pune", "austin"], "main", explicit=False)


def test_the_forward_state_in_words() -> None:
    assert ForwardState("c", 0).describe() == "caught up"
    assert ForwardState("c", None).describe() == "starting"
    assert ForwardState("c", 1).describe() == "1 event behind"
    assert ForwardState("c", 12_040).describe() == "12,040 events behind"
    assert ForwardState("c", 0, 42.0, "x").describe() == "central unreachable for 42s"
    assert (
        ForwardState("c", 1_204, 185.0, "x").describe()
        == "central unreachable for 3m (1,204 events behind)"
    )
    assert ForwardState("c", 5, 7_500.0, "x").describe().startswith("central unreachable for 2h05m")


def test_forwarding_to_its_own_database_is_refused(tmp_path: Path) -> None:
    settings = site_settings(tmp_path / "site.db", "pune")
    with pytest.raises(ForwardError, match="this site's own database"):
        Forwarder.from_settings(settings, str(tmp_path / "." / "site.db"))
    with pytest.raises(ForwardError, match="no forward target"):
        Forwarder.from_settings(settings)


def test_a_backlog_reaches_the_target_in_id_order_with_the_sites_description(
    tmp_path: Path, central: str
) -> None:
    settings = site_settings(tmp_path / "site.db", "pune", "Pune plant")
    lines = fleet_lines(settings, 2)
    last = fill(settings, lines)
    with open_store(settings.store.location, site="pune") as site:
        site.register_ids(["W99"], [])  # auto-registered: the roster travels as stored
    forwarder = Forwarder.from_settings(settings, central, batch_size=300)
    tally = forwarder.run(threading.Event(), once=True)

    assert stored(central, "pune") == stored(settings.store.location, "pune")
    assert tally.forwarded == len(stored(central, "pune")) > 1_000
    assert tally.already_there == tally.refused == 0
    assert tally.batches == -(-tally.forwarded // 300)
    assert forwarder.cursor == last
    assert forwarder.state() == ForwardState(forwarder.target_name, 0)
    with open_store(settings.store.location, read_only=True, site="pune") as site:
        assert site.forward_cursor(cursor_key(central, "pune")) == last
    with open_store(central, read_only=True, site="pune") as target:
        (record,) = target.sites()
        assert (record.id, record.name) == ("pune", "Pune plant")
        assert record.description == settings.site_description()
        assert target.workers()["W99"] == "W99"
        assert target.workers()["W1"] == "Ana Silva"
        assert target.workstations() == {e.id: e.name for e in settings.roster_workstations()}

    # Nothing new: a second run ships nothing and keeps the cursor.
    again = Forwarder.from_settings(settings, central).run(threading.Event(), once=True)
    assert (again.forwarded, again.batches) == (0, 0)


class _LostAcknowledgement:
    """A target whose first batch commits and then fails, as when the link drops after the
    central commit and before its answer arrives."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def insert_fresh_rows(self, rows: list[NewEventRow]) -> list[str]:
        statuses = self._store.insert_fresh_rows(rows)
        if not self.failed:
            self.failed = True
            raise StoreUnreachable("database unreachable: server closed the connection")
        return list(statuses)


def test_a_batch_committed_but_not_acknowledged_is_already_there_next_time(
    tmp_path: Path, central: str
) -> None:
    settings = site_settings(tmp_path / "site.db", "pune")
    last = fill(settings, fleet_lines(settings, 1))
    wrappers: list[_LostAcknowledgement] = []

    def open_target(location: str, site_id: str) -> Store:
        store = open_store(location, site=site_id)
        if wrappers:
            return store
        wrappers.append(_LostAcknowledgement(store))
        return wrappers[0]  # type: ignore[return-value]

    forwarder = Forwarder.from_settings(
        settings, central, batch_size=200, retry_first_s=0.01, open_target=open_target
    )
    tally = forwarder.run(threading.Event(), once=True, give_up_after=3)
    assert tally.already_there == 200  # the lost batch, sent again, was not stored twice
    assert stored(central, "pune") == stored(settings.store.location, "pune")
    assert forwarder.cursor == last


def test_an_event_the_target_cannot_hold_is_passed_over_and_the_rest_go_on(
    tmp_path: Path, pg_url: str
) -> None:
    """PostgreSQL text holds no NUL character; SQLite's does. One such event must not hold
    back every event after it."""
    settings = site_settings(tmp_path / "site.db", "pune")
    fill(settings, fleet_lines(settings, 0.5))
    with open_store(settings.store.location, site="pune") as site:
        bad = site.read_since(0, 1)[0]
        odd = bad.as_new_row()._replace(camera_id="cam\x00era", event_hash="f" * 64)
        site.insert_rows([odd])
    tally = Forwarder.from_settings(settings, pg_url, batch_size=100).run(
        threading.Event(), once=True
    )
    assert tally.refused == 1
    central_rows = stored(pg_url, "pune")
    assert central_rows == [r for r in stored(settings.store.location, "pune") if r != tuple(odd)]


# --- a site box, a cut link, and the central copy ---------------------------------------------


async def send_all(client: IngestClient, lines: list[bytes]) -> None:
    """Send lines in camera-sized chunks; every one is answered accepted or duplicate."""
    for start in range(0, len(lines), 500):
        replies = await client.send(lines[start : start + 500])
        assert {reply["status"] for reply in replies} <= {"accepted", "duplicate"}


def snapshot_of(store: Store, settings: Settings, window: Window) -> Snapshot:
    """The figures of `window` from `store`, as `report` loads them (the id cursor, which is
    each database's own, left out)."""
    engine = load_engine(store, settings, window, window.to_us, every_station=True)
    return replace(engine.snapshot(window, window.to_us), cursor=0)


async def test_a_cut_link_delays_events_and_loses_none(
    tmp_path: Path, pg_url: str, proxy: LinkProxy
) -> None:
    settings = site_settings(tmp_path / "pune.db", "pune", "Pune plant")
    lines = fleet_lines(settings, 8)
    half = len(lines) // 2
    watch = Watch(asyncio.get_running_loop())
    watch.hold_after = 3
    listener = Listener(settings)
    await listener.start()
    forwarder = Forwarder.from_settings(
        settings,
        through(pg_url, proxy.port),
        batch_size=100,
        interval_s=0.05,
        retry_first_s=0.05,
        retry_max_s=0.2,
        on_progress=watch,
    )
    background = BackgroundForwarder(forwarder)
    background.start()
    client = IngestClient("127.0.0.1", listener.port)
    await client.connect()
    try:
        await send_all(client, lines[:half])
        await asyncio.wait_for(watch.held.wait(), WAIT_S)  # three batches in, more to go
        proxy.cut()
        watch.release.set()
        await watch.until(lambda: forwarder.state().down_s is not None)

        # The link is down: the site keeps accepting and acknowledging, the backlog grows.
        await send_all(client, lines[half:])
        with open_store(settings.store.location, read_only=True, site="pune") as site:
            last = site.max_event_id()
            assert site.count_since(forwarder.cursor or 0) > half // 2
        assert forwarder.state().describe().startswith("central unreachable for")

        proxy.restore()
        await watch.until(lambda: forwarder.cursor == last)
    finally:
        await client.close()
        await asyncio.to_thread(background.stop)
        await listener.stop()

    site_rows = stored(settings.store.location, "pune")
    assert stored(pg_url, "pune") == site_rows  # event for event, in order, nothing twice
    assert forwarder.tally.forwarded == len(site_rows)

    # The central side computes the site's figures from what the site forwarded.
    window = Window(SHIFT, SHIFT + 8 * 3600 * US, "A")
    with open_store(settings.store.location, read_only=True, site="pune") as site:
        at_site = snapshot_of(site, settings, window)
    with open_store(pg_url, read_only=True, site="pune") as target:
        (record,) = target.sites()
        central_settings = Settings().for_site(record.id, record.name, record.description)
        centrally = snapshot_of(target, central_settings, window)
    assert centrally == at_site
    assert centrally.factory.units > 0


async def test_two_sites_forwarding_at_once_stay_apart(tmp_path: Path, central: str) -> None:
    """The same worker ids, and even the same events, at two sites: each keeps its own."""
    pune = site_settings(tmp_path / "pune.db", "pune", "Pune")
    austin = site_settings(tmp_path / "austin.db", "austin", "Austin", timezone="America/Chicago")
    shared = fleet_lines(pune, 2, seed=7)
    fill(pune, shared + fleet_lines(pune, 2, seed=8))
    fill(austin, shared)
    with open_store(austin.store.location, site="austin") as site:
        site.upsert_roster([RosterEntry("W1", "Jo Park")], [])
    loop = asyncio.get_running_loop()
    watches = [Watch(loop), Watch(loop)]
    forwarders = [
        Forwarder.from_settings(s, central, batch_size=250, interval_s=0.05, on_progress=w)
        for s, w in zip((pune, austin), watches, strict=True)
    ]
    backgrounds = [BackgroundForwarder(forwarder) for forwarder in forwarders]
    for background in backgrounds:
        background.start()
    try:
        for forwarder in forwarders:
            await asyncio.to_thread(forwarder.caught_up.wait, WAIT_S)
    finally:
        for background in backgrounds:
            await asyncio.to_thread(background.stop)

    for settings in (pune, austin):
        site_id = settings.site.id
        assert stored(central, site_id) == stored(settings.store.location, site_id)
    assert len(stored(central, "pune")) > len(stored(central, "austin")) > 0
    with open_store(central, read_only=True) as target:
        assert [(s.id, s.name, s.description["timezone"]) for s in target.sites()] == [
            ("austin", "Austin", "America/Chicago"),
            ("pune", "Pune", "UTC"),
        ]
        assert target.scoped("pune").workers()["W1"] == "Ana Silva"
        assert target.scoped("austin").workers()["W1"] == "Jo Park"


# --- the command --------------------------------------------------------------------------------


async def run_forward(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await start_cli("forward", *args, env=env)
    out, err = await asyncio.wait_for(process.communicate(), 60.0)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_forward_once_drains_a_sqlite_site_into_a_sqlite_central(tmp_path: Path) -> None:
    settings = site_settings(tmp_path / "site.db", "pune", "Pune")
    fill(settings, fleet_lines(settings, 2))
    site_rows = stored(settings.store.location, "pune")
    central = tmp_path / "central.db"

    # No --site: the database holds one site, and that is the one forwarded.
    code, out, err = await run_forward(
        "--once", "--db", str(tmp_path / "site.db"), "--to", str(central), "--batch-size", "500"
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"forwarding site pune from {tmp_path / 'site.db'} to {central}"
    batches = -(-len(site_rows) // 500)
    assert lines[-1].startswith(
        f"forwarded {len(site_rows):,}, already there 0, in {batches} batches, "
    )
    assert lines[-1].endswith(" events/s)")
    assert stored(central, "pune") == site_rows

    code, out, _ = await run_forward(
        "--once", "--db", str(tmp_path / "site.db"), "--to", str(central)
    )
    assert code == 0
    assert out.splitlines()[-1].startswith("forwarded 0, already there 0, in 0 batches")


def small_site(tmp_path: Path) -> int:
    """Site pune's database in tmp_path/site.db with half an hour of events; how many."""
    settings = site_settings(tmp_path / "site.db", "pune")
    fill(settings, fleet_lines(settings, 0.5))
    return len(stored(settings.store.location, "pune"))


async def test_forward_retries_an_unreachable_target_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    waiting = small_site(tmp_path)
    nowhere = tmp_path / "no such folder" / "central.db"
    process = await start_cli("forward", "--db", str(tmp_path / "site.db"), "--to", str(nowhere))
    assert process.stderr is not None
    seen = b""
    async with asyncio.timeout(WAIT_S):
        while b"retrying" not in seen:
            line = await process.stderr.readline()
            assert line, seen
            seen += line
    assert b"cannot create database" in seen
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), WAIT_S)
    assert process.returncode == 0, err
    lines = out.decode().splitlines()
    assert lines[-2].startswith("forwarded 0, already there 0, in 0 batches")
    assert lines[-1] == f"stopped with {waiting} events still to forward (they wait here)"


async def test_forward_once_gives_up_on_an_unreachable_target_with_exit_code_1(
    tmp_path: Path,
) -> None:
    waiting = small_site(tmp_path)
    code, out, err = await run_forward(
        "--once",
        "--db",
        str(tmp_path / "site.db"),
        "--to",
        str(tmp_path / "missing" / "central.db"),
        env={"FACTORY_TUI_FORWARD_RETRY_MAX_S": "0.05"},
    )
    assert code == 1
    last = err.splitlines()[-1]
    assert last.startswith("factory-tui: gave up: cannot create database")
    assert last.endswith(f"; {waiting} events wait in {tmp_path / 'site.db'}")
    assert "forwarded 0" in out


async def test_serve_forwards_in_the_background_and_logs_the_forward_state(
    tmp_path: Path,
) -> None:
    central = tmp_path / "central.db"
    settings = site_settings(tmp_path / "site.db", "pune")
    config = tmp_path / "factory.toml"
    config.write_text(
        f'[site]\nid = "pune"\n[store]\npath = "{tmp_path / "site.db"}"\n'
        f'[forward]\nurl = "{central}"\ninterval_s = 0.05\n'
        '[[workers]]\nid = "W1"\n[[workstations]]\nid = "S1"\n'
    )
    serve = await ServeProcess.start(
        "--config", str(config), "--auto-register", "--log-every", "0.1"
    )
    stderr = serve.process.stderr
    assert stderr is not None
    seen = b"\n"
    try:
        async with IngestClient("127.0.0.1", serve.port) as client:
            await send_all(client, fleet_lines(settings, 1))
        accepted = len(stored(tmp_path / "site.db", "pune"))

        def forwarded() -> int:
            return len(stored(central, "pune")) if central.exists() else 0

        async with asyncio.timeout(WAIT_S):
            # Each counters line (one every 0.1 s) is a look at the central copy.
            while forwarded() < accepted or b"forward caught up" not in seen.splitlines()[-1]:
                line = await stderr.readline()
                assert line, seen
                seen += line
    finally:
        serve.process.send_signal(signal.SIGTERM)
        rest = await serve.stderr_rest()
        await serve.kill()
    assert serve.process.returncode == 0, rest
    assert f"forwarding site pune to {central}".encode() in seen
    site_rows = stored(tmp_path / "site.db", "pune")
    assert stored(central, "pune") == site_rows
    assert len(site_rows) > 100
