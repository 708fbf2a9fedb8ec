"""The base of the drill-down screens: header and footer, `esc` back, data handed down by the app.

A view screen holds no timers and does no I/O on the UI thread. When it comes on top, the app
(which follows `screen_change_signal`) tells its tick what the view needs (`needs`), hands down
the latest `ViewData` it has and asks for a fresh tick. Every tick after that reaches the screen
through `show`. A view that binds `h` offers the shift report of what it shows
(`action_shift_report`), written by a thread worker.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path
from typing import ClassVar, Final

from textual import work
from textual.binding import Binding, BindingType
from textual.screen import Screen

from factory_tui.console.fleet import FleetPipeline
from factory_tui.console.pipeline import TickPipeline
from factory_tui.console.shift_report import ShiftReportPage, shift_report_page
from factory_tui.engine.snapshot import Snapshot
from factory_tui.models import from_utc_us
from factory_tui.storage import StoreError
from factory_tui.view_models import ViewData, ViewNeeds

SHIFT_REPORT_KEY: Final = ("h", "Write this shift's report (one HTML page)")
"""The `?` screen's line for the views that bind `h`."""


def toast_width(screen_width: int) -> int:
    """Cells of text in a Textual notification: 60 wide at most, half the screen, less its
    padding and its left edge."""
    return max(12, min(60, screen_width // 2) - 3)


def report_notice(title: str, path: Path, width: int) -> str:
    """Where the report went, in lines that wrap between parts, never inside the file name:
    the file on a line of its own, the folder under it (from the home folder as `~`, and cut
    on its left, at a `/`, when still too long)."""
    folder = str(path.parent)
    home = str(Path.home())
    if home not in ("", "/") and (folder == home or folder.startswith(home + "/")):
        folder = "~" + folder[len(home) :]
    words = f"in {folder}"
    if len(words) > width:
        tail = folder[-(width - 4) :]
        words = "in …" + tail[tail.find("/") :] if "/" in tail else "in …" + tail
    return f"{title}: report written\n{path.name}\n{words}"


class ViewScreen(Screen[None]):
    """A drill-down view: `show(data)` on every tick while it is on top."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    HORIZONTAL_BREAKPOINTS = [
        (0, "-narrow"),
        (110, "-wide"),
    ]

    VIEW: ClassVar[str] = ""
    """The view's name, as `FactoryApp.action_show_view` takes it."""
    HELP_KEYS: ClassVar[Sequence[tuple[str, str]]] = ()
    """This view's own keys, for the `?` screen."""
    HELP_NOTES: ClassVar[Sequence[str]] = ()

    def __init__(self, *, zone: tzinfo) -> None:
        super().__init__()
        self.zone = zone
        """The time zone clock times are shown in."""
        self.data: ViewData | None = None
        """The data on screen (None until the first tick reaches it)."""

    @property
    def needs(self) -> ViewNeeds:
        """What the tick must compute for this view beyond the Snapshot."""
        return ViewNeeds()

    def show(self, data: ViewData) -> None:
        """Take one tick's data (called by the app on the UI thread); ignored unless on top."""
        if not self.is_active:
            # The app hears of a screen change after the fact: a view key pressed over a
            # detail pops every screen above the tiles, and each one that came on top for a
            # moment is reported once it is already gone, with no widgets left to update.
            return
        self.data = data
        if self.is_mounted:
            self.render_data(data)
        # Else it is shown by on_mount: a view just pushed may hear of a tick (run in its own
        # thread) before it has its widgets, and render_data would find none (NoMatches).

    def on_mount(self) -> None:
        """Show the data that reached the view before its widgets did. Textual calls this after
        the view's own on_mount (which sets its widgets up)."""
        if self.data is not None:
            self.render_data(self.data)

    def render_data(self, data: ViewData) -> None:
        """Update the widgets from `data`; each view implements it."""

    def clock(self, at_us: int | None, *, seconds: bool = True) -> str:
        """`at_us` as a local clock time (with the date when it is not the day shown)."""
        if at_us is None:
            return "—"
        moment = from_utc_us(at_us).astimezone(self.zone)
        text = moment.strftime("%H:%M:%S" if seconds else "%H:%M")
        if self.data is not None:
            today = from_utc_us(self.data.snapshot.at_us).astimezone(self.zone).date()
            if moment.date() != today:
                return f"{moment:%m-%d} {text}"
        return text

    def action_shift_report(self) -> None:
        """Write the report of the shift on screen (the same page as `report --html`)."""
        pipeline = getattr(self.app, "pipeline", None)
        if self.data is None or not isinstance(pipeline, TickPipeline | FleetPipeline):
            self.notify("No figures on screen yet: try again in a moment.", severity="warning")
            return
        self._write_shift_report(pipeline, self.data.snapshot, in_browser=self.app.is_web)

    @work(thread=True, exclusive=True, group="shift-report")
    def _write_shift_report(
        self, pipeline: TickPipeline | FleetPipeline, snapshot: Snapshot, *, in_browser: bool
    ) -> None:
        """Read, render and write (or send to the browser) the report, off the UI thread."""
        try:
            page = shift_report_page(pipeline, snapshot)
            if page is None:
                return  # the console is closing
            if in_browser:
                self.app.call_from_thread(self._send_to_browser, page)
                return
            path = Path.cwd() / page.name
            path.write_text(page.html, encoding="utf-8")
        except (StoreError, OSError) as error:
            self.notify(f"The shift report was not written: {error}", severity="error")
            return
        room = toast_width(self.app.size.width)
        self.notify(
            report_notice(page.title, path, room), title="Shift report", timeout=10, markup=False
        )

    def _send_to_browser(self, page: ShiftReportPage) -> None:
        """A browser's viewer writes nothing on the server: the page goes to the browser."""
        self.app.deliver_text(
            io.StringIO(page.html),
            save_filename=page.name,
            open_method="download",
            mime_type="text/html",
        )
        self.notify(f"{page.title}: report sent to your browser as {page.name}", timeout=10)

    def action_back(self) -> None:
        """Back to the screen below."""
        self.app.pop_screen()
