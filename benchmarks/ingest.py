"""Ingest throughput, end to end: `factory-tui serve` in one process, the load in another.

For each case a fresh `serve` subprocess on a fresh temp database receives events from a
separate client process over N TCP connections; every event is acknowledged and every reply
read. Prints sustained events/s (first byte sent to last reply read), the server's peak RSS,
and two yardsticks measured in the same run, each case as a ratio of them: the serial
bare-minimum loop (the listener's parse + validate + sha256, batched INSERT OR IGNORE of 5,000,
no sockets; issue 17's target is 1.0x for 4 x 100,000) and SQLite's bare insert of rows built
beforehand (the ceiling). Both are printed a second way too, storing with insert_fresh_rows (the
multi-row insert the listener itself uses) instead of insert_rows: the same loop with the
faster insert, a stricter yardstick.

    python benchmarks/ingest.py              # default cases (about a minute on 2 cores)
    python benchmarks/ingest.py --quick      # smaller cases
    python benchmarks/ingest.py --profile    # also write a cProfile of the server per case
                                             # (its event loop's thread only)
    python benchmarks/ingest.py --transports # also time Protocol vs start_server, sockets only
    python benchmarks/ingest.py --alerts     # serve with its alert tick against --no-alerts
    python benchmarks/ingest.py --case 4x100000 --before /tmp/old   # an older checkout's serve
                                             # and this one's, in turn (--rounds each)

serve runs with its defaults, as a user runs it: its alerts process folds every row in too
(niced), and its CPU is printed beside serve's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from factory_tui.models import NewEventRow

ROOT = Path(__file__).resolve().parent.parent
# Cases: (connections, events per connection).
DEFAULT_CASES = [(1, 100_000), (8, 25_000), (4, 100_000)]
QUICK_CASES = [(1, 20_000), (8, 5_000), (4, 20_000)]
WRITE_BYTES = 256 << 10
HOUR_PREFIX = "2024-05-01T08:"
"""Events are stamped within this hour (--alerts: the last hour, so the tick's window holds
them)."""


def event_line(n: int, hour: str = HOUR_PREFIX, workers: int = 6) -> bytes:
    """A valid wire event, unique for every n, of worker and station W1..W`workers` (the demo
    roster's six by default; the other benchmarks auto-register theirs). Every benchmark that
    sends events makes them here."""
    seconds, micros = divmod(n, 1_000_000)
    return (
        f'{{"timestamp":"{hour}{seconds // 60 % 60:02d}:{seconds % 60:02d}.{micros:06d}Z",'
        f'"worker_id":"W{n % workers + 1}","workstation_id":"S{n % workers + 1}",'
        f'"event_type":"working","confidence":0.87,"model_version":"v3","camera_id":"cam-{n % 6}"}}'
    ).encode()


# --- the load generator (runs as its own process) --------------------------------------------


async def _one_connection(port: int, payload: bytes, count: int) -> tuple[int, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)

    async def send() -> None:
        for start in range(0, len(payload), WRITE_BYTES):
            writer.write(payload[start : start + WRITE_BYTES])
            await writer.drain()

    sending = asyncio.create_task(send())
    replies = accepted = 0
    tail = b""
    while replies < count:
        data = await reader.read(1 << 18)
        if not data:
            raise SystemExit(f"connection closed after {replies} of {count} replies")
        # Count whole reply lines only: a read can end in the middle of one.
        buffer = tail + data
        end = buffer.rfind(b"\n") + 1
        complete, tail = buffer[:end], buffer[end:]
        replies += complete.count(b"\n")
        accepted += complete.count(b'{"status":"accepted"}\n')
    await sending
    writer.close()
    return replies, accepted


async def _client(
    port: int, connections: int, per_conn: int, offset: int, hour: str
) -> dict[str, Any]:
    payloads = [
        b"".join(event_line(offset + c * per_conn + i, hour) + b"\n" for i in range(per_conn))
        for c in range(connections)
    ]
    start = time.perf_counter()
    results = await asyncio.gather(
        *(_one_connection(port, payload, per_conn) for payload in payloads)
    )
    elapsed = time.perf_counter() - start
    return {
        "elapsed_s": elapsed,
        "replies": sum(r for r, _ in results),
        "accepted": sum(a for _, a in results),
    }


def client_main(args: argparse.Namespace) -> None:
    result = asyncio.run(
        _client(args.port, args.connections, args.per_conn, args.offset, args.hour)
    )
    print(json.dumps(result))


# --- transport comparison: the socket layer alone, no validation, no database ----------------


class _EchoProtocol(asyncio.Protocol):
    """asyncio.Protocol: frame lines as the listener does, answer each at once."""

    def __init__(self) -> None:
        from factory_tui.ingest.protocol import LineFramer

        self.framer = LineFramer(65536)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        lines = self.framer.feed(data)
        if lines and self.transport is not None:
            self.transport.write(b'{"status":"accepted"}\n' * len(lines))


async def _echo_streams_chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """asyncio.start_server, reading chunks and framing them by hand."""
    from factory_tui.ingest.protocol import LineFramer

    framer = LineFramer(65536)
    while data := await reader.read(1 << 18):
        lines = framer.feed(data)
        if lines:
            writer.write(b'{"status":"accepted"}\n' * len(lines))
            await writer.drain()
    writer.close()


async def _echo_streams_readline(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """asyncio.start_server, the textbook way: readline per line."""
    while line := await reader.readline():
        del line
        writer.write(b'{"status":"accepted"}\n')
        await writer.drain()
    writer.close()


async def _echo_server(kind: str) -> None:
    sys.path.insert(0, str(ROOT))
    loop = asyncio.get_running_loop()
    if kind == "protocol":
        server = await loop.create_server(_EchoProtocol, "127.0.0.1", 0)
    elif kind == "streams-chunks":
        server = await asyncio.start_server(_echo_streams_chunks, "127.0.0.1", 0, limit=1 << 18)
    else:
        server = await asyncio.start_server(_echo_streams_readline, "127.0.0.1", 0, limit=1 << 18)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", file=sys.stderr)
    sys.stderr.flush()
    await asyncio.Event().wait()  # until terminated


def run_client(
    port: int, connections: int, per_conn: int, hour: str = HOUR_PREFIX
) -> dict[str, Any]:
    """Run the load client as its own process (so it does not share the server's core)."""
    command = [sys.executable, __file__, "--client", "--port", str(port)]
    command += ["--connections", str(connections), "--per-conn", str(per_conn)]
    command += ["--hour", hour]
    client = subprocess.run(command, capture_output=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(client.stdout)
    return result


def transports(connections: int, per_conn: int) -> None:
    """Lines/s through the socket layer alone, for each way of writing the server."""
    for kind in ("protocol", "streams-chunks", "streams-readline"):
        server = subprocess.Popen(
            [sys.executable, __file__, "--echo-server", kind],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        assert server.stderr is not None
        found = re.search(rb":(\d+)", server.stderr.readline())
        assert found is not None
        try:
            result = run_client(int(found.group(1)), connections, per_conn)
        finally:
            server.terminate()
            server.wait(60)
        rate = connections * per_conn / result["elapsed_s"]
        print(f"transport only ({kind}), {connections} x {per_conn:,} lines: {rate:,.0f} lines/s")


# --- the harness ------------------------------------------------------------------------------


def start_server(
    db: Path, profile: Path | None, extra: tuple[str, ...] = (), tree: Path | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """serve on a fresh database; `tree`: a checkout whose factory_tui it runs (its alerts
    process too) instead of this one's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
    # No config in the temp folder means no roster: the events' ids are registered as they come.
    command += ["-m", "factory_tui", "serve", "--port", "0", "--db", str(db), "--auto-register"]
    command += extra
    server = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=db.parent
    )
    assert server.stderr is not None
    for _ in range(50):
        line = server.stderr.readline()
        found = re.search(rb"listening on 127\.0\.0\.1:(\d+)", line)
        if found:
            return server, int(found.group(1))
        if not line:
            break
    server.kill()
    raise SystemExit("serve did not start")


def children_peak_rss_mib(pid: int) -> float:
    """The peak RSS of the process's children together (serve's alerts process), in MiB."""
    import psutil

    return sum(peak_rss_mib(child.pid) for child in psutil.Process(pid).children(recursive=True))


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) so far of the process, and of its children together."""
    import psutil

    def used(process: psutil.Process) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    server = psutil.Process(pid)
    return used(server), sum(used(child) for child in server.children(recursive=True))


def settled_children_cpu(pid: int, timeout_s: float = 120.0) -> tuple[float, float]:
    """The children's CPU seconds once they idle (under 0.05 s of CPU in a second: serve's
    alerts process between ticks with nothing to read), and the seconds it took to get there."""
    import psutil

    started = time.perf_counter()
    last = -1.0
    while time.perf_counter() - started < timeout_s:
        if psutil.Process(pid).children():
            now = cpu_seconds(pid)[1]
            if 0 <= now - last < 0.05:
                return now, time.perf_counter() - started
            last = now
        time.sleep(1.0)
    raise SystemExit(f"serve's alerts process still busy after {timeout_s:g} s")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_case(
    connections: int,
    per_conn: int,
    profile_dir: Path | None,
    extra: tuple[str, ...] = (),
    hour: str = HOUR_PREFIX,
    tree: Path | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        profile = None
        if profile_dir is not None:
            profile = profile_dir / f"serve-{connections}x{per_conn}.prof"
        server, port = start_server(db, profile, extra, tree)
        # serve starts its alerts process unless told not to (as a user runs it).
        alerts = "--no-alerts" not in extra
        try:
            # The alerts process's start-up (a fresh interpreter) is not part of the figure.
            alerts_before = settled_children_cpu(server.pid)[0] if alerts else 0.0
            serve_before = cpu_seconds(server.pid)[0]
            result = run_client(port, connections, per_conn, hour)
            result["cpu_s"] = cpu_seconds(server.pid)[0] - serve_before
            if alerts:
                # Until it has folded in every row: it runs niced, so it may lag the load.
                alerts_after, result["alerts_lag_s"] = settled_children_cpu(server.pid)
                result["children_cpu_s"] = alerts_after - alerts_before
            result["peak_rss_mib"] = peak_rss_mib(server.pid)
            result["children_rss_mib"] = children_peak_rss_mib(server.pid)
            wal = db.with_name(db.name + "-wal")
            result["wal_mib"] = wal.stat().st_size / (1 << 20) if wal.exists() else 0.0
        finally:
            server.terminate()
            server.wait(60)
        total = connections * per_conn
        if result["replies"] != total or result["accepted"] != total:
            raise SystemExit(f"expected {total} accepted replies, got {result}")
        result["events_per_s"] = total / result["elapsed_s"]
        return result


def baseline(events: int, plain: bool = True) -> dict[str, float]:
    """The bare minimum per event, in a tight loop with no sockets, batches of 5,000.

    "pydantic": WireEvent.model_validate_json + event_hash + insert_rows, the plain way.
    "ingest": the listener's own parse_row (msgspec fast path) + insert_rows (the floor of
    issue 17: a plain batched INSERT OR IGNORE, one statement per row).
    "fresh": parse_row + insert_fresh_rows, the insert the listener itself uses (on SQLite the
    batch as JSON in one statement): the same loop with today's faster insert.
    """
    sys.path.insert(0, str(ROOT))
    from datetime import UTC

    from factory_tui.ingest.protocol import parse_row
    from factory_tui.models import now_us, parse_event, prepare_row
    from factory_tui.storage import SqliteStore

    lines = [event_line(n) for n in range(events)]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ingest-base-") as tmp:

        def pydantic_row(line: bytes, received: int) -> NewEventRow:
            return prepare_row(parse_event(line, UTC), received)

        def ingest_row(line: bytes, received: int) -> NewEventRow:
            return parse_row(line, UTC, received)

        parsers: list[tuple[str, Callable[[bytes, int], NewEventRow]]] = [
            ("pydantic", pydantic_row),
            ("ingest", ingest_row),
            ("fresh", ingest_row),
        ]
        if not plain:
            parsers = parsers[1:]
        for name, parse in parsers:
            if name != "fresh":
                start = time.perf_counter()
                for line in lines:
                    parse(line, 0)
                out[f"{name}_parse"] = events / (time.perf_counter() - start)
            store = SqliteStore.open(Path(tmp) / f"{name}.db")
            insert = store.insert_fresh_rows if name == "fresh" else store.insert_rows
            start = time.perf_counter()
            for first in range(0, events, 5_000):
                received = now_us()
                insert([parse(line, received) for line in lines[first : first + 5_000]])
            out[f"{name}_total"] = events / (time.perf_counter() - start)
            store.close()
    return out


def alerts_ratio(cases: list[tuple[int, int]], rounds: int) -> None:
    """serve's ingest with its alert tick (the default) against `--no-alerts`, best of
    `rounds` each, interleaved per round (this box's load drifts between runs). Events are
    stamped within the last hour, so every tick folds them into the window it evaluates."""
    from datetime import UTC, datetime, timedelta

    hour = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:")
    modes = {"alerts off": ("--no-alerts",), "alerts on": ("--alerts",)}
    for connections, per_conn in cases:
        best = dict.fromkeys(modes, 0.0)
        rss = dict.fromkeys(modes, 0.0)
        wal = dict.fromkeys(modes, 0.0)
        child_rss = 0.0
        cpu: dict[str, list[float]] = {"serve": [], "alerts": [], "lag": []}
        for _ in range(rounds):
            for mode, extra in modes.items():
                result = run_case(connections, per_conn, None, extra, hour)
                best[mode] = max(best[mode], result["events_per_s"])
                rss[mode] = max(rss[mode], result["peak_rss_mib"])
                wal[mode] = max(wal[mode], result["wal_mib"])
                if mode == "alerts on":
                    child_rss = max(child_rss, result["children_rss_mib"])
                    cpu["serve"].append(result["cpu_s"])
                    cpu["alerts"].append(result["children_cpu_s"])
                    cpu["lag"].append(result["alerts_lag_s"])
        off, on = best["alerts off"], best["alerts on"]
        print(
            f"serve, {connections} connection(s) x {per_conn:,} events, best of {rounds}: "
            f"alerts on {on:,.0f} events/s (peak RSS {rss['alerts on']:.0f} MiB, its alerts "
            f"process {child_rss:.0f} MiB, WAL {wal['alerts on']:.0f} MiB), alerts off "
            f"{off:,.0f} events/s (peak RSS {rss['alerts off']:.0f} MiB, WAL "
            f"{wal['alerts off']:.0f} MiB): ratio on/off {on / off:.2f}"
        )
        serve_cpu, alerts_cpu = min(cpu["serve"]), min(cpu["alerts"])
        print(
            f"  CPU with alerts on (least of {rounds}): serve {serve_cpu:.1f} s storing them, its "
            f"alerts process {alerts_cpu:.1f} s folding them in ({alerts_cpu / serve_cpu:.2f} of "
            f"serve's); alerts caught up {min(cpu['lag']):.0f}-{max(cpu['lag']):.0f} s after "
            "the last reply"
        )


def bare_insert(events: int, fresh: bool = False) -> float:
    """Rows/s of insert_rows alone (`fresh`: insert_fresh_rows, the listener's), the rows
    parsed beforehand: the ceiling of any ingest."""
    sys.path.insert(0, str(ROOT))
    from datetime import UTC

    from factory_tui.ingest.protocol import parse_row
    from factory_tui.models import now_us
    from factory_tui.storage import SqliteStore

    received = now_us()
    rows = [parse_row(event_line(n), UTC, received) for n in range(events)]
    with tempfile.TemporaryDirectory(prefix="ingest-bare-") as tmp:
        store = SqliteStore.open(Path(tmp) / "bare.db")
        insert = store.insert_fresh_rows if fresh else store.insert_rows
        start = time.perf_counter()
        for first in range(0, events, 5_000):
            insert(rows[first : first + 5_000])
        elapsed = time.perf_counter() - start
        store.close()
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--per-conn", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--hour", default=HOUR_PREFIX, help=argparse.SUPPRESS)
    parser.add_argument(
        "--alerts",
        action="store_true",
        help="only compare serve's ingest with and without its alert tick (ratio)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of --alerts (best of) and of --before"
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="CHECKOUT",
        help="also run serve from this checkout (e.g. a `git worktree` of an older commit), "
        "alternating with this one, against the same yardsticks",
    )
    parser.add_argument("--echo-server", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smaller cases")
    parser.add_argument(
        "--transports",
        action="store_true",
        help="also compare asyncio.Protocol with start_server streams (no validation, no DB)",
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of serve per case here")
    parser.add_argument(
        "--case",
        action="append",
        metavar="CxN",
        help="connections x events per connection, e.g. 4x100000 (repeatable)",
    )
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    if args.echo_server:
        asyncio.run(_echo_server(args.echo_server))
        return
    cases = QUICK_CASES if args.quick else DEFAULT_CASES
    if args.case:
        cases = [tuple(int(part) for part in case.split("x")) for case in args.case]  # type: ignore[misc]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.alerts:
        print(f"serve with and without alerts on {os.cpu_count()} cores")
        alerts_ratio(cases, args.rounds)
        return
    print(f"ingest benchmark on {os.cpu_count()} cores (python {sys.version.split()[0]})")
    base_events = 20_000 if args.quick else 100_000
    base = baseline(base_events)
    for name in ("pydantic", "ingest"):
        print(
            f"baseline ({name}), no sockets, {base_events:,} events: parse+validate+hash+insert "
            f"{base[f'{name}_total']:,.0f} events/s (parse+validate+hash alone "
            f"{base[f'{name}_parse']:,.0f}/s)"
        )
    print(
        f"baseline (ingest, insert_fresh_rows as the listener stores), no sockets: "
        f"{base['fresh_total']:,.0f} events/s"
    )
    bare, bare_fresh = bare_insert(base_events), bare_insert(base_events, fresh=True)
    print(
        f"SQLite's bare insert (rows built beforehand, batches of 5,000, INSERT OR IGNORE): "
        f"{bare:,.0f} rows/s (insert_fresh_rows, the listener's: {bare_fresh:,.0f} rows/s)"
    )
    if args.transports:
        transports(4, 25_000 if args.quick else 100_000)
    floor, fresh = base["ingest_total"], base["fresh_total"]
    # --before: each case runs on that checkout and on this one in turn, `--rounds` times.
    trees: list[tuple[str, Path | None]] = [("", None)]
    if args.before is not None:
        trees = [(f"before ({args.before}) ", args.before), ("after ", None)] * args.rounds
    for connections, per_conn in cases:
        for label, tree in trees:
            load = os.getloadavg()[0]
            # serve as a user runs it: its defaults, so its alerts process folds the rows in.
            result = run_case(connections, per_conn, args.profile, tree=tree)
            rate = result["events_per_s"]
            # The shared box's load drifts: the serial loop runs again right after each case,
            # and the case is a ratio of the loop's mean over the runs just before and after it.
            again = baseline(base_events, plain=False)
            after, fresh_after = again["ingest_total"], again["fresh_total"]
            print(
                f"{label}serve, {connections} connection(s) x {per_conn:,} events: "
                f"{rate:,.0f} events/s end to end "
                f"({result['elapsed_s']:.2f} s, every reply read, load {load:.1f} before), "
                f"server peak RSS {result['peak_rss_mib']:.0f} MiB, "
                f"WAL {result['wal_mib']:.0f} MiB; "
                f"{rate / ((floor + after) / 2):.2f}x the serial loop (target 1.0x; the loop "
                f"{floor:,.0f} before and {after:,.0f} after), "
                f"{rate / ((fresh + fresh_after) / 2):.2f}x the loop storing as the listener "
                f"does, {rate / bare:.2f}x SQLite's bare insert "
                f"({rate / bare_fresh:.2f}x its fresh one)"
            )
            print(
                f"  CPU: serve {result['cpu_s']:.1f} s, its alerts process (nice 10) "
                f"{result['children_cpu_s']:.1f} s folding the rows in, caught up "
                f"{result['alerts_lag_s']:.0f} s after the last reply"
            )
            floor, fresh = after, fresh_after


if __name__ == "__main__":
    main()
