"""The listener on PostgreSQL: every line answered exactly (accepted or duplicate), whether
its batch went in as all new (one COPY) or through the staging table after a duplicate."""

from __future__ import annotations

from pathlib import Path

from factory_tui.ingest.listener import Listener
from factory_tui.storage import open_store
from tests.ingest.conftest import Peer, event_at, make_settings


async def test_replies_stay_exact_on_postgres_whatever_path_a_batch_takes(
    tmp_path: Path, pg_url: str
) -> None:
    listener = Listener(make_settings(tmp_path, store__path=pg_url), linger_s=0.2)
    await listener.start()
    peer = await Peer.open(listener.port)
    try:
        # All new: stored as such.
        await peer.send(b"".join(event_at(n) + b"\n" for n in range(50)))
        assert {r["status"] for r in await peer.replies(50)} == {"accepted"}
        # A clean batch came before, so this one is tried as all new first; two lines are
        # known and one repeats inside the batch: the replies say so line by line.
        lines = [event_at(10), event_at(50), event_at(51), event_at(51), event_at(20)]
        await peer.send(b"".join(line + b"\n" for line in lines))
        statuses = [r["status"] for r in await peer.replies(5)]
        assert statuses == ["duplicate", "accepted", "accepted", "duplicate", "duplicate"]
        # After a batch with duplicates, the next one (all new again) is stored all the same.
        await peer.send(b"".join(event_at(n) + b"\n" for n in range(52, 60)))
        assert {r["status"] for r in await peer.replies(8)} == {"accepted"}
    finally:
        await peer.close()
        await listener.stop()
    with open_store(pg_url, read_only=True) as store:
        stored = [row.event_hash for row in store.iter_since(0)]
    assert len(stored) == len(set(stored)) == 60
    assert listener.stats().accepted == 60
    assert listener.stats().duplicates == 3
