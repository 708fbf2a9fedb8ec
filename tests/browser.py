"""A real browser for the tests: Debian's headless Chromium driven by Playwright.

Playwright drives the system's Chromium (`executable_path`); it never downloads a browser of its
own. Without Chromium the tests skip with one line saying how to run them; under `CI=true`
(where `.ci/run` installs it) they fail instead.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, WebSocket

CHROMIUM: Final = Path("/usr/bin/chromium")
ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI: Final = os.environ.get("CI") == "true"
DOC_IMAGES: Final = Path(__file__).resolve().parent.parent / "docs" / "images"
UPDATE_DOC_IMAGES: Final = os.environ.get("UPDATE_DOC_IMAGES") == "1"
"""`UPDATE_DOC_IMAGES=1 make test` also writes the README's screenshots to docs/images/."""
ANSI: Final = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def need_chromium() -> None:
    """Skip (fail under CI=true) when Chromium or Playwright is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append("Chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright (make test installs it)")
    if not missing:
        return
    message = f"browser tests need {' and '.join(missing)}; .ci/run installs both"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def launch() -> Iterator[Browser]:
    """One headless Chromium (use it from a module-scoped fixture)."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def save_doc_image(source: Path, name: str) -> None:
    """Copy a screenshot to docs/images/ when asked to (`UPDATE_DOC_IMAGES=1`)."""
    if UPDATE_DOC_IMAGES:
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, DOC_IMAGES / name)


class ScreenText:
    """What a page's console shows, read as text from its websocket's frames.

    textual-serve sends the terminal's output (ANSI) in the websocket's frames; the words on
    screen are in there once the escape codes are stripped. Waits are event-driven: a wait
    returns on the frame that completes what it waits for.
    """

    def __init__(self, page: Page) -> None:
        self.frames: list[str] = []
        self.sockets: list[WebSocket] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        page.on("websocket", self._attach)

    def _attach(self, socket: WebSocket) -> None:
        self.sockets.append(socket)
        socket.on("framereceived", self._received)

    def _received(self, payload: Any) -> None:
        if isinstance(payload, bytes):
            self.frames.append(self._decoder.decode(payload))
        else:
            self.frames.append(str(payload))

    def mark(self) -> int:
        """Where the frames are now: `wait_for(..., since=mark)` looks only at newer ones."""
        return len(self.frames)

    def text(self, since: int = 0) -> str:
        """The text drawn since `since`, escape codes removed."""
        return ANSI.sub("", "".join(self.frames[since:]))

    def shows(self, *words: str, since: int = 0) -> bool:
        """Every word has been drawn since `since`."""
        text = self.text(since)
        return all(word in text for word in words)

    def wait_for(self, *words: str, since: int = 0, timeout_s: float = 30.0) -> None:
        """Wait until every word has been drawn since `since` (a generous upper bound)."""
        if self.shows(*words, since=since):
            return
        assert self.sockets, "the page opened no websocket"
        self.sockets[-1].wait_for_event(
            "framereceived",
            predicate=lambda _: self.shows(*words, since=since),
            timeout=timeout_s * 1000,
        )
