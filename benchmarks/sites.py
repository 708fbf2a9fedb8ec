"""Many sites on one PostgreSQL server: what the central database takes in, and how fast.

On a local PostgreSQL (`--pg`, default $FACTORY_TUI_TEST_PG or postgresql://127.0.0.1:5432/test),
each case in a fresh schema of its own, dropped afterwards, with the same N events of one site
(simulated cameras, `--events`, default 1,000,000):

- plain COPY of the rows into the events table (partitioned by site, both indexes): the ceiling;
- `forward`: draining a site's SQLite backlog of N events into the central database;
- direct ingest: `factory-tui serve --db postgresql://...`, 4 connections, every line
  acknowledged after its batch committed;
- `factory-tui report` over all N events of the site (the CLI, start-up included);
- the steady state: 8 caught-up sites each committing one second of events (20) at a time;

and each rate as a share of the ceiling, plus the bytes one event takes on the server.

    python benchmarks/sites.py                  # 1M events (about five minutes on 2 cores)
    python benchmarks/sites.py --events 200000  # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import _one_connection as one_connection  # noqa: E402
from benchmarks.pg_scratch import add_pg_option, events_bytes, scratch_schema  # noqa: E402
from factory_tui.config import load_settings  # noqa: E402
from factory_tui.forwarding import Forwarder  # noqa: E402
from factory_tui.ingest.protocol import parse_row  # noqa: E402
from factory_tui.ingest.simulator import CameraFleet, FleetConfig  # noqa: E402
from factory_tui.models import RosterEntry, iso_utc, to_utc_us  # noqa: E402
from factory_tui.storage import SqliteStore, mask_url, open_store  # noqa: E402

if TYPE_CHECKING:
    from factory_tui.models import NewEventRow

SITE = "bench"
WORKERS = 1_000
STATIONS = 100
CONNECTIONS = 4
STEADY_SITES = 8
STEADY_BATCH = 20
"""One second of a 200-camera site at one event per 10 s per camera."""
FORWARD_BATCH = 20_000
START = to_utc_us(datetime(2025, 3, 3, 6, 0, tzinfo=UTC))
COLUMNS = (
    "ts_us, worker_id, workstation_id, event_type, confidence, count, model_version, "
    "camera_id, received_us, event_hash"
)


def simulated_lines(events: int) -> list[bytes]:
    """`events` distinct wire lines of one site's cameras (no deliberate re-sends)."""
    workers = [RosterEntry(f"W{n}", f"W{n}") for n in range(1, WORKERS + 1)]
    stations = [RosterEntry(f"S{n}", f"S{n}") for n in range(1, STATIONS + 1)]
    fleet = CameraFleet(workers, stations, seed=11, config=FleetConfig(duplicate_rate=0.0))
    lines: list[bytes] = []
    hour = 3_600_000_000
    at = START
    while len(lines) < events:
        lines += fleet.events_between(at, at + hour)
        at += hour
    return lines[:events]


def distinct_rows(lines: list[bytes]) -> list[NewEventRow]:
    """The rows the listener would store for `lines` (a line whose event repeats dropped)."""
    received = START
    rows: dict[str, NewEventRow] = {}
    for line in lines:
        row = parse_row(line, UTC, received)
        rows.setdefault(row.event_hash, row)
    return list(rows.values())


# --- the cases --------------------------------------------------------------------------------


def plain_copy(url: str, rows: list[NewEventRow]) -> float:
    """Seconds to COPY every row but the first into the events table, in one COPY."""
    with open_store(url, site=SITE) as store:
        store.insert_rows(rows[:1])  # makes the site's partition, as the first batch does
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(f"COPY events (site_id, {COLUMNS}) FROM STDIN") as copy,
        ):
            for row in rows[1:]:
                # The hash as the store keeps it: a digest's 32 raw bytes.
                copy.write_row((SITE, *row[:9], bytes.fromhex(row.event_hash)))
        return time.perf_counter() - started


def site_database(path: Path, rows: list[NewEventRow]) -> None:
    """A site's SQLite database holding `rows`, described as its listener would."""
    settings = site_settings(path, None)
    with SqliteStore.open(path, bulk_writer=True, site=SITE) as store:
        store.describe_site(SITE, settings.site_description(), START)
        store.register_ids(
            sorted({row.worker_id for row in rows}), sorted({row.workstation_id for row in rows})
        )
        for first in range(0, len(rows), 50_000):
            store.insert_rows(rows[first : first + 50_000])


def site_settings(db: Path | str, url: str | None) -> object:
    return load_settings(
        None,
        environ={},
        overrides={"store.path": url or db, "site.id": SITE, "ingest.auto_register": True},
    )


def forward(site_db: Path, url: str, batch: int) -> tuple[float, int, int]:
    """Seconds to drain the site's backlog into `url`; (seconds, forwarded, batches)."""
    forwarder = Forwarder(site_db, url, site_id=SITE, batch_size=batch)
    tally = forwarder.run(threading.Event(), once=True)
    return tally.elapsed_s, tally.forwarded, tally.batches


def steady_sites(url: str, rows: list[NewEventRow], sites: int, size: int) -> float:
    """Transactions per second when `sites` forwarders each commit batches of `size` events
    at once (a caught-up site ships what arrived since its last look), for 10 s."""
    with open_store(url) as store:  # the schema, made once
        store.count_events()
    done = [0] * sites
    stop = threading.Event()
    failed: list[BaseException] = []

    def one_site(index: int) -> None:
        sample = rows[:size]
        try:
            with open_store(url, site=f"steady{index}") as store:
                while not stop.is_set():
                    batch = done[index]
                    store.insert_fresh_rows(
                        [row._replace(event_hash=f"{batch}.{n}") for n, row in enumerate(sample)]
                    )
                    done[index] += 1
        except BaseException as error:
            failed.append(error)

    threads = [threading.Thread(target=one_site, args=(n,)) for n in range(sites)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # every site connected and past its first batch (its partition)
    before, started = sum(done), time.perf_counter()
    time.sleep(10.0)
    after, elapsed = sum(done), time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    return (after - before) / elapsed


def write_config(folder: Path, url: str) -> Path:
    config = folder / "factory.toml"
    config.write_text(
        f'[site]\nid = "{SITE}"\n[store]\nurl = "{url}"\n[ingest]\nauto_register = true\n'
    )
    return config


async def _load(port: int, lines: list[bytes]) -> tuple[float, int]:
    share = -(-len(lines) // CONNECTIONS)
    parts = [lines[n : n + share] for n in range(0, len(lines), share)]
    payloads = [b"\n".join(part) + b"\n" for part in parts]
    started = time.perf_counter()
    answered = await asyncio.gather(
        *(
            one_connection(port, payload, len(part))
            for payload, part in zip(payloads, parts, strict=True)
        )
    )
    return time.perf_counter() - started, sum(accepted for _, accepted in answered)


def direct_ingest(config: Path, lines: list[bytes]) -> tuple[float, int]:
    """Seconds from the first byte sent to the last reply read, through `serve`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "factory_tui", "serve", "--config", str(config), "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        cwd=config.parent,
    )
    assert server.stderr is not None
    port = 0
    for _ in range(50):
        found = re.search(rb"listening on 127\.0\.0\.1:(\d+)", server.stderr.readline())
        if found:
            port = int(found.group(1))
            break
    if not port:
        server.kill()
        raise SystemExit("serve did not start")
    try:
        return asyncio.run(_load(port, lines))
    finally:
        server.terminate()
        server.wait(120)


def report(config: Path, rows: list[NewEventRow]) -> float:
    """Seconds `factory-tui report` takes over every event of the site (the CLI, as run)."""
    first = min(row.ts_us for row in rows)
    last = max(row.ts_us for row in rows) + 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
    command = [sys.executable, "-m", "factory_tui", "report", "--config", str(config)]
    command += ["--from", iso_utc(first), "--to", iso_utc(last), "--at", iso_utc(last)]
    command += ["--format", "json"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=config.parent)
    return time.perf_counter() - started


# --- the harness ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the site")
    add_pg_option(parser)
    parser.add_argument("--batch", type=int, default=FORWARD_BATCH, help="forward batch size")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (best counts)")
    args = parser.parse_args()
    try:
        with psycopg.connect(args.pg, autocommit=True, connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as error:
        reason = " ".join(str(error).split())
        print(f"sites: skipped, no PostgreSQL at {mask_url(args.pg)}: {reason}")
        return

    print(f"sites: PostgreSQL {version[0] if version else '?'}, {os.cpu_count()} cores")
    started = time.perf_counter()
    lines = simulated_lines(args.events)
    rows = distinct_rows(lines)
    span_h = (max(r.ts_us for r in rows) - min(r.ts_us for r in rows)) / 3.6e9
    print(
        f"  {len(rows):,} events of one site ({WORKERS:,} cameras, {span_h:.1f} h simulated), "
        f"made in {time.perf_counter() - started:.1f} s"
    )

    # Each case runs `--repeat` times, interleaved, in a fresh schema; the best run counts
    # (a busy machine slows some runs, never speeds one up).
    copy_s = forward_s = serve_s = float("inf")
    batches = 0
    with tempfile.TemporaryDirectory(prefix="sites-bench-") as tmp:
        folder = Path(tmp)
        site_db = folder / "site.db"
        site_database(site_db, rows)
        for run in range(args.repeat):
            with scratch_schema(args.pg, "copy") as url:
                copy_s = min(copy_s, plain_copy(url, rows))
                size, stored = events_bytes(url)
            with scratch_schema(args.pg, "forward") as url:
                seconds, forwarded, batches = forward(site_db, url, args.batch)
                if forwarded != len(rows):
                    raise SystemExit(f"forward shipped {forwarded:,} of {len(rows):,}")
                forward_s = min(forward_s, seconds)
                if run == args.repeat - 1:
                    report_s = report(write_config(folder, url), rows)
            if run == args.repeat - 1:
                with scratch_schema(args.pg, "steady") as url:
                    steady_tx = steady_sites(url, rows, STEADY_SITES, STEADY_BATCH)
            with scratch_schema(args.pg, "serve") as url:
                seconds, accepted = direct_ingest(write_config(folder, url), lines)
                if accepted != len(rows):
                    raise SystemExit(f"serve accepted {accepted:,} of {len(rows):,}")
                serve_s = min(serve_s, seconds)

    ceiling = (len(rows) - 1) / copy_s
    best = f"best of {args.repeat}" if args.repeat > 1 else "one run"
    print(f"  ({best} each; share of the plain COPY rate in the last column)")
    print(f"  plain COPY, one stream (ceiling)    {ceiling:>9,.0f} events/s  {copy_s:6.1f} s")
    rate = len(rows) / forward_s
    print(
        f"  forward drain, batches of {args.batch:<7,}  {rate:>9,.0f} events/s  {forward_s:6.1f} s"
        f"  {rate / ceiling:.2f}"
    )
    rate = len(lines) / serve_s
    print(
        f"  serve, {CONNECTIONS} connections, every line acked"
        f"{rate:>9,.0f} events/s  {serve_s:6.1f} s  {rate / ceiling:.2f}"
    )
    print(f"  report over all {len(rows):,} events (CLI)  {report_s:.1f} s")
    print(f"  on the server: {size / stored:,.0f} bytes per event (table and indexes)")
    print(
        f"  steady state: {STEADY_SITES} sites committing {STEADY_BATCH}-event batches at once: "
        f"{steady_tx:,.0f} transactions/s ({steady_tx * STEADY_BATCH:,.0f} events/s)"
    )


if __name__ == "__main__":
    main()
