"""Ingest under floods: one-way shippers, tiny-line floods, and what a line costs in memory.

Each case runs `factory-tui serve` as its own process on a fresh temp database and reads its
memory from /proc (VmRSS before, VmHWM after):

- one-way: N events streamed in one connection by a peer that never reads a reply, to the
  one-way port (`socat -u`, as a log shipper would) and to the ordinary port (a raw socket; the
  listener finds it one-way), beside the yardstick measured in the same run: the same N events
  over one connection that reads every reply. A camera beside the shipper sends an event every
  0.1 s; its slowest reply is printed.
- flood: 1 and 8 clients sending `x\\n` lines without reading: serve's peak RSS growth, how long
  a camera connecting during the flood waits for its 50 replies, and how long SIGTERM takes.
- cost: what a pending line costs in Python objects (tracemalloc), queued and while its batch
  commits: the figure behind `connection.LINE_OVERHEAD_BYTES`.

    python benchmarks/flood.py              # everything, a million one-way events (a few minutes)
    python benchmarks/flood.py --quick      # 100,000 one-way events
    python benchmarks/flood.py --cost       # the per-line cost only
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import event_line, run_client  # noqa: E402  (benchmarks/ingest.py)

SOCAT = shutil.which("socat")


# --- serve as a child process -----------------------------------------------------------------


class Serve:
    """`factory-tui serve` on a fresh database, with its ports and memory figures."""

    def __init__(self, db: Path, one_way_port: bool = False) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
        if one_way_port:
            env["FACTORY_TUI_INGEST_ONE_WAY_PORT"] = "0"
        command = [sys.executable, "-m", "factory_tui", "serve", "--port", "0"]
        command += ["--db", str(db), "--auto-register"]
        self.db = db
        self.process = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=db.parent
        )
        self.port = self._port_in_log(rb"listening on \S+:(\d+)")
        self.one_way_port = (
            self._port_in_log(rb"one-way port .* on \S+:(\d+)") if one_way_port else 0
        )
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._keep_log, daemon=True)
        self._reader.start()
        self.rss_before_kib = self.memory_kib("VmRSS")

    def _port_in_log(self, pattern: bytes) -> int:
        assert self.process.stderr is not None
        for _ in range(50):
            line = self.process.stderr.readline()
            found = re.search(pattern, line)
            if found:
                return int(found.group(1))
        self.process.kill()
        raise SystemExit(f"serve never logged {pattern!r}")

    def _keep_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    def memory_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise SystemExit(f"no {field} for serve")

    def growth_mib(self) -> float:
        """Peak RSS now over RSS when it had started."""
        return (self.memory_kib("VmHWM") - self.rss_before_kib) / 1024

    def stored(self) -> int:
        from factory_tui.storage import SqliteStore

        with SqliteStore.open(self.db, read_only=True) as store:
            return store.count_events()

    def wait_stored(self, count: int, timeout_s: float = 600.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.stored() < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {self.stored()} of {count} events stored")
            time.sleep(0.05)

    def terminate(self) -> float:
        """SIGTERM; seconds until it exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(120)
        self._reader.join(10)
        return time.monotonic() - started


class Camera(threading.Thread):
    """A camera beside the flood: one event every 0.1 s, each reply read; the slowest kept."""

    def __init__(self, port: int, first: int) -> None:
        super().__init__(daemon=True)
        self.port, self.first = port, first
        self.sent = 0
        self.slowest_s = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            replies = sock.makefile("rb")
            while not self.stop.is_set():
                started = time.monotonic()
                sock.sendall(event_line(self.first + self.sent) + b"\n")
                if replies.readline() != b'{"status":"accepted"}\n':
                    raise SystemExit("the camera's event was not accepted")
                self.sent += 1
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                self.stop.wait(0.1)


# --- one-way shippers --------------------------------------------------------------------------


def write_only(serve: Serve, payload: bytes, events: int) -> None:
    """A raw socket that sends everything and never reads, open until all is stored.

    Like rsyslog's connection, it stays open: closing a socket with unread replies in it
    resets the connection, and TCP then discards what it had not sent yet (the reason for
    the one-way port).
    """
    with socket.create_connection(("127.0.0.1", serve.port)) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        serve.wait_stored(events)


def one_way(events: int) -> None:
    payload = b"".join(event_line(n) + b"\n" for n in range(events))
    with tempfile.TemporaryDirectory(prefix="flood-bench-") as tmp:
        source = Path(tmp) / "events.jsonl"
        source.write_bytes(payload)
        yardstick, yardstick_growth = reading_rate(Path(tmp) / "reading.db", events)
        print(
            f"yardstick: {events:,} events over one connection that reads every reply: "
            f"{yardstick:,.0f} events/s, serve peak RSS +{yardstick_growth:.0f} MiB"
        )
        ways = [("ordinary port, raw socket that never reads (found one-way)", False)]
        if SOCAT is not None:
            ways.insert(0, ("one-way port, socat -u", True))
        else:
            print("one-way port, socat -u: skipped (socat not installed)")
        for index, (label, use_port) in enumerate(ways):
            serve = Serve(Path(tmp) / f"oneway{index}.db", one_way_port=use_port)
            camera = Camera(serve.port, first=10**9)
            camera.start()
            started = time.monotonic()
            if use_port:
                assert SOCAT is not None
                target = f"TCP:127.0.0.1:{serve.one_way_port}"
                subprocess.run([SOCAT, "-u", f"FILE:{source}", target], check=True, timeout=900)
            else:
                write_only(serve, payload, events)
            serve.wait_stored(events + camera.sent)
            elapsed = time.monotonic() - started
            camera.stop.set()
            camera.join(30)
            growth = serve.growth_mib()
            serve.terminate()
            stored = serve.stored()
            one_way_lines = [line for line in serve.log if "one-way" in line and "reads" in line]
            rate = events / elapsed
            print(
                f"{label}: {events:,} events in {elapsed:.1f} s = {rate:,.0f} events/s "
                f"({rate / yardstick:.2f}x the reading connection), stored "
                f"{stored - camera.sent:,}/{events:,}, serve peak RSS +{growth:.0f} MiB; "
                f"camera beside it: {camera.sent} events, slowest reply {camera.slowest_s:.2f} s"
                + ("; found one-way" if one_way_lines else "")
            )


def reading_rate(db: Path, events: int) -> tuple[float, float]:
    """Events/s over one connection that reads every reply, and serve's peak RSS growth."""
    serve = Serve(db)
    try:
        result: dict[str, Any] = run_client(serve.port, 1, events)
        growth = serve.growth_mib()
    finally:
        serve.terminate()
    return events / float(result["elapsed_s"]), growth


# --- tiny-line floods -----------------------------------------------------------------------


def flood(flooders: int, flood_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="flood-bench-") as tmp:
        serve = Serve(Path(tmp) / "flood.db")
        sent = [0] * flooders
        stop = threading.Event()

        def send(index: int) -> None:
            chunk = b"x\n" * 32_768
            try:
                with socket.socket() as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    sock.connect(("127.0.0.1", serve.port))
                    while not stop.is_set():
                        sock.sendall(chunk)
                        sent[index] += len(chunk)
            except OSError:
                pass  # serve stopped under us

        threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(flooders)]
        for thread in threads:
            thread.start()
        time.sleep(flood_s / 2)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", serve.port), timeout=60) as sock:
            sock.sendall(b"".join(event_line(n) + b"\n" for n in range(50)))
            replies = sock.makefile("rb")
            for _ in range(50):
                if replies.readline() != b'{"status":"accepted"}\n':
                    raise SystemExit("the camera's event was not accepted")
        camera_s = time.monotonic() - started
        time.sleep(flood_s / 2)
        growth = serve.growth_mib()
        lines = sum(sent) // 2
        stop_s = serve.terminate()
        stop.set()
        for thread in threads:
            thread.join(30)
        stopped = [line for line in serve.log if "stopped:" in line]
        rejected = re.search(r"rejected (\d+)", stopped[-1]) if stopped else None
        answered = int(rejected.group(1)) if rejected else 0
        print(
            f"{flooders} non-reading client(s) sending x\\n lines for {flood_s:.0f} s: "
            f"{lines:,} lines sent, {answered:,} read and rejected ({answered / flood_s:,.0f}/s); "
            f"serve peak RSS +{growth:.0f} MiB (bound 64); a camera's 50 events answered in "
            f"{camera_s:.2f} s (bound 2); SIGTERM to exit {stop_s:.2f} s (bound 5); "
            f"stored {serve.stored()} of the camera's 50"
        )


# --- what a pending line costs -----------------------------------------------------------------


def line_cost(lines_per_case: int = 50_000) -> None:
    """Bytes per line in Python objects, queued (framed) and while its batch commits."""
    from datetime import UTC

    from factory_tui.ingest.connection import LINE_OVERHEAD_BYTES
    from factory_tui.ingest.protocol import LineFramer
    from factory_tui.ingest.writer import BatchWriter

    cases = {
        "2-byte garbage line (x)": lambda n: b"x",
        "3-byte garbage line (xy)": lambda n: b"xy",
        "an event": event_line,
    }
    for name, make in cases.items():
        data = b"".join(make(n) + b"\n" for n in range(lines_per_case))
        with tempfile.TemporaryDirectory(prefix="flood-cost-") as tmp:
            writer = BatchWriter(Path(tmp) / "cost.db", "crash", UTC, auto_register=True)
            writer.open([], [], "cost", {})
            tracemalloc.start()
            lines = LineFramer(1 << 16).feed(data)
            queued, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            outcome = writer.commit(lines)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            writer.close()
            del outcome
        wire = len(data) / lines_per_case
        print(
            f"cost of {name}: {wire:.0f} B on the wire, {queued / lines_per_case:.0f} B queued, "
            f"+{(peak - queued) / lines_per_case:.0f} B at the peak of its batch's commit "
            f"(LINE_OVERHEAD_BYTES = {LINE_OVERHEAD_BYTES})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 one-way events")
    parser.add_argument("--cost", action="store_true", help="the per-line cost only")
    parser.add_argument("--events", type=int, help="one-way events (default 1,000,000)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    print(f"flood benchmark on {os.cpu_count()} cores (python {sys.version.split()[0]})")
    line_cost()
    if args.cost:
        return
    one_way(args.events or (100_000 if args.quick else 1_000_000))
    for flooders in (1, 8):
        flood(flooders, 4.0 if args.quick else 10.0)


if __name__ == "__main__":
    main()
