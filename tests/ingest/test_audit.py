"""The audit trail: connections opened and closed, auth failures and refused peers in the
`audit` table and the log, and kept for `[audit] keep_days`. (TLS entries: test_tls.py.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from factory_tui.config import load_settings
from factory_tui.ingest.listener import Listener
from factory_tui.records import AuditEntry
from factory_tui.retention import US_PER_DAY, Retention
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import Peer, event_at

StartListener = Callable[..., Any]
NOW = 1_772_445_600_000_000  # 2026-03-02 10:00 UTC


def trail_of(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(kind, peer, detail) of the test database's audit trail, oldest first."""
    with SqliteStore.open(tmp_path / "factory.db") as store:
        return [(row.kind, row.peer, row.detail) for row in reversed(store.audit_entries())]


async def peer_from(source: str, port: int) -> Peer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return Peer(reader, writer)


async def test_connections_and_auth_failures_are_audited(
    start_listener: StartListener, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera with the token: opened, then closed with its line count and `auth token`. A
    peer with a wrong token: opened, auth_failed, closed with `auth no token`. Each entry is
    in the log too."""
    caplog.set_level(logging.INFO, logger="factory_tui.audit")
    listener: Listener = await start_listener(ingest__token="s3cret")
    good = await Peer.open(listener.port)
    await good.send(b'{"auth":"s3cret"}\n' + event_at(1) + b"\n" + event_at(2) + b"\n")
    assert [reply["status"] for reply in await good.replies(3)] == [
        "authenticated",
        "accepted",
        "accepted",
    ]
    await good.close()
    bad = await Peer.open(listener.port)
    await bad.send(b'{"auth":"guess"}\n')
    assert (await bad.replies(1))[0]["error"] == "auth: wrong token"
    assert await bad.at_eof()
    await bad.close()
    await listener.stop()
    trail = trail_of(tmp_path)
    good_peer = trail[0][1]
    assert [entry for entry in trail if entry[1] == good_peer] == [
        ("connection_opened", good_peer, "plain TCP"),
        ("connection_closed", good_peer, "3 lines; auth token; plain TCP"),
    ]
    bad_peer = next(peer for _, peer, _ in trail if peer != good_peer)
    assert [entry for entry in trail if entry[1] == bad_peer] == [
        ("connection_opened", bad_peer, "plain TCP"),
        ("auth_failed", bad_peer, "auth: wrong token"),
        ("connection_closed", bad_peer, "1 line; auth no token; plain TCP"),
    ]
    logged = [record.getMessage() for record in caplog.records]
    assert f"audit: auth_failed {bad_peer} (auth: wrong token)" in logged


async def test_refused_peers_are_audited(start_listener: StartListener, tmp_path: Path) -> None:
    """A peer outside the allow-list and one over its address's limit: one peer_refused each,
    with the refusal it was sent, and no connection_opened."""
    listener: Listener = await start_listener(
        ingest__allow=["127.0.0.1", "127.0.0.2"], ingest__max_connections_per_ip=1
    )
    stranger = await peer_from("127.0.0.3", listener.port)
    assert await stranger.replies(1)
    first = await peer_from("127.0.0.2", listener.port)
    await first.send(event_at(1) + b"\n")
    assert await first.replies(1)
    second = await peer_from("127.0.0.2", listener.port)
    assert await second.replies(1)
    for peer in (stranger, first, second):
        await peer.close()
    await listener.stop()
    refused = [(peer.rpartition(":")[0], detail) for kind, peer, detail in trail_of(tmp_path)
               if kind == "peer_refused"]  # fmt: skip
    assert refused == [
        ("127.0.0.3", "connection: address not allowed: 127.0.0.3 is not in [ingest] allow"),
        ("127.0.0.2", "limit 1 from 127.0.0.2"),
    ]
    opened = [peer for kind, peer, _ in trail_of(tmp_path) if kind == "connection_opened"]
    assert [peer.rpartition(":")[0] for peer in opened] == ["127.0.0.2"]


def test_audit_entries_are_kept_for_audit_keep_days(tmp_path: Path) -> None:
    """`[audit] keep_days` alone turns retention on; it deletes audit entries older than the
    cut-off, of every site, and no event."""
    settings = load_settings(
        None, environ={}, overrides={"audit.keep_days": 30, "store.path": tmp_path / "f.db"}
    )
    configured = Retention.from_settings(settings)
    assert configured is not None
    assert (configured.keep_days, configured.audit_keep_days) == (None, 30)
    retention = Retention(None, audit_keep_days=30, batch=2, pause_s=0.0, clock=lambda: NOW)
    with SqliteStore.open(tmp_path / "f.db") as store:
        old, recent = NOW - 31 * US_PER_DAY, NOW - 29 * US_PER_DAY
        store.add_audit([AuditEntry(old, "peer_refused", f"10.0.0.{n}:1", "") for n in range(5)])
        store.add_audit([AuditEntry(recent, "connection_opened", "10.0.0.9:1", "plain TCP")])
        store.scoped("pune").describe_site("Pune", {}, NOW)
        store.scoped("pune").add_audit([AuditEntry(old, "auth_failed", "10.1.0.1:1", "")])
        sweep = retention.sweep(store)
        assert sweep.audit_deleted == 6
        assert sweep.deleted == {}
        assert "deleted 6 audit entries (before 2026-01-31T10:00:00" in sweep.describe()
        assert [entry.peer for entry in store.audit_entries()] == ["10.0.0.9:1"]
        assert store.scoped("pune").audit_entries() == []
