"""One owner per database: the process that takes the claim (storage.claim_owner) listens,
forwards, runs retention and raises alerts; a console that finds it taken is a read-only viewer
whatever port it was given, a second `serve` exits with one line naming the owner, and a
killed owner leaves no claim behind.

Real parts: `serve` in subprocesses on a SQLite file and on PostgreSQL (pg_url), real TCP,
a real command action; the console's own start-up (ConsoleServices) in this process.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path
from typing import Any

import psycopg
import pytest

from factory_tui.commands import serve as serve_command
from factory_tui.config import load_settings
from factory_tui.console import services as services_module
from factory_tui.console.app import make_app
from factory_tui.console.pipeline import TickPipeline
from factory_tui.console.services import ConsoleServices, live_owner
from factory_tui.engine.alerts import CAMERA_DARK
from factory_tui.models import now_us
from factory_tui.storage import OwnerClaim, OwnerTaken, claim_owner, open_store, postgres_claim
from factory_tui.storage.sqlite_claim import owner_file
from tests.ingest.conftest import ServeProcess, run_cli
from tests.test_serve_alerts import Log, lines_of, recorder, send_now, stop, write_config
from tests.tui.floor import floor_settings

WAIT_S = 30.0
"""Upper bound of each wait (never reached when things work)."""
POLL_S = 0.05


async def refused_serve(*args: str) -> tuple[int, str]:
    """Run a `serve` expected to refuse: its exit status and stderr (bounded)."""
    status, _, err = await run_cli("serve", "--port", "0", *args)
    return status, err


def site_config(tmp_path: Path, site: str) -> Path:
    path = tmp_path / f"{site}.toml"
    path.write_text(f'[site]\nid = "{site}"\n')
    return path


async def test_a_console_beside_serve_on_other_ports_is_a_viewer_and_actions_fire_once(
    tmp_path: Path,
) -> None:
    """The QA case: serve and a console on one database, different ports (the config's
    one_way_port too, which made the console fail 'already in use'): one raise, one action."""
    out = tmp_path / "got.jsonl"
    db = tmp_path / "factory.db"
    config = write_config(tmp_path, recorder(out))
    config.write_text(config.read_text() + "[ingest]\none_way_port = 0\n")
    serve = await ServeProcess.start("--config", str(config), "--db", str(db))
    log = Log(serve)
    services: ConsoleServices | None = None
    try:
        await log.wait_for("one-way port")
        found = re.search(r"one-way port .* on \S+:(\d+)", log.text())
        assert found is not None, log.text()
        settings = load_settings(
            config,
            environ={},
            overrides={
                "store.path": db,
                "ingest.port": 0,
                "ingest.one_way_port": int(found.group(1)),
            },
        )
        services = ConsoleServices(settings, role="console", feeder=None)
        pipeline = await services.start(now_us, None)
        assert services.role == "viewer"
        assert services.listener is None
        assert isinstance(pipeline, TickPipeline)
        assert pipeline.alerts.writer is None
        assert pipeline.alerts.actions is None
        await send_now(serve.port)
        # The viewer ticks all along, before and after serve raises camera_dark.
        shown: tuple[object, ...] = ()
        for _ in range(int(WAIT_S / POLL_S)):
            result = await asyncio.to_thread(pipeline.tick)
            assert result is not None
            shown = tuple((a.kind, a.subject) for a in result.view.alerts.active)
            if shown and lines_of(out):
                break
            await asyncio.sleep(POLL_S)
        assert shown == ((CAMERA_DARK, "W1"),)
        for _ in range(5):
            await asyncio.to_thread(pipeline.tick)
    finally:
        if services is not None:
            await services.stop()
        status, text = await stop(serve, log)  # waits for serve's queued actions
    assert status == 0, text
    assert [line["event"] for line in lines_of(out)] == ["raised"]
    assert text.count("alert raised: camera_dark W1") == 1


async def test_a_second_serve_exits_naming_the_owner_until_the_owner_is_killed(
    tmp_path: Path,
) -> None:
    db = tmp_path / "factory.db"
    first = await ServeProcess.start("--db", str(db))
    try:
        status, err = await refused_serve("--db", str(db))
        store = open_store(db, read_only=True)
        try:
            recorded = store.owner()
        finally:
            store.close()
    finally:
        await first.kill()  # kill -9: nothing of its own runs to release the claim
    assert status != 0
    assert len(err.strip().splitlines()) == 1, err
    assert "another factory-tui owns" in err
    assert f"pid {first.process.pid}" in err
    assert f":{first.port}" in err
    # The refused one touched nothing: the database still names the first as its listener.
    assert recorded is not None
    assert recorded[0] == first.process.pid
    assert recorded[2] == first.port
    # The killed owner left its file but no claim: a new serve owns the database at once.
    assert owner_file(db).exists()
    second = await ServeProcess.start("--db", str(db))
    try:
        assert f"pid {second.process.pid}" in owner_file(db).read_text()
    finally:
        await second.kill()


def test_the_claim_is_held_until_released(tmp_path: Path) -> None:
    db = tmp_path / "factory.db"
    claim = claim_owner(db, "main")
    try:
        claim.announce("127.0.0.1", 7878)
        with pytest.raises(OwnerTaken, match=r"listening on 127\.0\.0\.1:7878"):
            claim_owner(db, "main")
        with pytest.raises(OwnerTaken):
            claim_owner(db, "another-site")  # on SQLite the owner is the file's
    finally:
        claim.release()
    again = claim_owner(db, "main")
    again.release()


async def test_postgres_each_site_has_its_own_owner(pg_url: str, tmp_path: Path) -> None:
    north, south = site_config(tmp_path, "north"), site_config(tmp_path, "south")
    first = await ServeProcess.start("--config", str(north), "--db", pg_url)
    try:
        # Another site of the same database has an owner of its own.
        other_site = await ServeProcess.start("--config", str(south), "--db", pg_url)
        try:
            # The same site does not; the refusal names the owner (its session's name).
            with pytest.raises(OwnerTaken) as refused:
                await asyncio.to_thread(claim_owner, pg_url, "north")
        finally:
            await other_site.kill()
    finally:
        await first.kill()
    message = str(refused.value)
    assert "another factory-tui owns site 'north'" in message
    assert f"pid {first.process.pid}" in message
    assert f":{first.port}" in message
    # Killed: the server ends its session and the lock with it (once it reads the socket's
    # end, which takes a moment: bounded).
    for _ in range(int(WAIT_S / POLL_S)):
        try:
            claim = await asyncio.to_thread(claim_owner, pg_url, "north")
        except OwnerTaken:
            await asyncio.sleep(POLL_S)
            continue
        claim.release()
        break
    else:
        raise AssertionError("the killed owner's advisory lock was never released")


def test_postgres_a_site_is_claimed_once(pg_url: str) -> None:
    claim = claim_owner(pg_url, "north")
    try:
        with pytest.raises(OwnerTaken, match="site 'north'"):
            claim_owner(pg_url, "north")
        claim_owner(pg_url, "south").release()
    finally:
        claim.release()
    claim_owner(pg_url, "north").release()


def test_postgres_session_name_keeps_pid_and_address_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server keeps 63 bytes of an application_name: a long machine name is what is cut."""
    monkeypatch.setattr(socket, "gethostname", lambda: "a-very-long-host" * 8)
    monkeypatch.setattr(os, "getpid", lambda: 4194304)
    name = postgres_claim.session_name(("255.255.255.255", 65535))
    assert len(name.encode()) <= postgres_claim.NAME_MAX_BYTES
    assert name.startswith("factory-tui: pid 4194304 at 255.255.255.255:65535 on a-very-lon")


_SESSIONS_HOLDING = (
    "FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
    "AND classid::bigint = %s AND objid::bigint = %s"
)


def site_lock(conn: psycopg.Connection[Any], site: str) -> tuple[int, int]:
    row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    return postgres_claim.NAMESPACE, postgres_claim.site_key(row[0], site)


def end_session_of(pg_url: str, site: str) -> None:
    """End the server session holding `site`'s claim, as a server restart or a cut link does."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        ended = conn.execute(
            f"SELECT pg_terminate_backend(pid, 10000) {_SESSIONS_HOLDING}", site_lock(conn, site)
        ).fetchall()
    assert ended == [(True,)]


def take_over(pg_url: str, site: str) -> OwnerClaim:
    """End the owner's session and take its claim in the gap, before its watch takes it
    again (which it may win: then again, bounded)."""
    for _ in range(int(WAIT_S / POLL_S)):
        end_session_of(pg_url, site)
        try:
            return claim_owner(pg_url, site)
        except OwnerTaken:
            continue
    raise AssertionError("the owner always took its claim back first")


def is_claimed(pg_url: str, site: str) -> bool:
    """Some session holds `site`'s claim (looked up, not taken: the owner may take it now)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) {_SESSIONS_HOLDING}", site_lock(conn, site)).fetchone()
    return row is not None and row[0] == 1


def test_postgres_an_owner_whose_session_ended_takes_its_claim_again(pg_url: str) -> None:
    claim = claim_owner(pg_url, "north")
    try:
        claim.announce("127.0.0.1", 7878)
        end_session_of(pg_url, "north")
        assert claim.keep() is None  # taken again, on a new session
        with pytest.raises(OwnerTaken, match=r"at 127\.0\.0\.1:7878"):
            claim_owner(pg_url, "north")
        assert claim.keep() is None  # held: nothing to do
    finally:
        claim.release()


def test_postgres_an_owner_whose_claim_was_taken_meanwhile_is_told(pg_url: str) -> None:
    claim = claim_owner(pg_url, "north")
    try:
        end_session_of(pg_url, "north")
        other = claim_owner(pg_url, "north")  # in the gap, before the owner's next keep
        try:
            other.announce("127.0.0.1", 7999)
            problem = claim.keep()
        finally:
            other.release()
    finally:
        claim.release()
    assert problem is not None
    assert "another factory-tui owns site 'north'" in problem
    assert "127.0.0.1:7999" in problem


async def test_postgres_serve_stops_when_its_claim_was_taken_meanwhile(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve's watch over its claim: the owner that lost its site to another stops serving."""
    monkeypatch.setattr(serve_command, "KEEP_CLAIM_S", POLL_S)
    claim = claim_owner(pg_url, "north")
    stop_serving = asyncio.Event()
    lost: list[str] = []
    try:
        watch = asyncio.create_task(serve_command._keep_claim(claim, stop_serving, lost))
        await asyncio.sleep(POLL_S * 4)
        assert not stop_serving.is_set()  # held: it keeps serving
        other = take_over(pg_url, "north")
        try:
            await asyncio.wait_for(watch, WAIT_S)
        finally:
            other.release()
    finally:
        claim.release()
    assert stop_serving.is_set()
    (why,) = lost
    assert why.startswith("stopped, no longer the owner: another factory-tui owns site 'north'")


async def test_postgres_a_console_that_lost_its_site_exits_with_one_line(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's watch over its claim: taken again after its session ended, and when
    another process took the site meanwhile, the console stops with one line saying so."""
    monkeypatch.setattr(services_module, "KEEP_CLAIM_S", POLL_S)
    settings = floor_settings(pg_url, port=0, tick_s=60.0)
    app = make_app(settings, clock=now_us, animations=False)
    async with app.run_test() as pilot:
        await asyncio.wait_for(app.started.wait(), WAIT_S)
        assert app.listener is not None
        end_session_of(pg_url, settings.site.id)
        # Taken again by the console's watch (bounded wait), so a newcomer is refused.
        for _ in range(int(WAIT_S / POLL_S)):
            if is_claimed(pg_url, settings.site.id):
                break
            await asyncio.sleep(POLL_S)
        with pytest.raises(OwnerTaken):
            claim_owner(pg_url, settings.site.id)
        assert app.error_message is None
        other = take_over(pg_url, settings.site.id)
        try:
            for _ in range(int(WAIT_S / POLL_S)):
                if app.error_message is not None:
                    break
                await pilot.pause(POLL_S)
        finally:
            other.release()
    assert app.return_code == 2
    assert app.error_message is not None
    assert app.error_message.startswith("stopped, no longer the owner: another factory-tui owns")


def test_live_owner_is_whoever_holds_the_claim_whatever_the_port(tmp_path: Path) -> None:
    """The demo asks `live_owner` before wiping its database: an owner on another port counts,
    and a stale `meta` record of a process gone does not."""
    db = tmp_path / "factory.db"
    with open_store(db) as store:
        store.set_owner(4242, "127.0.0.1", 7000)
    claim = claim_owner(db, "main")
    try:
        assert live_owner(db, 9999) == 4242
    finally:
        claim.release()
    assert live_owner(db, 7000) is None
