"""HTTP ingest throughput (`POST /api/events`) beside the TCP port as the yardstick.

One `factory-tui serve --http-port 0` subprocess per case on a fresh temp database; this process
is the load: C connections, each posting JSON arrays of B events on one keep-alive connection
and reading every response (or, for the yardstick, streaming the same events as JSON lines on
C TCP connections and reading every reply). Prints events/s for each case and its ratio to
the TCP figure of the same run, so the figures compare on a noisy machine.

    python benchmarks/http_ingest.py           # about half a minute on 2 cores
    python benchmarks/http_ingest.py --quick   # smaller cases
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import event_line as shared_event_line  # noqa: E402  (benchmarks/ingest.py)

CONNECTIONS = 4
"""Default client connections (`--connections`); each waits for its response before the next
request, as HTTP clients do, while a TCP camera streams lines without waiting."""


def event_line(n: int) -> bytes:
    """A valid wire event, unique for every n (ids are auto-registered)."""
    return shared_event_line(n, workers=50)


class Serve:
    """`factory-tui serve` with both ports, on a fresh database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: asyncio.subprocess.Process | None = None
        self.tcp_port = 0
        self.http_port = 0

    async def __aenter__(self) -> Serve:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "factory_tui",
            "serve",
            "--db",
            str(self.folder / "bench.db"),
            "--port",
            "0",
            "--http-port",
            "0",
            "--auto-register",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=self.folder,
            env=env,
        )
        assert self.process.stdout is not None
        first = (await asyncio.wait_for(self.process.stdout.readline(), 60)).decode()
        second = (await asyncio.wait_for(self.process.stdout.readline(), 60)).decode()
        self.tcp_port = int(first.strip().rsplit(":", 1)[1])
        self.http_port = int(second.strip().rsplit(":", 1)[1].split("/", 1)[0])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        await self.process.wait()


async def tcp_connection(port: int, lines: list[bytes]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(b"\n".join(lines) + b"\n")
    await writer.drain()
    accepted = 0
    for _ in lines:
        reply = await reader.readline()
        accepted += reply == b'{"status":"accepted"}\n'
    writer.close()
    return accepted


async def http_connection(port: int, lines: list[bytes], batch: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    accepted = 0
    for start in range(0, len(lines), batch):
        body = b"[" + b",".join(lines[start : start + batch]) + b"]"
        writer.write(
            b"POST /api/events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        accepted += json.loads(await reader.readexactly(length))["accepted"]
    writer.close()
    return accepted


async def run_case(folder: Path, total: int, batch: int | None, connections: int) -> float:
    """Events/s of one case (batch None: the TCP yardstick); every event must be accepted."""
    per = total // connections
    shares = [[event_line(c * per + n) for n in range(per)] for c in range(connections)]
    async with Serve(folder) as serve:
        started = time.perf_counter()
        if batch is None:
            counts = await asyncio.gather(*(tcp_connection(serve.tcp_port, s) for s in shares))
        else:
            counts = await asyncio.gather(
                *(http_connection(serve.http_port, s, batch) for s in shares)
            )
        elapsed = time.perf_counter() - started
    assert sum(counts) == per * connections, (sum(counts), per * connections)
    return per * connections / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller cases")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="client connections")
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    connections = args.connections
    cases: list[tuple[str, int, int | None]] = [
        ("TCP JSON lines (yardstick)", 80_000 // scale, None),
        ("HTTP, arrays of 1000", 80_000 // scale, 1000),
        ("HTTP, arrays of 100", 40_000 // scale, 100),
        ("HTTP, one event per POST", 100 * connections // scale, 1),
    ]
    print(f"HTTP ingest: {connections} keep-alive connections, serve in its own process")
    yardstick = 0.0
    for number, (name, total, batch) in enumerate(cases):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / f"case{number}"
            folder.mkdir()
            rate = await run_case(folder, total, batch, connections)
        if batch is None:
            yardstick = rate
        print(
            f"  {name:<30} {total:>7,} events  {rate:>9,.0f} events/s  {rate / yardstick:5.2f}x TCP"
        )


if __name__ == "__main__":
    asyncio.run(main())
