"""/metrics: what a Prometheus scrape of `serve` costs with 200 workers.

Stores a shift of a 200-worker floor (one event per worker every 30 s: working, idle or a
product count; three model versions) through a real `Listener`, then scrapes `serve`'s endpoint
over HTTP on loopback at a fixed instant at the end of that history:

- the first scrape, which loads the running shift (`warm_start.load_engine`, as a report does)
  and runs the per-model query once, over the rows read so far;
- later scrapes, which read only the rows stored since (`Store.read_since`);
- a scrape after 200 new events (one per worker, what a live floor adds in about 30 s);

and splits a later scrape into its parts (cursor read, Snapshot and per-model tally; the
exposition text). The yardstick, measured in the same run: the per-model query over the shift
that a scrape ran before the per-model figures were folded from the cursor's rows.

    python benchmarks/metrics_scrape.py               # 4 hours of history: 96,000 events
    python benchmarks/metrics_scrape.py --hours 8     # a whole shift
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from factory_tui.commands.serve import metrics_server
from factory_tui.config import Settings, load_settings
from factory_tui.ingest.listener import Listener
from factory_tui.metrics_export import FloorCollector, StoreFloor
from factory_tui.models import iso_utc
from factory_tui.storage import open_store

WORKERS = 200
STEP_S = 30
START_US = 1_714_543_200_000_000  # 2024-05-01T06:00:00Z, the start of shift A


def config(folder: Path) -> Settings:
    path = folder / "factory.toml"
    path.write_text(
        f'[store]\npath = "{(folder / "factory.db").as_posix()}"\n'
        "[ingest]\nauto_register = true\nport = 0\n"
        "[metrics_http]\nport = 0\n"
        '[[shifts]]\nname = "A"\nstart = "06:00"\nend = "14:00"\n'
    )
    return load_settings(path, environ={})


def lines(seconds: int, first_s: int = 0) -> Iterator[bytes]:
    """One event per worker every STEP_S seconds from `first_s` to `seconds`."""
    rng = random.Random(first_s)
    for t in range(first_s, seconds, STEP_S):
        for w in range(WORKERS):
            kind = rng.choice(("working", "working", "idle", "product_count"))
            event = {
                "timestamp": iso_utc(START_US + t * 1_000_000 + w * 1_000),
                "worker_id": f"W{w:03d}",
                "workstation_id": f"S{w // 4:02d}",
                "event_type": kind,
                "confidence": 0.9,
                "model_version": f"m{w % 3}",
            }
            if kind == "product_count":
                event["count"] = 1
            yield json.dumps(event).encode()


def scrape(port: int) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


async def run(hours: float) -> None:
    seconds = int(hours * 3600)
    at_us = START_US + seconds * 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        settings = config(Path(folder))
        listener = Listener(settings)
        await listener.start()
        stored = 0
        batch: list[bytes] = []
        for line in lines(seconds):
            batch.append(line)
            if len(batch) == 5_000:
                await listener.submit(batch)
                stored, batch = stored + len(batch), []
        await listener.submit(batch)
        stored += len(batch)
        floor = StoreFloor(settings, clock=lambda: at_us)
        server = metrics_server(settings, listener, None, floor)
        server.start()
        try:
            first, size = await asyncio.to_thread(scrape, server.port)
            later = [(await asyncio.to_thread(scrape, server.port))[0] for _ in range(5)]
            await listener.submit(list(lines(seconds + STEP_S, seconds)))
            after_new, _ = await asyncio.to_thread(scrape, server.port)
            parts = await asyncio.to_thread(split, floor, at_us)
        finally:
            server.stop()
            floor.close()
            await listener.stop()
    print(f"{WORKERS} workers, {stored:,} events in the shift; /metrics is {size:,} bytes")
    print(f"first scrape (loads the shift):  {first * 1000:6.0f} ms")
    print(f"later scrapes (median of 5):     {statistics.median(later) * 1000:6.0f} ms")
    print(f"after 200 new events:            {after_new * 1000:6.0f} ms")
    print(
        f"a later scrape's parts: figures {parts[0]:.0f} ms (cursor read, Snapshot, per-model "
        f"tally), exposition text {parts[2]:.0f} ms"
    )
    query = parts[1]
    print(
        f"yardstick: the per-model query over the shift, {query:.0f} ms; a later scrape is "
        f"{statistics.median(later) * 1000 / query:.2f}x it (before, a scrape ran it on top)"
    )


def split(floor: StoreFloor, at_us: int) -> tuple[float, float, float]:
    """Milliseconds of one scrape's figures, the per-model query it no longer runs, and its
    text."""
    started = time.perf_counter()
    figures = floor()
    read = time.perf_counter()
    assert figures is not None
    window = figures.snapshot.window
    with open_store(floor.settings.store.location, read_only=True) as store:
        store.model_summary(window.from_us, window.instants_end(at_us))
    models = time.perf_counter()
    registry = CollectorRegistry()
    registry.register(FloorCollector("main", lambda: figures))
    generate_latest(registry)
    text = time.perf_counter()
    return (read - started) * 1000, (models - read) * 1000, (text - models) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0, help="hours of history (max 8)")
    args = parser.parse_args()
    asyncio.run(run(min(args.hours, 8.0)))


if __name__ == "__main__":
    main()
