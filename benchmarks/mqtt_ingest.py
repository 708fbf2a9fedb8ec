"""MQTT ingest throughput (`[ingest.mqtt]`) beside the TCP port as the yardstick.

One `factory-tui serve` subprocess per case on a fresh temp database, subscribed to a topic of
its own on the broker at FACTORY_TUI_TEST_MQTT (default mqtt://127.0.0.1:1883); this process
publishes N events in messages of B events (JSON lines, QoS 1, up to WINDOW messages awaiting
the broker's PUBACK at once, and at most BACKLOG messages ahead of what serve has stored) and
clocks until serve has stored them all (polling the database).
The yardstick streams the same events to a fresh serve's TCP port and reads every reply. Prints
events/s for each case and its ratio to the TCP figure of the same run, so the figures compare
on a noisy machine.

    python benchmarks/mqtt_ingest.py           # about half a minute on 2 cores
    python benchmarks/mqtt_ingest.py --quick   # smaller cases
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import event_line as shared_event_line  # noqa: E402  (benchmarks/ingest.py)

from factory_tui.ingest.client import IngestClient  # noqa: E402
from factory_tui.ingest.mqtt_client import MqttPublisher  # noqa: E402
from factory_tui.storage import SqliteStore  # noqa: E402

URL = os.environ.get("FACTORY_TUI_TEST_MQTT", "mqtt://127.0.0.1:1883")
WINDOW = 64
"""Messages published and not yet acknowledged by the broker, at most."""
BACKLOG = 500
"""Messages published and not yet stored, at most (Mosquitto queues 1000 for a subscriber by
default, then drops)."""


def event_line(n: int) -> bytes:
    """A valid wire event, unique for every n (ids are auto-registered)."""
    return shared_event_line(n, workers=50)


class Serve:
    """`factory-tui serve` on a fresh database, subscribed to `topic` when one is given."""

    def __init__(self, folder: Path, topic: str | None) -> None:
        self.db = folder / f"bench-{uuid.uuid4().hex[:6]}.db"
        self.topic = topic
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0

    async def __aenter__(self) -> Serve:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
        if self.topic is not None:
            env |= {
                "FACTORY_TUI_INGEST_MQTT_URL": URL,
                "FACTORY_TUI_INGEST_MQTT_TOPIC": self.topic,
                "FACTORY_TUI_INGEST_MQTT_CLIENT_ID": f"bench-{uuid.uuid4().hex[:8]}",
                "FACTORY_TUI_INGEST_MQTT_SESSION_EXPIRY_S": "60",
            }
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "factory_tui", "serve", "--db", str(self.db),
            "--port", "0", "--auto-register",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        first = (await asyncio.wait_for(self.process.stdout.readline(), 60)).decode()
        self.port = int(first.strip().rsplit(":", 1)[1])
        if self.topic is not None:
            for _ in range(100):
                line = await asyncio.wait_for(self.process.stderr.readline(), 60)
                if b"MQTT: subscribed" in line:
                    break
            else:
                raise SystemExit("serve never subscribed")
        return self

    def stored(self) -> int:
        with SqliteStore.open(self.db, read_only=True) as store:
            return store.count_events()

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        await self.process.communicate()


async def over_mqtt(folder: Path, total: int, per_message: int) -> float:
    """Events/s from the first publish until serve has stored every event."""
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    messages = [
        b"\n".join(event_line(n) for n in range(start, min(start + per_message, total)))
        for start in range(0, total, per_message)
    ]
    async with Serve(folder, f"{topic}/+/events") as serve:
        publisher = MqttPublisher(URL, f"{topic}-pub")
        await publisher.connect()
        window = asyncio.Semaphore(WINDOW)

        async def one(index: int, payload: bytes) -> None:
            try:
                await publisher.publish(f"{topic}/cam{index % 50}/events", payload)
            finally:
                window.release()

        started = time.perf_counter()
        tasks = []
        stored_messages = 0
        for index, payload in enumerate(messages):
            # The broker queues at most BACKLOG messages for a subscriber that is behind (then
            # drops them): measure what the subscriber sustains, not how fast a queue fills.
            while index - stored_messages > BACKLOG:
                await asyncio.sleep(0.005)
                stored_messages = serve.stored() // per_message
            await window.acquire()
            tasks.append(asyncio.create_task(one(index, payload)))
        await asyncio.gather(*tasks)
        for _ in range(60_000):  # bounded: 10 minutes
            if serve.stored() >= total:
                break
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await publisher.close()
        if serve.stored() != total:
            raise SystemExit(f"stored {serve.stored()} of {total}")
        return total / elapsed


async def over_tcp(folder: Path, total: int) -> float:
    """The yardstick: the same events streamed to the TCP port, every reply read."""
    lines = [event_line(n) for n in range(total)]
    async with Serve(folder, None) as serve:
        client = IngestClient("127.0.0.1", serve.port)
        await client.connect()
        started = time.perf_counter()
        replies = await client.send(lines)
        elapsed = time.perf_counter() - started
        await client.close()
        assert len(replies) == total
        return total / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller cases")
    args = parser.parse_args()
    parts = urlsplit(URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), 5).close()
    except OSError as error:
        why = error.strerror or error
        print(f"skipped: no MQTT broker at {URL} ({why}); set FACTORY_TUI_TEST_MQTT")
        return
    scale = 4 if args.quick else 1
    cases = [(40_000 // scale, 100), (20_000 // scale, 10), (4_000 // scale, 1)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tcp = await over_tcp(folder, cases[0][0])
        print(
            f"TCP yardstick: {cases[0][0]:,} events streamed on 1 connection: {tcp:,.0f} events/s"
        )
        for total, per_message in cases:
            rate = await over_mqtt(folder, total, per_message)
            print(
                f"MQTT: {total:,} events in messages of {per_message}, QoS 1, {WINDOW} in flight: "
                f"{rate:,.0f} events/s ({rate / tcp:.2f} of TCP)"
            )


if __name__ == "__main__":
    asyncio.run(main())
