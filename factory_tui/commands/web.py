"""`factory-tui web`: the console served to browsers, one read-only viewer per tab.

`serve_web` also runs `demo --web`, with the demo's simulator and listener (and the alerts they
raise) in the same process as the web server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from factory_tui.commands.common import (
    ConfigOption,
    DbOption,
    dotted,
    fail,
    open_store,
    settings_from,
)
from factory_tui.commands.console import SiteOption, site_override

if TYPE_CHECKING:
    from factory_tui.console.services import ConsoleServices
    from factory_tui.web.server import ConsoleServer, TabOptions

MISSING_EXTRA = (
    "the web console needs textual-serve: pip install 'factory-tui[web]' (make demo installs it)"
)


def viewer_argv(prefix: Sequence[str], options: TabOptions) -> list[str]:
    """A tab's viewer: `python -m factory_tui <prefix> --viewer`, with the tab's view and site."""
    argv = [sys.executable, "-m", "factory_tui", *prefix, "--viewer"]
    if options.view is not None:
        argv += ["--view", options.view]
    if options.site is not None:
        argv += ["--site", options.site]
    return argv


def make_server(
    prefix: Sequence[str],
    *,
    host: str,
    port: int,
    token: str,
    title: str,
    allow: Sequence[str] = (),
) -> ConsoleServer:
    """The web server whose tabs run `viewer_argv(prefix, ...)`, or a one-sentence exit."""
    try:
        from factory_tui.web.server import ConsoleServer, WebError
    except ImportError:
        fail(MISSING_EXTRA)
    try:
        return ConsoleServer(
            lambda options: viewer_argv(prefix, options),
            host=host,
            port=port,
            token=token,
            title=title,
            allow=allow,
        )
    except WebError as error:
        fail(str(error))


def open_browser(url: str) -> None:
    """Open `url` where there is a desktop; a server over SSH just prints it."""
    if (
        sys.platform in ("darwin", "win32")
        or os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
    ):
        import webbrowser

        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)


async def serve_web(
    server: ConsoleServer,
    *,
    services: ConsoleServices | None = None,
    tick: Callable[..., object] | None = None,
    tick_s: float = 1.0,
    browser: bool = False,
) -> str | None:
    """Serve until SIGINT/SIGTERM; a one-sentence error when the server cannot start.

    With `services` (the demo), its listener and feed run here too, and its pipeline's `tick`
    runs once a `tick_s` so that the alerts the floor raises are kept, as the console that owns
    a listener does.
    """
    from factory_tui.storage import StoreError
    from factory_tui.web.server import WebError

    try:
        await server.start()
    except WebError as error:
        return str(error)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    url = server.url
    typer.echo(f"factory-tui web console: open {url}")
    if server.token:
        typer.echo("  (the first time, with ?token=<the web token> at the end)")
    typer.echo("  each browser tab runs its own read-only viewer; Ctrl-C stops")
    if browser:
        open_browser(url)
    try:
        while not stop.is_set():
            if tick is not None and services is not None:
                with contextlib.suppress(StoreError):
                    await asyncio.to_thread(tick, evaluate_alerts=services.feed_caught_up.is_set())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)
    finally:
        typer.echo("stopping: closing the tabs")
        await server.stop()
        if services is not None:
            await services.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return None


def web(
    config: ConfigOption = None,
    db: DbOption = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to serve on (default 127.0.0.1; any other needs a token)."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", "-p", help="HTTP port (default 8000; 0: a free one).")
    ] = None,
    site: SiteOption = None,
) -> None:
    """Serve the console to web browsers; every tab runs its own read-only viewer.

    Prints the address to open. Add `?view=stations` (workers, stations, events, alerts) to open
    a tab on that view, `?site=ID` for a site. Serving on anything but loopback needs a token
    ([web] token or $FACTORY_TUI_WEB_TOKEN): open the address once with `?token=...`, the
    browser keeps it in a cookie. Needs the `web` extra (pip install 'factory-tui[web]').
    """
    settings = settings_from(
        config, **dotted(store__path=db, web__host=host, web__port=port), **site_override(site)
    )
    prefix: list[str] = []
    if config is not None:
        prefix += ["--config", str(Path(config).resolve())]
    if db is not None:
        prefix += ["--db", db if "://" in db else str(Path(db).resolve())]
    if site is not None:
        prefix += ["--site", site]  # a tab's own ?site= comes later on the line, and wins
    server = make_server(
        prefix,
        host=settings.web.host,
        port=settings.web.port,
        token=settings.web.token,
        title="factory-tui",
        allow=settings.web.allow,
    )
    # Fail here, in one sentence, rather than in every tab.
    open_store(settings, read_only=True).close()
    error = asyncio.run(serve_web(server, tick_s=settings.metrics.tick_s))
    if error is not None:
        fail(error)


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command()(web)
