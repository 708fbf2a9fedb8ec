"""`[web] allow`: a browser from another address gets 403 naming it, before the token or the
page; real sockets from 127.0.0.2 against a server bound to 127.0.0.1."""

from __future__ import annotations

import aiohttp
import pytest

from factory_tui.config import ConfigError, load_settings
from factory_tui.web.server import ConsoleServer


async def get_from(source: str, url: str) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, allow_redirects=False) as response,
    ):
        return response.status, await response.text()


async def test_only_allowed_addresses_reach_the_page() -> None:
    server = ConsoleServer(
        lambda options: ["true"], host="127.0.0.1", port=0, allow=["127.0.0.1", "10.0.0.0/8"]
    )
    port = await server.start()
    try:
        status, text = await get_from("127.0.0.2", f"http://127.0.0.1:{port}/")
        assert (status, text) == (403, "factory-tui: 127.0.0.2 is not in [web] allow\n")
        status, _ = await get_from("127.0.0.1", f"http://127.0.0.1:{port}/")
        assert status == 200
    finally:
        await server.stop()


def test_a_bad_allow_entry_is_one_sentence() -> None:
    with pytest.raises(ConfigError, match="'10.0.0.300' is not an IP address or network"):
        load_settings(environ={"FACTORY_TUI_WEB_ALLOW": "10.0.0.0/8,10.0.0.300"})
    settings = load_settings(environ={"FACTORY_TUI_INGEST_ALLOW": "10.0.0.0/8, 192.168.4.17"})
    assert settings.ingest.allow == ["10.0.0.0/8", "192.168.4.17"]
