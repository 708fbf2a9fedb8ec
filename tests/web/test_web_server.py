"""The web server without a browser: the token guard, the origin check, the tab's options and
the command's refusals, through aiohttp's test client and typer's runner."""

from __future__ import annotations

import asyncio
import codecs
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.commands.web import viewer_argv
from factory_tui.storage import Store
from factory_tui.web.server import COOKIE, ConsoleServer, TabOptions
from tests.browser import ANSI

TOKEN = "floor-secret-7"
DEMO_WORDS = ("LIVE", "Ana Silva", "viewer")
"""What a tab of the demo shows once its viewer runs."""
runner = CliRunner()


def console_server(token: str = "") -> ConsoleServer:
    return ConsoleServer(lambda options: ["true"], host="127.0.0.1", port=0, token=token)


async def client_of(server: ConsoleServer) -> TestClient:
    return TestClient(TestServer(await server.web_app()))


async def test_without_the_token_nothing_is_served() -> None:
    async with await client_of(console_server(TOKEN)) as client:
        for path in ("/", f"/?token=not-{TOKEN}", "/static/js/textual.js", "/ws", "/ws/-/-"):
            response = await client.get(path)
            assert response.status == 403, path
            assert "needs its token" in await response.text()


async def test_the_token_once_then_a_cookie() -> None:
    async with await client_of(console_server(TOKEN)) as client:
        given = await client.get(f"/?view=stations&token={TOKEN}", allow_redirects=False)
        assert given.status == 302
        assert given.headers["Location"] == "/?view=stations"
        cookie = given.cookies[COOKIE]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
        assert cookie.value != TOKEN
        page = await client.get("/?view=stations")  # the client keeps the cookie
        assert page.status == 200
        host = f"{client.server.host}:{client.server.port}"
        assert f'data-session-websocket-url="ws://{host}/ws/stations/-"' in await page.text()
        assert (await client.get("/static/js/textual.js")).status == 200


async def test_the_page_loads_nothing_from_elsewhere() -> None:
    async with await client_of(console_server()) as client:
        page = await (await client.get("/")).text()
    assert "http://" not in page.replace('data-session-websocket-url="ws://', "")
    assert "https://" not in page
    assert 'src="/static/js/textual.js"' in page


async def test_a_websocket_from_another_site_is_refused() -> None:
    async with await client_of(console_server()) as client:
        with pytest.raises(WSServerHandshakeError) as refused:
            await client.ws_connect("/ws/-/-", headers={"Origin": "http://elsewhere.example"})
        assert refused.value.status == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"view": "stations", "site": "pune"}, TabOptions("stations", "pune")),
        ({"view": "floor", "site": "a b"}, TabOptions()),
        ({"view": "alerts", "site": "../etc"}, TabOptions("alerts")),
        ({"site": "x;rm -rf /"}, TabOptions()),
    ],
)
def test_a_tab_asks_for_a_known_view_and_a_plain_site_id(
    query: dict[str, str], expected: TabOptions
) -> None:
    assert TabOptions.from_query(query) == expected
    assert TabOptions.from_path(*expected.path.split("/")) == expected


def test_a_tab_runs_a_viewer_with_its_options() -> None:
    argv = viewer_argv(["--db", "/srv/f.db"], TabOptions("alerts", "pune"))
    assert argv == [
        sys.executable,
        "-m",
        "factory_tui",
        "--db",
        "/srv/f.db",
        "--viewer",
        "--view",
        "alerts",
        "--site",
        "pune",
    ]
    assert viewer_argv(["demo"], TabOptions())[3:] == ["demo", "--viewer"]


def test_a_public_bind_without_a_token_refuses_to_start(fresh_db: Store, tmp_path: Path) -> None:
    result = runner.invoke(app, ["web", "--db", str(tmp_path / "factory.db"), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert result.stderr.startswith("factory-tui: serving on 0.0.0.0 lets anyone")
    assert "([web] token or FACTORY_TUI_WEB_TOKEN)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_database_is_one_sentence(tmp_path: Path) -> None:
    result = runner.invoke(app, ["web", "--db", str(tmp_path / "nowhere.db")])
    assert result.exit_code == 2
    assert result.stderr.startswith("factory-tui: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_the_web_extra_one_sentence(
    monkeypatch: pytest.MonkeyPatch, fresh_db: Store, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "factory_tui.web.server", None)
    result = runner.invoke(app, ["web", "--db", str(tmp_path / "factory.db")])
    assert result.exit_code == 2
    assert "pip install 'factory-tui[web]'" in result.stderr


async def test_demo_web_serves_its_live_floor_to_a_tab(tmp_path: Path) -> None:
    """`demo --web` runs the simulator here and a tab's viewer shows its floor (read through the
    websocket as a browser would, without one); SIGINT stops it all."""
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "factory_tui",
        "demo",
        "--web",
        "--web-port",
        "0",
        "--port",
        "0",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert demo.stdout is not None
        first = (await asyncio.wait_for(demo.stdout.readline(), 30)).decode()
        url = first.split("open ", 1)[1].strip()
        async with aiohttp.ClientSession() as session:
            page = await (await session.get(url)).text()
            assert "<title>factory-tui demo</title>" in page
            seen = ""
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            async with session.ws_connect(f"{url.replace('http', 'ws', 1)}ws/-/-") as socket:
                async with asyncio.timeout(60):
                    async for message in socket:
                        if message.type == aiohttp.WSMsgType.BINARY:
                            seen += ANSI.sub("", decoder.decode(message.data))
                        if all(word in seen for word in DEMO_WORDS):
                            break
        assert all(word in seen for word in DEMO_WORDS), seen[-2000:]  # not a viewer that ended
        assert (tmp_path / "factory-demo.db").exists()
    finally:
        demo.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(demo.wait(), 30) == 0
