"""The allow-list, connections per address and the per-connection rate limit, with real
sockets from other loopback addresses (127.0.0.2, 127.0.0.3 as sources)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from factory_tui.ingest.access import AllowList, HeldLines, PeerCounts, TokenBucket
from factory_tui.ingest.client import ClientError, IngestClient
from factory_tui.ingest.listener import Listener
from factory_tui.ingest.protocol import NOT_ALLOWED, TOO_MANY_CONNECTIONS
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import REPLY_TIMEOUT_S, Peer, event_at, wait_until
from tests.ingest.pki import make_pki

StartListener = Callable[..., Any]


async def peer_from(source: str, port: int) -> Peer:
    """A raw connection to the listener from the loopback address `source`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return Peer(reader, writer)


def stored_events(tmp_path: Path) -> int:
    with SqliteStore.open(tmp_path / "factory.db") as store:
        return store.count_events()


# --- the rules on their own -----------------------------------------------------------------


def test_allow_list_matches_addresses_and_networks() -> None:
    allow = AllowList(["10.0.0.0/8", "192.168.4.17", "fd00::/8"])
    assert allow.allows("10.200.3.4")
    assert allow.allows("192.168.4.17")
    assert not allow.allows("192.168.4.18")
    assert allow.allows("::ffff:10.1.1.1")  # IPv4-mapped, as a dual-stack socket reports it
    assert allow.allows("fd12::1")
    assert not allow.allows("not-an-address")
    assert AllowList([]).allows("8.8.8.8")  # empty: anyone


def test_peer_counts_count_per_address() -> None:
    counts = PeerCounts()
    assert [counts.add("10.0.0.1"), counts.add("10.0.0.1"), counts.add("10.0.0.2")] == [1, 2, 1]
    counts.remove("10.0.0.1")
    counts.remove("10.0.0.1")
    assert (counts["10.0.0.1"], counts["10.0.0.2"]) == (0, 1)


def test_token_bucket_grants_whole_tokens_up_to_its_burst() -> None:
    bucket = TokenBucket(100, burst=10, now=0.0)
    assert bucket.grant(25, 0.0) == 10  # the burst
    assert bucket.grant(25, 0.0) == 0
    assert bucket.wait_s() == pytest.approx(0.01)
    assert bucket.grant(25, 0.05) == 5  # 0.05 s at 100/s
    assert bucket.grant(25, 10.0) == 10  # refilled, never past the burst


def test_held_lines_go_at_the_rate_with_their_share_of_the_bytes() -> None:
    held = HeldLines(100, now=0.0)  # a burst of 10
    held.hold([b"a"] * 30, 300)
    assert held.release(0.0) == ([b"a"] * 10, 100)
    assert held.release(0.1) == ([b"a"] * 10, 100)
    assert len(held) == 10
    assert held.release(0.1, everything=True) == ([b"a"] * 10, 100)
    assert held.release(5.0) == ([], 0)
    assert HeldLines.per_connection(None, 0.0) is None


# --- the allow-list -------------------------------------------------------------------------


async def test_a_peer_outside_the_allow_list_gets_one_line_and_is_closed(
    start_listener: StartListener, tmp_path: Path
) -> None:
    """127.0.0.3 is not allowed: one rejected line naming its address, then the connection
    closes and nothing it sent is stored; 127.0.0.1 and 127.0.0.2/32 get in."""
    listener: Listener = await start_listener(ingest__allow=["127.0.0.1", "127.0.0.2/32"])
    stranger = await peer_from("127.0.0.3", listener.port)
    await stranger.send(event_at(1) + b"\n" + event_at(2) + b"\n")
    (reply,) = await stranger.replies(1)
    assert reply["status"] == "rejected"
    assert reply["error"] == f"{NOT_ALLOWED}: 127.0.0.3 is not in [ingest] allow"
    assert await stranger.at_eof()
    await stranger.close()
    for source in ("127.0.0.1", "127.0.0.2"):
        friend = await peer_from(source, listener.port)
        await friend.send(event_at(10 + int(source[-1])) + b"\n")
        assert [r["status"] for r in await friend.replies(1)] == ["accepted"]
        await friend.close()
    assert listener.stats().rejected == 0  # a refused peer's lines are not even read
    await listener.stop()
    assert stored_events(tmp_path) == 2


async def test_the_client_reports_a_refused_address_as_fatal(
    start_listener: StartListener,
) -> None:
    listener: Listener = await start_listener(ingest__allow=["10.0.0.0/8"])
    client = IngestClient("127.0.0.1", listener.port, timeout_s=REPLY_TIMEOUT_S)
    await client.connect()
    with pytest.raises(ClientError, match="address not allowed") as caught:
        await client.send([event_at(1)])
    assert caught.value.fatal


async def test_a_tls_listener_refuses_before_the_handshake(
    start_listener: StartListener, tmp_path: Path
) -> None:
    """On a TLS port a peer outside the list gets the plain rejected line before any TLS byte
    of it is read."""
    pki = make_pki(tmp_path / "pki")
    listener: Listener = await start_listener(
        ingest__tls_cert=pki.server_cert,
        ingest__tls_key=pki.server_key,
        ingest__allow=["127.0.0.1"],
    )
    stranger = await peer_from("127.0.0.2", listener.port)
    (reply,) = await stranger.replies(1)
    assert NOT_ALLOWED in reply["error"]
    assert "127.0.0.2" in reply["error"]
    assert await stranger.at_eof()
    await stranger.close()


# --- connections per address ------------------------------------------------------------------


async def test_max_connections_per_ip(start_listener: StartListener) -> None:
    """Two connections from 127.0.0.2 are fine, a third is refused while 127.0.0.3 still gets
    in; once one of the two closes, 127.0.0.2 may connect again."""
    listener: Listener = await start_listener(ingest__max_connections_per_ip=2)
    first, second = [await peer_from("127.0.0.2", listener.port) for _ in range(2)]
    for n, peer in enumerate((first, second)):
        await peer.send(event_at(n) + b"\n")
        assert [r["status"] for r in await peer.replies(1)] == ["accepted"]
    third = await peer_from("127.0.0.2", listener.port)
    (reply,) = await third.replies(1)
    assert reply["error"] == f"{TOO_MANY_CONNECTIONS} (limit 2 from 127.0.0.2); try again later"
    assert await third.at_eof()
    await third.close()
    other = await peer_from("127.0.0.3", listener.port)
    await other.send(event_at(5) + b"\n")
    assert [r["status"] for r in await other.replies(1)] == ["accepted"]
    await first.close()
    await wait_until(lambda: listener.stats().connections == 2)
    again = await peer_from("127.0.0.2", listener.port)
    await again.send(event_at(6) + b"\n")
    assert [r["status"] for r in await again.replies(1)] == ["accepted"]
    for peer in (second, other, again):
        await peer.close()


# --- the rate limit ---------------------------------------------------------------------------


async def test_a_client_at_ten_times_the_rate_is_held_to_it_and_loses_nothing(
    start_listener: StartListener, tmp_path: Path
) -> None:
    """max_events_per_s = 200 and a client writing 2,000 lines/s: it is read at 200/s (within
    10 %, measured from its first line to its last reply), every line is answered, accepted
    and stored, none dropped."""
    limit, total, chunk = 200, 600, 20
    listener: Listener = await start_listener(ingest__max_events_per_s=limit)
    peer = await Peer.open(listener.port)
    started = time.monotonic()

    async def write_at_ten_times_the_limit() -> None:
        for start in range(0, total, chunk):
            await peer.send(b"".join(event_at(n) + b"\n" for n in range(start, start + chunk)))
            await asyncio.sleep(chunk / (10 * limit))

    writing = asyncio.create_task(write_at_ten_times_the_limit())
    replies = [json.loads(await asyncio.wait_for(peer.reader.readline(), REPLY_TIMEOUT_S))
               for _ in range(total)]  # fmt: skip
    elapsed = time.monotonic() - started
    await writing
    await peer.close()
    assert [reply["status"] for reply in replies] == ["accepted"] * total
    rate = total / elapsed
    assert 0.9 * limit <= rate <= 1.1 * limit, f"{rate:.0f} lines/s against a limit of {limit}"
    await listener.stop()
    assert stored_events(tmp_path) == total


async def test_tls_handshakes_count_against_max_connections(
    start_listener: StartListener, tmp_path: Path
) -> None:
    """Peers that connect to a TLS port and never finish a handshake hold no more than
    max_connections sockets: the next one gets the plain refusal line at once."""
    pki = make_pki(tmp_path / "pki")
    listener: Listener = await start_listener(
        ingest__tls_cert=pki.server_cert, ingest__tls_key=pki.server_key, ingest__max_connections=2
    )
    silent = [await Peer.open(listener.port) for _ in range(2)]
    await wait_until(lambda: len(listener._handshakes) == 2)
    third = await Peer.open(listener.port)
    (reply,) = await third.replies(1)
    assert reply["error"] == (f"{TOO_MANY_CONNECTIONS} (limit 2 TLS handshakes); try again later")
    for peer in (*silent, third):
        await peer.close()
