"""The console in a browser: textual-serve's aiohttp server, one read-only viewer per tab.

Every browser tab opens a websocket; each websocket starts its own `factory-tui --viewer`
process (the command is built per tab, so `?view=` and `?site=` reach it) and ends it when the
tab closes. textual-serve (optional: `pip install factory-tui[web]`) does the terminal emulation
in the page; this module adds what a factory floor needs around it:

- an allow-list of addresses (`[web] allow`), checked before anything else: others get 403;
- a token, checked by a middleware before the page, its assets or its websocket are served:
  given once as `?token=` (answered with a redirect that drops it from the address and sets a
  cookie), then read from the cookie;
- a websocket only from a page of the same origin (no other site can drive a viewer);
- addresses built from the request, so `--port 0`, a `0.0.0.0` bind or a proxy's host name work;
- a page template with no external assets (the font ships with textual-serve).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from factory_tui.config import is_loopback
from factory_tui.ingest.access import AllowList

COOKIE: Final = "factory_tui_web"
VIEWS: Final = frozenset({"workers", "stations", "events", "alerts"})
SITE_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""A site id a tab may ask for: it is passed on to the viewer's command line."""
NONE: Final = "-"
"""A tab option left out, in the websocket's path (`/ws/<view>/<site>`)."""
TEMPLATES: Final = Path(__file__).parent / "templates"
SHUTDOWN_TIMEOUT_S: Final = 10.0

NO_TOKEN_PAGE: Final = (
    "factory-tui: this console needs its token. Open the address once with "
    "?token=<the [web] token> at the end; the browser then keeps it.\n"
)


class WebError(Exception):
    """The web console cannot start; the message is one sentence for the command line."""


def check_bind(host: str, token: str) -> None:
    """Refuse a public bind without a token (raises WebError)."""
    if not token and not is_loopback(host):
        raise WebError(
            f"serving on {host} lets anyone on the network read the floor: set a token "
            "([web] token or FACTORY_TUI_WEB_TOKEN), or bind 127.0.0.1"
        )


@dataclass(frozen=True, slots=True)
class TabOptions:
    """What a tab asked for in its address (`?view=stations&site=pune`)."""

    view: str | None = None
    site: str | None = None

    @classmethod
    def from_query(cls, query: Any) -> TabOptions:
        """The valid options of a page's query string (anything else is left out)."""
        view = query.get("view")
        site = query.get("site")
        return cls(
            view if view in VIEWS else None,
            site if site is not None and SITE_ID.fullmatch(site) else None,
        )

    @property
    def path(self) -> str:
        """The options as the websocket path's two segments."""
        return f"{self.view or NONE}/{quote(self.site or NONE, safe='')}"

    @classmethod
    def from_path(cls, view: str, site: str) -> TabOptions:
        """The options back from the websocket's path (validated again: it is user input)."""
        return cls.from_query(
            {key: value for key, value in (("view", view), ("site", site)) if value != NONE}
        )


ViewerCommand = Callable[[TabOptions], Sequence[str]]
"""The argv of the viewer process a tab runs."""


class ConsoleServer(Server):
    """textual-serve's server with a token, a viewer command per tab, and its own page."""

    def __init__(
        self,
        viewer_command: ViewerCommand,
        *,
        host: str,
        port: int,
        token: str = "",
        title: str = "factory-tui",
        allow: Sequence[str] = (),
    ) -> None:
        check_bind(host, token)
        super().__init__("factory-tui --viewer", host=host, port=port, title=title)
        self.templates_path = TEMPLATES
        self.viewer_command = viewer_command
        self.token = token
        self.allow = AllowList(allow)
        """Addresses and networks a browser may connect from (`[web] allow`; empty: any)."""
        self._cookie = (
            hmac.new(token.encode(), b"factory-tui web cookie", hashlib.sha256).hexdigest()
            if token
            else ""
        )
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.tabs_opened = 0
        """Websockets accepted so far (each ran a viewer)."""

    # --- running --------------------------------------------------------------------------

    async def web_app(self) -> web.Application:
        """The aiohttp application: textual-serve's routes, the tabs' route and the guard."""
        app = await self._make_app()
        app.router.add_get("/ws/{view}/{site}", self.handle_websocket, name="tab")
        app.middlewares.append(self._guard)
        return app

    async def start(self) -> int:
        """Bind and serve in the running event loop; returns the port (useful with port 0)."""
        app = await self.web_app()
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise WebError(
                f"cannot serve on {self.host}:{self.port}: {error.strerror or error} "
                "(pick another --port)"
            ) from None
        self.port = self._runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        """Close every tab (each viewer is told to quit), then the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The address to open (a wildcard bind is shown as this machine's name)."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            import socket

            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    async def on_startup(self, app: web.Application) -> None:
        """Quiet: the command prints the address itself."""

    async def on_shutdown(self, app: web.Application) -> None:
        for socket in list(self._sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")

    # --- the guard ------------------------------------------------------------------------

    @web.middleware
    async def _guard(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """The address and the token before anything is served; websockets only from our own
        pages."""
        remote = request.remote or ""
        if not self.allow.allows(remote):
            return web.Response(status=403, text=f"factory-tui: {remote} is not in [web] allow\n")
        if request.path.startswith("/ws") and not self._same_origin(request):
            return web.Response(status=403, text="factory-tui: websocket from another site\n")
        if not self.token:
            return await handler(request)
        given = request.query.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.Response(status=403, text=NO_TOKEN_PAGE)
            # Once: the cookie carries it from now on, and the address no longer shows it.
            query = request.rel_url.query.copy()
            del query["token"]
            found = web.HTTPFound(request.rel_url.with_query(query))
            found.set_cookie(COOKIE, self._cookie, httponly=True, samesite="Strict", path="/")
            raise found
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), self._cookie.encode()):
            return await handler(request)
        return web.Response(status=403, text=NO_TOKEN_PAGE)

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or urlsplit(origin).netloc == request.host

    # --- the page and the tabs -------------------------------------------------------------

    async def handle_index(self, request: web.Request) -> web.Response:
        """The page, with addresses built from the request and the tab's options."""
        options = TabOptions.from_query(request.query)
        scheme = "wss" if request.secure else "ws"
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{scheme}://{request.host}/ws/{options.path}",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """Run one viewer for one tab, for as long as its websocket is open."""
        options = TabOptions.from_path(
            request.match_info.get("view", NONE), request.match_info.get("site", NONE)
        )
        command = shlex.join(self.viewer_command(options))
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: AppService | None = None
        self._sockets.add(websocket)
        self.tabs_opened += 1
        try:
            await websocket.prepare(request)
            service = AppService(
                command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,  # type: ignore[arg-type]  # returns a bool, unread
                download_manager=self.download_manager,
                debug=self.debug,
            )
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        finally:
            self._sockets.discard(websocket)
            if service is not None:
                await service.stop()
        return websocket
