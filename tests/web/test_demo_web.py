"""`demo --web` as a browser's tabs reach it: a tab's `?site=` (the viewer it runs is
`demo --viewer --site ID`, which once had no `--site` and died, leaving the tab on "starting
the console…"), and `demo --sites N --web` (once the terminal fleet, `--web` ignored); and a
`factory-tui web` tab of a database whose owner is gone (it said LIVE).

Each tab is read through its websocket, as the page would open it, without a browser (the
address's options are the websocket's path: `/ws/<view>/<site>`).
"""

from __future__ import annotations

import asyncio
import codecs
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.storage import claim_owner
from tests.browser import ANSI
from tests.tui.floor import fill

runner = CliRunner()
WAIT_S = 60.0


@asynccontextmanager
async def demo_web(folder: Path, *args: str) -> AsyncIterator[str]:
    """`factory-tui demo --web` on free ports in `folder`: yields the address it printed."""
    async with served(folder, "demo", "--web", "--web-port", "0", "--port", "0", *args) as url:
        yield url


@asynccontextmanager
async def served(folder: Path, *args: str) -> AsyncIterator[str]:
    """`factory-tui <args>` serving the web console: yields the address it printed."""
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "factory_tui",
        *args,
        cwd=folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert demo.stdout is not None
        first = (await asyncio.wait_for(demo.stdout.readline(), WAIT_S)).decode()
        assert first.startswith("factory-tui web console: open http://"), first
        yield first.split("open ", 1)[1].strip()
    finally:
        demo.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(demo.wait(), WAIT_S) == 0


async def tab_shows(url: str, path: str, *words: str) -> str:
    """What the tab at websocket `path` shows until every one of `words` is on it (bounded)."""
    seen = ""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    address = f"{url.replace('http', 'ws', 1)}{path}"
    async with aiohttp.ClientSession() as session, session.ws_connect(address) as socket:
        async with asyncio.timeout(WAIT_S):
            async for message in socket:
                if message.type == aiohttp.WSMsgType.BINARY:
                    seen += ANSI.sub("", decoder.decode(message.data))
                if all(word in seen for word in words):
                    break
    missing = [word for word in words if word not in seen]
    assert not missing, f"{missing} never shown: {seen[-2000:]}"
    return seen


async def test_a_demo_tab_with_a_site_runs_its_viewer(tmp_path: Path) -> None:
    """`/?site=main` and `/?site=nope`: both tabs run a viewer (the second says there is no
    such site, over the one there is)."""
    async with demo_web(tmp_path) as url:
        await tab_shows(url, "ws/-/main", "LIVE", "Ana Silva", "viewer")
        await tab_shows(url, "ws/-/nope", "Unknown site", "Ana Silva", "viewer")


async def test_demo_sites_web_serves_the_fleet(tmp_path: Path) -> None:
    """`demo --sites 3 --web`: the fleet's simulator here, and tabs of its Sites view (or,
    with `?site=`, of that site's floor)."""
    async with demo_web(tmp_path, "--sites", "3") as url:
        await tab_shows(url, "ws/-/-", "Sites", "North plant", "Pune", "Austin", "viewer")
        await tab_shows(url, "ws/-/pune", "site Pune", "Ravi Kumar", "LIVE")


def test_demo_viewer_and_web_together_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--viewer", "--web"])
    assert result.exit_code == 2
    assert "pick one" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_demo_site_without_a_viewer_to_show_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--site` is what a demo viewer shows: with no demo running (this one would run the
    simulator) or with --web (a tab's `?site=`) it is refused in one line, not ignored."""
    monkeypatch.chdir(tmp_path)
    for args in (["demo", "--site", "pune"], ["demo", "--web", "--site", "pune"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert "--site" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


async def test_a_web_tab_of_a_database_whose_owner_is_gone_says_no_owner(tmp_path: Path) -> None:
    """The tab's viewer checks the owner's claim as a terminal viewer does: NO OWNER while
    nobody holds it (an owner ran here once), LIVE in a tab opened while one does."""
    db = tmp_path / "factory.db"
    fill(str(db))
    claim_owner(db, "main").release()  # an owner ran, and is gone
    async with served(tmp_path, "web", "--db", str(db), "--port", "0") as url:
        await tab_shows(url, "ws/-/-", "NO OWNER", "cameras are not being stored", "viewer")
        claim = claim_owner(db, "main")
        try:
            await tab_shows(url, "ws/-/-", "LIVE", "viewer")
        finally:
            claim.release()
