"""A viewer says when nobody owns the database it shows: the owner's claim is probed without
being taken (storage.probe_owner), every OWNER_CHECK_S in the tick thread, and the summary
bar says NO OWNER instead of LIVE until an owner is back.

Real parts: `serve` in subprocesses (killed with SIGKILL), SQLite files and PostgreSQL
(pg_url), real claims, the console in App.run_test.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import time
from pathlib import Path

import pytest

from factory_tui.console import owner_watch
from factory_tui.console.app import FactoryApp, make_app
from factory_tui.models import now_us
from factory_tui.storage import claim_owner, open_store, probe_owner
from factory_tui.storage.sqlite_claim import owner_file
from tests.ingest.conftest import ServeProcess
from tests.tui.floor import fill, floor_settings

WAIT_S = 30.0
"""Upper bound of each wait (never reached when things work)."""
POLL_S = 0.05


def test_sqlite_probe_sees_the_claim_without_taking_it(tmp_path: Path) -> None:
    db = tmp_path / "factory.db"
    probe = probe_owner(db)
    assert probe.held("main") is False  # no owner ever ran: no file
    assert not owner_file(db).exists()  # and asking made none
    assert not probe.owned_before()
    claim = claim_owner(db, "main")
    try:
        assert probe.held("main") is True
        assert probe.held("another-site") is True  # one owner per file
    finally:
        claim.release()
    assert probe.held("main") is False
    assert probe.owned_before()  # the file outlives its owner
    # The probe left no lock behind: the claim can be taken at once.
    again = claim_owner(db, "main")
    again.release()
    probe.close()


def test_an_owner_starting_during_a_probe_is_not_refused(tmp_path: Path) -> None:
    """A probe holds a shared lock for an instant; an owner taking the claim meanwhile waits
    for it rather than becoming a viewer. Here the shared lock is held until the claim is
    being taken, then dropped (from another thread) while the claim retries."""
    db = tmp_path / "factory.db"
    claim_owner(db, "main").release()  # makes the file
    fd = os.open(owner_file(db), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)

    async def take_while_held() -> None:
        loop = asyncio.get_running_loop()
        taking = loop.run_in_executor(None, claim_owner, db, "main")
        await asyncio.sleep(0)
        os.close(fd)  # the probe is done
        claim = await asyncio.wait_for(taking, WAIT_S)
        claim.release()

    asyncio.run(take_while_held())


def test_postgres_probe_sees_each_sites_claim(pg_url: str) -> None:
    probe = probe_owner(pg_url)
    try:
        assert probe.held("north") is False
        claim = claim_owner(pg_url, "north")
        try:
            assert probe.held("north") is True
            assert probe.held("south") is False  # each site has its own owner
        finally:
            claim.release()
        # The server drops the lock when the session's backend has ended, a moment later.
        for _ in range(int(WAIT_S / POLL_S)):
            if not probe.held("north"):
                break
            time.sleep(POLL_S)
        assert probe.held("north") is False
    finally:
        probe.close()


async def wait_for_state(app: FactoryApp, state: str) -> None:
    """Tick until the summary bar's feed state is `state` (bounded)."""
    for _ in range(int(WAIT_S / POLL_S)):
        await app.tick_now()
        if app.summary.status.state == state:
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"the status stayed {app.summary.status} (waited for {state})")


def bar_text(app: FactoryApp) -> str:
    return "\n".join(line.plain for line in app.summary._lines(app.summary.size.width))


async def test_a_viewer_says_no_owner_when_serve_is_killed_and_live_when_one_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The QA case: serve owns the database, a console beside it is a viewer; `kill -9` the
    serve and the viewer says NO OWNER (it said LIVE, 0.0 ev/s); a new serve, LIVE again."""
    monkeypatch.setattr(owner_watch, "OWNER_CHECK_S", POLL_S)
    db = tmp_path / "st2.db"
    fill(str(db))
    serve = await ServeProcess.start("--db", str(db))
    try:
        app = make_app(floor_settings(str(db), tick_s=60.0), clock=now_us, animations=False)
        async with app.run_test(size=(120, 40)):
            await asyncio.wait_for(app.started.wait(), WAIT_S)
            assert app.role == "viewer"
            await wait_for_state(app, "live")
            await serve.kill()  # SIGKILL: the claim goes with the process
            await wait_for_state(app, "unowned")
            assert "NO OWNER" in bar_text(app)
            assert "cameras are not being stored" in bar_text(app)
            serve = await ServeProcess.start("--db", str(db))
            await wait_for_state(app, "live")
            assert "NO OWNER" not in bar_text(app)
            serve.process.send_signal(signal.SIGTERM)  # an orderly stop says so too
            assert await asyncio.wait_for(serve.process.wait(), WAIT_S) == 0
            await wait_for_state(app, "unowned")
    finally:
        await serve.kill()


async def test_a_viewer_of_a_database_no_owner_ever_ran_on_says_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A central database filled by `forward` has no owner and never had one: nothing is
    missing there, so it stays LIVE; once an owner has recorded itself, its absence is said."""
    monkeypatch.setattr(owner_watch, "OWNER_CHECK_S", POLL_S)
    db = tmp_path / "central.db"
    fill(str(db))
    app = make_app(
        floor_settings(str(db), tick_s=60.0), clock=now_us, role="viewer", animations=False
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.started.wait(), WAIT_S)
        await wait_for_state(app, "live")
        await pilot.pause()
        live_height = app.summary.size.height
        for _ in range(3):  # several checks, each finding no claim
            await asyncio.sleep(2 * POLL_S)
            await app.tick_now()
            assert app.summary.status.state == "live"
        with open_store(db) as store:
            store.set_owner(4242, "127.0.0.1", 7878)  # an owner ran here once, and is gone
        await wait_for_state(app, "unowned")
        await pilot.pause()
        # The bar says it in the height it has when live: the tiles under it do not jump.
        assert app.summary.size.height == live_height, bar_text(app)
        assert "NO OWNER" in bar_text(app)


async def test_a_postgres_viewer_watches_the_owner_of_its_site(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owner_watch, "OWNER_CHECK_S", POLL_S)
    settings = floor_settings(pg_url, tick_s=60.0)
    with open_store(pg_url, site=settings.site.id) as store:
        store.upsert_roster(settings.roster_workers(), settings.roster_workstations())
        store.set_owner(4242, "127.0.0.1", 7878)
    app = make_app(settings, clock=now_us, role="viewer", animations=False)
    async with app.run_test(size=(120, 40)):
        await asyncio.wait_for(app.started.wait(), WAIT_S)
        await wait_for_state(app, "unowned")
        claim = await asyncio.to_thread(claim_owner, pg_url, settings.site.id)
        try:
            await wait_for_state(app, "live")
        finally:
            claim.release()
        await wait_for_state(app, "unowned")
