"""TLS on ingest: real handshakes with certificates made by `openssl` in the test."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from factory_tui.ingest.access import AccessError, _TlsFront, client_tls_context
from factory_tui.ingest.client import ClientError, IngestClient
from factory_tui.ingest.listener import Listener, ListenerError
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import REPLY_TIMEOUT_S, Peer, event_at, make_settings, run_cli
from tests.ingest.pki import Pki, make_pki

StartListener = Callable[..., Any]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def audit_of(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(kind, peer, detail) of the test database's audit trail, oldest first."""
    with SqliteStore.open(tmp_path / "factory.db") as store:
        return [(row.kind, row.peer, row.detail) for row in reversed(store.audit_entries())]


async def connect_and_send(client: IngestClient) -> None:
    """Connect and send one event (with TLS 1.3 a refused client certificate shows on read)."""
    await client.connect()
    await client.send([event_at(2)])


async def tls_listener(start: StartListener, pki: Pki, **options: Any) -> Listener:
    listener: Listener = await start(
        ingest__tls_cert=pki.server_cert, ingest__tls_key=pki.server_key, **options
    )
    return listener


async def test_a_tls_handshake_and_events_over_it(
    start_listener: StartListener, pki: Pki, tmp_path: Path
) -> None:
    """A camera that checks the listener's certificate sends events over TLS; the audit trail
    records the connection as TLS, opened and closed with its line count."""
    listener = await tls_listener(start_listener, pki)
    context = client_tls_context(cafile=pki.server_cert)
    async with IngestClient("127.0.0.1", listener.port, tls=context) as client:
        replies = await client.send([event_at(n) for n in range(3)])
    assert [reply["status"] for reply in replies] == ["accepted"] * 3
    await listener.stop()
    trail = audit_of(tmp_path)
    assert [kind for kind, _, _ in trail] == ["connection_opened", "connection_closed"]
    assert trail[0][2] == "TLS"
    assert trail[1][2] == "3 lines; auth none needed; TLS"


async def test_plain_tcp_to_a_tls_port_is_refused(
    start_listener: StartListener, pki: Pki, tmp_path: Path
) -> None:
    """A plain-TCP peer gets no reply at all: its bytes are not TLS, the handshake fails, the
    connection is closed and nothing it sent is stored; the audit trail says so."""
    listener = await tls_listener(start_listener, pki)
    peer = await Peer.open(listener.port)
    await peer.send(event_at(1) + b"\n")
    assert await peer.at_eof()
    await peer.close()
    assert listener.stats().accepted == 0
    await listener.stop()
    (kind, _, detail), *_ = audit_of(tmp_path)
    assert kind == "tls_failed"
    assert detail.startswith("TLS handshake failed")


async def test_a_plain_client_dropped_by_a_tls_port_is_pointed_to_tls(
    start_listener: StartListener, pki: Pki
) -> None:
    listener = await tls_listener(start_listener, pki)
    client = IngestClient("127.0.0.1", listener.port)
    with pytest.raises(ClientError) as raised:
        await connect_and_send(client)
    await client.close()
    await listener.stop()
    assert "send with --tls" in str(raised.value)


async def test_a_client_that_does_not_trust_the_listener_is_told_so(
    start_listener: StartListener, pki: Pki
) -> None:
    """A camera checking against the wrong CA refuses the listener: one fatal sentence."""
    listener = await tls_listener(start_listener, pki)
    client = IngestClient("127.0.0.1", listener.port, tls=client_tls_context(pki.camera_ca))
    with pytest.raises(ClientError, match="certificate is not trusted") as caught:
        await client.connect()
    assert caught.value.fatal


async def test_mtls_lets_in_a_signed_camera_only(
    start_listener: StartListener, pki: Pki, tmp_path: Path
) -> None:
    """With tls_client_ca, a camera presenting a certificate the CA signed gets in (its subject
    in the audit trail); one with a stranger's certificate, or none, never gets a reply."""
    listener = await tls_listener(start_listener, pki, ingest__tls_client_ca=pki.camera_ca)
    signed = client_tls_context(pki.server_cert, pki.camera_cert, pki.camera_key)
    async with IngestClient("127.0.0.1", listener.port, tls=signed) as client:
        (reply,) = await client.send([event_at(1)])
    assert reply["status"] == "accepted"
    for cert, key in ((pki.stranger_cert, pki.stranger_key), (None, None)):
        context = client_tls_context(pki.server_cert, cert, key)
        stranger = IngestClient("127.0.0.1", listener.port, tls=context, timeout_s=REPLY_TIMEOUT_S)
        with pytest.raises(ClientError):
            await connect_and_send(stranger)
        await stranger.close()
    assert listener.stats().accepted == 1
    await listener.stop()
    trail = audit_of(tmp_path)
    assert trail[0] == (trail[0][0], trail[0][1], "TLS, client certificate commonName=camera-7")
    assert trail[1][2] == "1 line; auth client certificate; TLS, client certificate " + (
        "commonName=camera-7"
    )
    failed = [detail for kind, _, detail in trail if kind == "tls_failed"]
    assert len(failed) == 2
    assert all("certificate" in detail for detail in failed)


async def test_a_public_bind_may_use_a_client_ca_instead_of_a_token(
    pki: Pki, tmp_path: Path
) -> None:
    """Listening beyond loopback needs a token, or client certificates (mTLS)."""
    tls = {"ingest__tls_cert": pki.server_cert, "ingest__tls_key": pki.server_key}
    without = Listener(make_settings(tmp_path, ingest__host="0.0.0.0", **tls))
    with pytest.raises(ListenerError, match="tls_client_ca"):
        await without.start()
    with_ca = Listener(
        make_settings(tmp_path, ingest__host="0.0.0.0", ingest__tls_client_ca=pki.camera_ca, **tls)
    )
    await with_ca.start()
    try:
        assert with_ca.port > 0
    finally:
        await with_ca.stop()


async def test_unusable_certificate_files_are_one_sentence(pki: Pki, tmp_path: Path) -> None:
    """A key that does not match, or a missing file, stops the listener with one sentence."""
    mismatched = Listener(
        make_settings(tmp_path, ingest__tls_cert=pki.server_cert, ingest__tls_key=pki.camera_key)
    )
    with pytest.raises(ListenerError, match="the key must match the certificate"):
        await mismatched.start()
    missing = Listener(
        make_settings(
            tmp_path, ingest__tls_cert=tmp_path / "nope.pem", ingest__tls_key=pki.server_key
        )
    )
    with pytest.raises(ListenerError, match="nope.pem does not exist"):
        await missing.start()
    with pytest.raises(AccessError, match="go together"):
        client_tls_context(cert=pki.camera_cert)


async def test_send_tls_round_trips(
    start_listener: StartListener, pki: Pki, tmp_path: Path
) -> None:
    """`factory-tui send --tls --cafile --cert --key` delivers a file over mTLS; without
    --cert the listener closes the connection and send says what may be missing."""
    listener = await tls_listener(start_listener, pki, ingest__tls_client_ca=pki.camera_ca)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(event_at(n) for n in range(5)) + b"\n")
    port = str(listener.port)
    code, out, err = await run_cli(
        "send", str(events), "--port", port, "--tls", "--cafile", str(pki.server_cert),
        "--cert", str(pki.camera_cert), "--key", str(pki.camera_key),
    )  # fmt: skip
    assert (code, out.strip()) == (0, "accepted 5, duplicate 0, rejected 0"), err
    code, out, err = await run_cli(
        "send", str(events), "--port", port, "--cafile", str(pki.server_cert), "--retries", "0"
    )
    assert code == 1
    assert "could not deliver from line 1 on" in err
    assert "without one (--cert/--key)" in err or "the listener refused TLS" in err
    assert listener.stats().accepted == 5


def test_a_plain_socket_gets_nothing_before_the_handshake(pki: Pki) -> None:
    """The client's own TLS context refuses to talk to a plain socket server (sanity)."""
    context = client_tls_context(pki.server_cert)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        async def attempt() -> None:
            client = IngestClient("127.0.0.1", port, tls=context, timeout_s=0.5)
            with pytest.raises(ClientError):
                await client.connect()

        asyncio.run(attempt())


async def test_simulate_tls_sends_over_mtls(
    start_listener: StartListener, pki: Pki, tmp_path: Path
) -> None:
    """`factory-tui simulate --cafile --cert --key` drives a listener that wants client
    certificates; every camera's connection is TLS with the camera's certificate."""
    listener = await tls_listener(start_listener, pki, ingest__tls_client_ca=pki.camera_ca)
    code, out, err = await run_cli(
        "simulate", "--port", str(listener.port), "--speed", "3600", "--duration", "5m",
        "--workers", "2", "--start", "2024-05-01T08:00:00Z", "--cafile", str(pki.server_cert),
        "--cert", str(pki.camera_cert), "--key", str(pki.camera_key),
    )  # fmt: skip
    assert code == 0, err
    assert listener.stats().accepted > 0
    assert "rejected 0" in out
    await listener.stop()
    opened = [detail for kind, _, detail in audit_of(tmp_path) if kind == "connection_opened"]
    assert opened == ["TLS, client certificate commonName=camera-7"] * 2


class _Recorder(asyncio.Protocol):
    """A protocol that writes down what it is told, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.calls.append(("made",))

    def data_received(self, data: bytes) -> None:
        self.calls.append(("data", data))

    def eof_received(self) -> bool:
        self.calls.append(("eof",))
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append(("lost",))


def test_bytes_that_come_with_the_end_of_the_handshake_reach_the_connection() -> None:
    """asyncio delivers the first decrypted bytes (and even EOF) as the handshake completes,
    before the connection has its transport: they wait in front of it and follow its
    connection_made, in order; later calls pass straight through, and EOF never asks TLS to
    keep a half-open socket. (A first line that came with the handshake's end used to reach the
    connection before its transport: the connection was dropped unanswered.)"""
    front = _TlsFront()
    front.data_received(b'{"a":1}\n')
    assert front.eof_received() is False
    front.connection_lost(None)
    target = _Recorder()
    front.hand_over(target, asyncio.Transport())
    assert target.calls == [("made",), ("data", b'{"a":1}\n'), ("eof",), ("lost",)]
    later = _Recorder()
    front = _TlsFront()
    front.hand_over(later, asyncio.Transport())
    front.data_received(b"x")
    assert front.eof_received() is False
    assert later.calls == [("made",), ("data", b"x"), ("eof",)]


async def test_tls_and_a_token_together(
    start_listener: StartListener, pki: Pki, tmp_path: Path
) -> None:
    """With both, the token is asked for inside TLS; the audit trail says both."""
    listener = await tls_listener(start_listener, pki, ingest__token="s3cret")
    context = client_tls_context(cafile=pki.server_cert)
    async with IngestClient("127.0.0.1", listener.port, "s3cret", tls=context) as client:
        (reply,) = await client.send([event_at(1)])
    assert reply["status"] == "accepted"
    wrong = IngestClient("127.0.0.1", listener.port, "guess", tls=context)
    with pytest.raises(ClientError, match="auth: wrong token"):
        await wrong.connect()
    await listener.stop()
    trail = audit_of(tmp_path)
    assert "2 lines; auth token; TLS" in [detail for _, _, detail in trail]
    assert [kind for kind, _, _ in trail].count("auth_failed") == 1
