"""`factory-tui web` in a real browser: headless Chromium, a real server, a simulated floor.

The database is filled by the camera simulator (`simulate --to-file`, the last hour up to now,
stored through the ingest's parse-and-insert path), so every tab's viewer shows a live floor on
the wall clock. The screen is read as text from the page's websocket frames.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.config import load_settings
from factory_tui.models import parse_event
from factory_tui.storage import SqliteStore
from tests.browser import ScreenText, launch, need_chromium, save_doc_image
from tests.demo_config import write_demo_config

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.xdist_group("web_console")  # one browser and floor per run
START_TIMEOUT_S = 30.0
TOKEN = "floor-secret-7"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    yield from launch()


@pytest.fixture(scope="module")
def floor_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo roster's last hour, simulated up to now, in a fresh database."""
    need_chromium()  # before the minute of set-up it would otherwise cost
    folder = tmp_path_factory.mktemp("web")
    lines = folder / "hour.jsonl"
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = CliRunner().invoke(
        app, ["simulate", "--to-file", str(lines), "--start", start, "--duration", "1h"]
    )
    assert result.exit_code == 0, result.output
    settings = load_settings(write_demo_config(folder), environ={})
    db = folder / "factory.db"
    with SqliteStore.open(db) as store:
        store.upsert_roster(settings.roster_workers(), settings.roster_workstations())
        events = [parse_event(raw) for raw in lines.read_bytes().splitlines()]
        assert store.insert_batch(events).count("accepted") > 300
    return db


@contextmanager
def web_server(db: Path, *args: str, token: str | None = None) -> Iterator[tuple[str, int]]:
    """`factory-tui web` on a free port: yields (the address it printed, its pid)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FACTORY_TUI_")}
    if token is not None:
        env["FACTORY_TUI_WEB_TOKEN"] = token
    process = subprocess.Popen(
        # The demo roster and shifts floor_db wrote beside the database.
        [sys.executable, "-m", "factory_tui", "web", "--db", str(db), "--port", "0"]
        + ["--config", str(db.parent / "demo.toml"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(START_TIMEOUT_S)
        first = process.stdout.readline() if ready else ""
        assert first.startswith("factory-tui web console: open http://127.0.0.1:"), first + (
            process.stderr.read() if process.poll() is not None and process.stderr else ""
        )
        yield first.split("open ", 1)[1].strip(), process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(floor_db: Path) -> Iterator[tuple[str, int]]:
    """`factory-tui web` over the floor, without a token: (its address, its pid)."""
    with web_server(floor_db) as running:
        yield running


def open_console(page: Page, url: str) -> ScreenText:
    """Open the console's page and wait for the live floor."""
    screen = ScreenText(page)
    with page.expect_websocket():
        page.goto(url)
    screen.wait_for("LIVE", "Ana Silva", "viewer")
    page.focus(".xterm-helper-textarea")  # keys go to the terminal
    return screen


def viewers(server_pid: int) -> list[psutil.Process]:
    """The viewer processes the server runs (one per open tab)."""
    return [
        child
        for child in psutil.Process(server_pid).children(recursive=True)
        if "--viewer" in child.cmdline() and "sh" not in Path(child.cmdline()[0]).name
    ]


def test_a_tab_runs_a_viewer_of_the_live_floor_with_its_views_and_details(
    browser: Browser, server: tuple[str, int], tmp_path: Path
) -> None:
    url, pid = server
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    screen = open_console(page, url)
    assert "read-only" in screen.text()
    shot = tmp_path / "web-console.png"
    page.screenshot(path=str(shot))
    save_doc_image(shot, "web-console.png")
    (viewer,) = viewers(pid)

    mark = screen.mark()
    page.keyboard.press("2")
    screen.wait_for("Stations ·", "Assembly 1", "Occupied", since=mark)

    mark = screen.mark()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    screen.wait_for("Metrics, Shift", "Last 50 events, newest first", since=mark)
    page.screenshot(path=str(tmp_path / "web-worker-detail.png"))

    page.close()  # closing the tab ends its viewer
    assert psutil.wait_procs([viewer], timeout=30)[1] == []


def test_with_a_token_no_console_without_it(browser: Browser, floor_db: Path) -> None:
    with web_server(floor_db, token=TOKEN) as (url, pid):
        page = browser.new_page()
        opened: list[str] = []
        page.on("websocket", lambda socket: opened.append(socket.url))
        for address in (url, f"{url}?token=wrong-{TOKEN}"):
            response = page.goto(address)
            assert response is not None
            assert response.status == 403
            assert "needs its token" in page.content()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}ws/-/-", timeout=10)
        assert refused.value.code == 403
        assert opened == []
        assert viewers(pid) == []

        screen = ScreenText(page)
        with page.expect_websocket():
            page.goto(f"{url}?token={TOKEN}&view=alerts")
        assert page.url == f"{url}?view=alerts"  # the token left the address for a cookie
        screen.wait_for("Alerts ·", "Model drift")  # ?view= opened the tab on that view
        assert page.request.get(url).status == 200  # the cookie alone is enough from now on
        page.close()


def test_an_unknown_site_in_the_address_is_named_on_screen(
    browser: Browser, tmp_path: Path
) -> None:
    """`?site=nope` on a database of several sites: the tab says there is no such site, names
    the ones there are, and shows the first (it was silently ignored)."""
    from tests.tui.fleet import fill_fleet

    db = tmp_path / "fleet.db"
    fill_fleet(str(db))
    write_demo_config(tmp_path)
    with web_server(db) as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        screen = ScreenText(page)
        with page.expect_websocket():
            page.goto(f"{url}?site=nope")
        # The notice wraps in its toast: "(it holds austin, north," / "pune): showing austin."
        screen.wait_for("Unknown site", "No site “nope”", "austin, north", "showing austin")
        assert screen.shows("site Austin")
        page.close()


def test_keys_work_without_a_click_first(browser: Browser, server: tuple[str, int]) -> None:
    """The page focuses the terminal on load: a wall screen's keyboard works at once."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    screen = ScreenText(page)
    with page.expect_websocket():
        page.goto(url)
    screen.wait_for("LIVE", "Ana Silva", "viewer")
    assert page.evaluate("document.activeElement.className") == "xterm-helper-textarea"
    mark = screen.mark()
    page.keyboard.press("2")  # no click, no page.focus()
    screen.wait_for("Stations ·", "Occupied", since=mark)
    page.close()
