"""kill -9 of a `serve` process mid-stream loses nothing that had been acknowledged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from factory_tui.ingest.client import IngestClient
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import ServeProcess, event_at

TOTAL = 60_000
KILL_AFTER_REPLIES = 8_000


@pytest.mark.long
async def test_kill_9_mid_stream_keeps_every_acked_event(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    lines = [event_at(n) for n in range(TOTAL)]
    server = await ServeProcess.start("--db", str(db))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

    async def stream_everything() -> None:
        try:
            for start in range(0, TOTAL, 1_000):
                writer.write(b"\n".join(lines[start : start + 1_000]) + b"\n")
                await writer.drain()
        except ConnectionError:
            pass  # the server was killed under us: expected

    sending = asyncio.create_task(stream_everything())
    acked = 0
    buffer = b""
    killed = False
    while True:
        try:
            data = await asyncio.wait_for(reader.read(1 << 16), 30.0)
        except ConnectionError:
            data = b""
        if not data:
            break
        buffer += data
        *replies, buffer = buffer.split(b"\n")
        for reply in replies:
            assert json.loads(reply) == {"status": "accepted"}
        acked += len(replies)
        if acked >= KILL_AFTER_REPLIES and not killed:
            # Mid-stream: lines are still being sent and batches are being committed.
            await server.kill()
            killed = True
    await sending
    writer.close()
    assert killed
    assert KILL_AFTER_REPLIES <= acked < TOTAL, acked

    # Every acknowledged event is in the file, even before anyone reopens it for writing.
    with SqliteStore.open(db, read_only=True) as store:
        assert store.count_events() >= acked

    restarted = await ServeProcess.start("--db", str(db))
    try:
        async with IngestClient("127.0.0.1", restarted.port) as client:
            again = await client.send(lines[:acked])
            assert again == [{"status": "duplicate"}] * acked
            rest = await client.send(lines[acked:])
            assert {reply["status"] for reply in rest} <= {"accepted", "duplicate"}
    finally:
        restarted.process.terminate()
        await asyncio.wait_for(restarted.process.wait(), 30.0)
    with SqliteStore.open(db, read_only=True) as store:
        assert store.count_events() == TOTAL
