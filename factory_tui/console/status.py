"""What the console's title and feed status say, as pure functions of its state."""

from __future__ import annotations

from datetime import tzinfo

from factory_tui.console.services import Role
from factory_tui.models import from_utc_us
from factory_tui.widgets.summary_bar import FeedStatus


def clock_text(at_us: int, zone: tzinfo) -> str:
    """An instant as the local wall-clock time the status line shows (`10:30:00`)."""
    return from_utc_us(at_us).astimezone(zone).strftime("%H:%M:%S")


def subtitle(role: Role, *, demo: bool, paused: bool, site: str | None = None) -> str:
    """The app's subtitle: who this console is (demo, console, read-only viewer), the site on
    screen when the database holds several, and PAUSED."""
    name: str = "viewer (read-only)" if role == "viewer" else "demo" if demo else role
    if site is not None:
        name = f"{name} · site {site}"
    return f"{name} · PAUSED" if paused else name


def paused_status(shown_at: str | None) -> FeedStatus:
    """Paused, as of the time of the Snapshot on screen (None: nothing shown yet)."""
    return FeedStatus("paused", "" if shown_at is None else f"as of {shown_at} · space resumes")


def stale_status(shown_at: str | None, reason: str, *, failed: bool) -> FeedStatus | None:
    """Stale figures: as of the Snapshot on screen, and why. Before anything is shown only a
    failure says so (silence is the first load still running)."""
    if shown_at is None:
        return FeedStatus("stale", f"no data: {reason}") if failed else None
    return FeedStatus("stale", f"as of {shown_at}: {reason}")
