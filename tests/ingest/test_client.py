"""IngestClient against a real listener: replies, refusals and broken connections."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from factory_tui.ingest.client import ClientError, IngestClient
from factory_tui.ingest.listener import Listener
from tests.ingest.conftest import event_at, make_event, wait_until

Start = Callable[..., Any]


async def test_send_returns_one_reply_per_line_across_calls(listener: Listener) -> None:
    async with IngestClient("127.0.0.1", listener.port) as client:
        assert await client.send([]) == []
        first = await client.send([event_at(n) for n in range(5_000)])
        second = await client.send([event_at(0), b"{}"])
    assert first == [{"status": "accepted"}] * 5_000
    assert second[0] == {"status": "duplicate"}
    assert second[1]["status"] == "rejected"


async def test_a_line_with_a_newline_is_refused_before_anything_is_sent(
    listener: Listener,
) -> None:
    async with IngestClient("127.0.0.1", listener.port) as client:
        with pytest.raises(ValueError, match="contains a newline"):
            await client.send([make_event(1), b"{}\n{}"])
        assert await client.send([make_event(1)]) == [{"status": "accepted"}]


async def test_connect_errors_are_client_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = IngestClient("127.0.0.1", port)
    with pytest.raises(ClientError, match=f"cannot connect to 127.0.0.1:{port}"):
        await client.connect()
    with pytest.raises(ClientError, match="not connected"):
        await client.send([make_event(1)])


async def test_refusals_are_told_apart(start_listener: Start) -> None:
    listener: Listener = await start_listener(ingest__token="tok", ingest__max_connections=1)
    async with IngestClient("127.0.0.1", listener.port, token="tok") as holder:
        crowded = IngestClient("127.0.0.1", listener.port, token="tok")
        with pytest.raises(ClientError, match="too many connections") as full:
            await crowded.connect()
        assert not full.value.fatal  # worth retrying later
        assert await holder.send([make_event(1)]) == [{"status": "accepted"}]
    await wait_until(lambda: listener.stats().connections == 0)
    with pytest.raises(ClientError, match="auth: wrong token") as wrong:
        await IngestClient("127.0.0.1", listener.port, token="nope").connect()
    assert wrong.value.fatal
    tokenless = IngestClient("127.0.0.1", listener.port)
    await tokenless.connect()
    with pytest.raises(ClientError, match="auth: first line must be") as missing:
        await tokenless.send([make_event(2)])
    assert missing.value.fatal
    assert missing.value.replies == []


async def test_a_listener_stopping_mid_send_leaves_the_answered_replies(
    start_listener: Start,
) -> None:
    listener: Listener = await start_listener(conn_pending_bytes=64 << 10)
    lines = [event_at(n) for n in range(20_000)]
    client = IngestClient("127.0.0.1", listener.port)
    await client.connect()
    sending = asyncio.create_task(client.send(lines))
    await wait_until(lambda: listener.stats().accepted > 0)
    await listener.stop()
    with pytest.raises(ClientError, match="closed the connection") as broken:
        await sending
    answered = broken.value.replies
    assert 0 < len(answered) < len(lines)
    assert answered == [{"status": "accepted"}] * len(answered)
    assert listener.stats().accepted == len(answered)
    assert not client.connected


async def test_no_reply_at_all_points_to_the_one_way_port(start_listener: Any) -> None:
    # A one-way port stores lines and answers none: a client waiting there is told why.
    listener = await start_listener(ingest__one_way_port=0)
    assert listener.one_way_port is not None
    client = IngestClient("127.0.0.1", listener.one_way_port, timeout_s=0.5)
    await client.connect()
    with pytest.raises(ClientError) as raised:
        await client.send([event_at(1)])
    await client.close()
    await listener.stop()
    assert "a one-way port answers nothing" in str(raised.value)


async def test_a_listener_that_answered_then_stopped_is_not_taken_for_a_tls_port(
    start_listener: Start,
) -> None:
    """A plain listener that answered lines on a connection and then stopped said our protocol:
    the error says it stopped, and gives no hint of TLS (only a connection closed before any
    reply at all gets that)."""
    listener: Listener = await start_listener()
    client = IngestClient("127.0.0.1", listener.port)
    await client.connect()
    assert await client.send([event_at(n) for n in range(3)]) == [{"status": "accepted"}] * 3
    await listener.stop()
    with pytest.raises(ClientError) as broken:
        await client.send([event_at(n) for n in range(3, 5_226)])
    await client.close()
    text = str(broken.value)
    assert "it stopped after 3 replies on this connection" in text
    assert "TLS" not in text
    assert broken.value.replies == []


async def test_a_connection_closed_before_any_reply_still_points_to_tls() -> None:
    """A port that closes a new connection before answering anything may be a TLS port: the
    hint stays (a plain peer cannot tell that from a crash)."""

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = IngestClient("127.0.0.1", port)
    await client.connect()
    with pytest.raises(ClientError) as broken:
        await client.send([event_at(1)])
    await client.close()
    server.close()
    await server.wait_closed()
    assert "send with --tls" in str(broken.value)
    assert "stopped after" not in str(broken.value)
