"""kill -9 of `serve` mid-stream over MQTT loses nothing the broker had delivered: messages not
yet acknowledged come again on the next session, and each event is stored once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from factory_tui.ingest.mqtt_client import MqttPublisher
from factory_tui.storage import SqliteStore
from tests.demo_config import write_demo_config
from tests.ingest.conftest import ServeProcess, event_at, read_until

MESSAGES = 400
EVENTS_PER_MESSAGE = 3
KILL_AFTER_STORED = 200


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    with SqliteStore.open(db, read_only=True) as store:
        return store.count_events()


async def start_serve(config: Path, db: Path) -> ServeProcess:
    """serve with MQTT ingest, once it is subscribed (its session exists at the broker)."""
    server = await ServeProcess.start("--config", str(config), "--db", str(db))
    await read_until(server.process.stderr, b"MQTT: subscribed")
    return server


async def test_kill_9_mid_stream_loses_no_delivered_message(tmp_path: Path, mqtt_url: str) -> None:
    name = f"ft-test-{uuid.uuid4().hex[:12]}"
    config = write_demo_config(tmp_path)
    config.write_text(
        config.read_text()
        + f'[ingest.mqtt]\nurl = "{mqtt_url}"\ntopic = "{name}/+/events"\n'
        + f'client_id = "{name}-serve"\nsession_expiry_s = 60\n'
        # A few messages per batch: the kill lands between commits, with messages in flight.
        + "max_in_flight = 16\n"
    )
    db = tmp_path / "factory.db"
    messages = [
        b"\n".join(event_at(n * EVENTS_PER_MESSAGE + k) for k in range(EVENTS_PER_MESSAGE))
        for n in range(MESSAGES)
    ]
    total = MESSAGES * EVENTS_PER_MESSAGE
    server = await start_serve(config, db)
    publisher = MqttPublisher(mqtt_url, f"{name}-camera")
    await publisher.connect()

    async def publish_everything() -> None:
        for n, payload in enumerate(messages):
            await publisher.publish(f"{name}/cam{n % 7}/events", payload)

    publishing = asyncio.create_task(publish_everything())
    try:
        for _ in range(3_000):  # bounded: 30 s
            if stored(db) >= KILL_AFTER_STORED:
                break
            await asyncio.sleep(0.01)
        # Mid-stream: messages are being delivered and committed (the rest published or queued
        # by the broker for our session).
        await server.kill()
        at_kill = stored(db)
        await asyncio.wait_for(publishing, 60.0)  # the broker keeps them for our session
    finally:
        await publisher.close()
    assert KILL_AFTER_STORED <= at_kill < total, (at_kill, publishing.done())

    restarted = await start_serve(config, db)
    try:
        for _ in range(3_000):  # bounded: 30 s
            if stored(db) >= total:
                break
            await asyncio.sleep(0.01)
    finally:
        restarted.process.terminate()
        await asyncio.wait_for(restarted.process.wait(), 30.0)
    # Every published event, each once (a redelivered message is a duplicate).
    assert stored(db) == total
