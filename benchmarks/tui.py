"""Console cost with 200 simulated workers: tick time, first paint, idle and live CPU.

Prints figures; asserts nothing (the machine is shared and noisy, timings are not tests).

1. Tick (headless `run_test`, 120x40 and 200x60): a database holding the simulated shift so
   far (200 workers, 4.5 h); each tick, one more second of camera events at 10x is stored,
   the clock moves 10 s, and the app reads, folds, snapshots and paints. Reported: the worker
   thread's part (read + engine + snapshot + health), the UI thread's hand-over to the widgets,
   and the whole tick including the paint; tiles drawn per tick.
2. First paint: `factory-tui --config ... --db ...` on a pseudo-terminal; time from spawn to the
   first frame, and to the first frame with live figures (the `LIVE` marker).
3. CPU of the console process (psutil, user + system) over 10 s: idle (no new events), and live
   (the same console with `--simulate` feeding 200 cameras in real time).
4. Bytes to the terminal: `factory-tui demo` (6 workers, then 200) on a 120x40 pty; after the
   first live figures and a 10 s warm-up, every byte it writes for 30 s is counted, beside
   `top -d 1` on the same pty size in the same run (the yardstick). Also how many times each
   screen row was written, and how much of the output is colour codes (SGR). Then the 6-worker
   demo's other views for 15 s each: stations, event log, alerts and a worker's detail.

Run: `.venv/bin/python benchmarks/tui.py` (about three minutes); `--only ticks|start|cpu|bytes`
runs one part. `--against DIR` runs the tick part for another checkout (`git worktree add
/tmp/base HEAD` before a change) and for this one, twice each, alternating, each in a process
of its own: a before/after in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psutil
from rich.color import ColorSystem
from rich.console import Console
from textual._compositor import ChopsUpdate, LayoutUpdate

ROOT = Path(__file__).resolve().parent.parent
# After PYTHONPATH: `PYTHONPATH=/tmp/base .venv/bin/python benchmarks/tui.py` measures another
# tree (a worktree of an earlier commit) with this same script, for a before/after.
sys.path.append(str(ROOT))

from factory_tui.config import Settings, demo_data  # noqa: E402
from factory_tui.console.app import make_app  # noqa: E402
from factory_tui.console.health import fixed_health  # noqa: E402
from factory_tui.console.terminal_frames import TerminalShadow  # noqa: E402
from factory_tui.ingest.simulator import CameraFleet, extend_roster  # noqa: E402
from factory_tui.models import from_utc_us, now_us, parse_event, to_utc_us  # noqa: E402
from factory_tui.records import HealthReading  # noqa: E402
from factory_tui.storage import SqliteStore  # noqa: E402
from tests.tui.terminal import FACTORY_TUI, Terminal  # noqa: E402

WORKERS = 200
SHIFT_START = datetime(2025, 3, 4, 6, 0, tzinfo=UTC)
AT = SHIFT_START + timedelta(hours=4, minutes=30)
TICKS = 60
SPEED = 10.0
CPU_SECONDS = 10.0


def settings_for(db: Path) -> Settings:
    """Demo shifts and stations, 200 workers, this database, a free port."""
    data = demo_data()
    base = Settings.model_validate(data)
    roster = extend_roster(base.roster_workers(), WORKERS, "W")
    data["workers"] = [{"id": entry.id, "name": entry.name} for entry in roster]
    data["store"] = {"path": str(db)}
    data["ingest"] = {"port": 0}
    data["metrics"] = {"tick_s": 1.0}
    return Settings.model_validate(data)


def config_toml(settings: Settings) -> str:
    """The same roster as a config file, for the command-line runs."""
    lines = ["[metrics]\ntick_s = 1.0\n"]
    for shift in settings.shifts:
        lines.append(
            f'[[shifts]]\nname = "{shift.name}"\nstart = "{shift.start:%H:%M}"\n'
            f'end = "{shift.end:%H:%M}"\n'
        )
    for kind, entries in (
        ("workers", settings.roster_workers()),
        ("workstations", settings.roster_workstations()),
    ):
        for entry in entries:
            lines.append(f'[[{kind}]]\nid = "{entry.id}"\nname = "{entry.name}"\n')
    return "\n".join(lines)


def fill(db: Path, settings: Settings, fleet: CameraFleet, since_us: int, until_us: int) -> int:
    """Store the fleet's events from `since_us` up to `until_us`."""
    lines = fleet.events_between(since_us, until_us)
    with SqliteStore.open(db) as store:
        store.upsert_roster(settings.roster_workers(), settings.roster_workstations())
        for start in range(0, len(lines), 20_000):
            store.insert_batch([parse_event(line) for line in lines[start : start + 20_000]])
        return store.count_events()


def describe(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"  {label:<34} median {statistics.median(ordered) * 1000:7.1f} ms   "
        f"p95 {p95 * 1000:7.1f} ms   max {ordered[-1] * 1000:7.1f} ms"
    )


async def measure_ticks(db: Path, settings: Settings, size: tuple[int, int]) -> None:
    fleet = CameraFleet(settings.roster_workers(), settings.roster_workstations(), seed=7)
    now = [to_utc_us(AT)]
    app = make_app(
        settings,
        clock=lambda: now[0],
        health=fixed_health(HealthReading(10.0, 40.0, 90_000_000)),
        animations=False,
    )
    compute: list[float] = []
    apply: list[float] = []
    whole: list[float] = []
    drawn: list[int] = []
    rows: list[int] = []
    ui_cpu: list[float] = []
    frames: list[ChopsUpdate | LayoutUpdate] = []
    encoding = EncodeCost(size[0])
    # Where a tick's time goes: stamps (perf_counter) of its stages, and the worker's own CPU.
    stages: dict[str, list[float]] = {
        name: [] for name in ("to_worker", "worker_cpu", "ui_meanwhile", "to_ui", "to_paint")
    }
    # The UI thread's CPU clock, read from the worker thread: what the UI thread runs while the
    # worker computes (each switch between them waits for the GIL).
    ui_clock = time.pthread_getcpuclockid(threading.get_ident())
    worker: dict[str, float] = {}
    handled: list[float] = []
    painted = asyncio.Event()
    paints: list[float] = []
    display = app._display

    def timed_display(screen: Any, renderable: Any) -> None:
        # The compositor renders the changed regions (our render_line) while building
        # `renderable`; the paint is done when the driver has been written to.
        display(screen, renderable)
        paints.append(time.perf_counter())
        painted.set()
        if isinstance(renderable, ChopsUpdate | LayoutUpdate):
            frames.append(renderable)

    app._display = timed_display  # type: ignore[method-assign]
    finish_tick = app._finish_tick

    def timed_finish(sequence: int, error: str | None) -> None:
        handled.append(time.perf_counter())  # the end of the UI thread's hand-down
        finish_tick(sequence, error)

    app._finish_tick = timed_finish  # type: ignore[method-assign]
    # Full collections (generation 2) stop both threads: how many fell in the measured ticks.
    full_collections: list[float] = []
    collecting: dict[str, float] = {}

    def watch_collections(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2 and collecting.get("on"):
            if phase == "start":
                collecting["start"] = time.perf_counter()
            elif "start" in collecting:
                full_collections.append(time.perf_counter() - collecting.pop("start"))

    async def paint_after(moment: float) -> float:
        # Waits on an event the paint sets: polling would wake the UI thread and take the GIL
        # from the worker thread while it computes.
        for _ in range(100):  # bounded: 100 paints
            later = [stamp for stamp in paints if stamp > moment]
            if later:
                return later[0]
            painted.clear()
            await asyncio.wait_for(painted.wait(), timeout=10)
        raise TimeoutError("no paint after the tick")

    async with app.run_test(size=size):
        started = time.perf_counter()
        await app.tick_now()
        first = await paint_after(handled[-1]) - started
        assert app.snapshot is not None
        first_rows = app.snapshot.total_events
        assert app.listener is not None
        pipeline = app.pipeline
        assert pipeline is not None
        pipeline_tick = pipeline.tick

        def timed_tick(**options: Any) -> Any:
            worker["start"], cpu = time.perf_counter(), time.thread_time()
            ui_cpu = time.clock_gettime(ui_clock)
            result = pipeline_tick(**options)
            worker["cpu"], worker["end"] = time.thread_time() - cpu, time.perf_counter()
            worker["ui_meanwhile"] = time.clock_gettime(ui_clock) - ui_cpu
            return result

        pipeline.tick = timed_tick  # type: ignore[method-assign]
        gc.callbacks.append(watch_collections)
        for _ in range(TICKS):
            step = int(SPEED * 1_000_000)
            lines = fleet.events_between(now[0], now[0] + step)
            if lines:
                await app.listener.submit(lines)
            now[0] += step
            before = app.grid.tiles_drawn
            started = time.perf_counter()
            cpu_started = time.thread_time()
            collecting["on"] = 1
            await app.tick_now()
            done = handled[-1]
            paint = await paint_after(done)
            collecting["on"] = 0
            whole.append(paint - started)
            # CPU of the UI thread alone: what the load of a shared machine does not inflate.
            ui_cpu.append(time.thread_time() - cpu_started)
            timing = app.last_timing
            assert timing is not None
            compute.append(timing.compute_s)
            apply.append(timing.apply_s)
            rows.append(timing.new_rows)
            drawn.append(app.grid.tiles_drawn - before)
            stages["to_worker"].append(worker["start"] - started)
            stages["worker_cpu"].append(worker["cpu"])
            stages["ui_meanwhile"].append(worker["ui_meanwhile"])
            stages["to_ui"].append(done - timing.apply_s - worker["end"])
            stages["to_paint"].append(paint - done)
            encoding.add(frames)  # between ticks, outside the measured stretch
        collecting.clear()
        gc.callbacks.remove(watch_collections)
        columns = app.grid.columns
        visible = columns * (app.grid.scrollable_content_region.height // 6 + 1)
    print(f"\nTick at {size[0]}x{size[1]} ({columns} columns, ~{visible} tiles visible):")
    print(f"  start to first figures ({first_rows:,} rows)  {first * 1000:7.1f} ms")
    print(
        f"  per tick: {statistics.mean(rows):.0f} new rows, "
        f"{statistics.mean(drawn):.1f} tiles drawn (of {WORKERS})"
    )
    print(describe("request to painted (whole tick)", whole))
    print("  of which, in order:")
    print(describe("  request to worker thread start", stages["to_worker"]))
    print(describe("  worker thread (read+engine+snap)", compute))
    print(describe("    its CPU", stages["worker_cpu"]))
    print(describe("    UI thread CPU meanwhile", stages["ui_meanwhile"]))
    print(describe("  worker done to UI thread taking it", stages["to_ui"]))
    print(describe("  UI thread (hand Snapshot down)", apply))
    print(describe("  handed down to painted", stages["to_paint"]))
    print(describe("UI thread CPU, request to painted", ui_cpu))
    longest = max(full_collections, default=0.0)
    print(
        f"  {'full GC passes in those ticks':<34} {len(full_collections)}, "
        f"longest {longest * 1000:.1f} ms"
    )
    encoding.add(frames)
    encoding.print()


class EncodeCost:
    """What writing the run's frames costs (headless, the tick above wrote none): Textual's own
    encoding beside TerminalShadow's (only changed cells, colour as differences). Frames are
    encoded between ticks and dropped: kept to the end, their strips made the full GC passes
    of the ticks longer with every tick."""

    def __init__(self, width: int) -> None:
        self.console = Console(color_system="256", force_terminal=True, width=width)
        self.shadow = TerminalShadow()
        self.plain: list[float] = []
        self.ours: list[float] = []
        self.plain_bytes = self.our_bytes = 0

    def add(self, frames: list[ChopsUpdate | LayoutUpdate]) -> None:
        for frame in frames:
            started = time.thread_time()
            text = frame.render_segments(self.console)
            self.plain.append(time.thread_time() - started)
            started = time.thread_time()
            encoded = self.shadow.encode(frame, ColorSystem.EIGHT_BIT)
            self.ours.append(time.thread_time() - started)
            self.plain_bytes += len(text.encode())
            self.our_bytes += len(encoded.encode())
        frames.clear()

    def print(self) -> None:
        print(describe("frame encoding, Textual's", self.plain))
        print(describe("frame encoding, TerminalShadow", self.ours))
        print(f"  {'bytes of those frames':<34} {self.plain_bytes:,} -> {self.our_bytes:,}")


def first_paint(workdir: Path, runs: int = 3) -> None:
    frame: list[float] = []
    live: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        terminal = Terminal(
            [FACTORY_TUI, "--config", "bench.toml", "--db", "bench.db", "--port", "0"],
            workdir,
            size=(120, 40),
        )
        try:
            assert terminal.read_until(b"factory-tui"), terminal.output[-500:]
            frame.append(time.perf_counter() - started)
            assert terminal.read_until(b"LIVE", timeout=60), terminal.output[-500:]
            live.append(time.perf_counter() - started)
            terminal.send(b"q")
            terminal.drain()
            terminal.wait()
        finally:
            terminal.close()
    print(f"\nStart-up on a pty, 120x40, {runs} runs (spawn of the CLI process to ...):")
    print(describe("first frame (title bar drawn)", frame))
    print(describe("first live figures (LIVE)", live))


def cpu(workdir: Path, extra: list[str], label: str, settle_s: float) -> None:
    terminal = Terminal(
        [FACTORY_TUI, "--config", "bench.toml", "--db", "bench.db", "--port", "0", *extra],
        workdir,
        size=(120, 40),
    )
    try:
        assert terminal.read_until(b"LIVE", timeout=60), terminal.output[-500:]
        process = psutil.Process(terminal.pid)
        # Keep reading so the console never blocks on a full terminal buffer.
        terminal.read_until(b"\0never\0", timeout=settle_s)
        before = process.cpu_times()
        started = time.perf_counter()
        terminal.read_until(b"\0never\0", timeout=CPU_SECONDS)
        after = process.cpu_times()
        elapsed = time.perf_counter() - started
        used = (after.user - before.user) + (after.system - before.system)
        rss = process.memory_info().rss / 1e6
        print(
            f"  {label:<34} {100 * used / elapsed:5.1f} % of one core over {elapsed:.0f} s, "
            f"RSS {rss:.0f} MB"
        )
        terminal.send(b"q")
        terminal.drain()
        terminal.wait()
    finally:
        terminal.close()


BYTES_SIZE: Final = (120, 40)
BYTES_WARM_S: Final = 10.0
BYTES_S: Final = 30.0
_MOVE = re.compile(rb"\x1b\[(\d+);\d+H")
_ESCAPE = re.compile(rb"\x1b(\[[0-9;?<>=$]*[a-zA-Z~]|\][^\x07\x1b]*(\x07|\x1b\\))")
_SGR = re.compile(rb"\x1b\[[0-9;]*m")


def count_bytes(args: list[str], workdir: Path, ready: bytes | None) -> bytes:
    """What `args` writes to a 120x40 pty over BYTES_S, after `ready` and a warm-up."""
    terminal = Terminal(args, workdir, size=BYTES_SIZE)
    try:
        if ready is not None:
            assert terminal.read_until(ready, timeout=120), terminal.output[-500:]
        terminal.read_until(b"\0never\0", timeout=BYTES_WARM_S)
        start = len(terminal.output)
        terminal.read_until(b"\0never\0", timeout=BYTES_S)
        return bytes(terminal.output[start:])
    finally:
        terminal.close()


VIEW_S: Final = 15.0
VIEWS: Final = (("stations (2)", b"2"), ("event log (3)", b"3"), ("alerts (4)", b"4"))
VIEWS_DETAIL: Final = ("worker detail (1, enter)", b"1", b"\r")


def count_view_bytes(args: list[str], workdir: Path) -> list[tuple[str, bytes]]:
    """What `args` writes to a 120x40 pty over VIEW_S on each view after LIVE (3 s to settle
    after each key): the views with tables and the worker detail."""
    terminal = Terminal(args, workdir, size=BYTES_SIZE)
    found: list[tuple[str, bytes]] = []
    try:
        assert terminal.read_until(b"LIVE", timeout=120), terminal.output[-500:]
        terminal.read_until(b"\0never\0", timeout=BYTES_WARM_S)
        for label, *keys in (*VIEWS, VIEWS_DETAIL):
            for key in keys:
                terminal.send(key)
                terminal.read_until(b"\0never\0", timeout=1.5)
            terminal.read_until(b"\0never\0", timeout=3.0)
            start = len(terminal.output)
            terminal.read_until(b"\0never\0", timeout=VIEW_S)
            found.append((label, bytes(terminal.output[start:])))
        return found
    finally:
        terminal.close()


def describe_bytes(label: str, data: bytes, yardstick: float, seconds: float = BYTES_S) -> None:
    rate = len(data) / seconds
    rows: dict[int, int] = {}
    pieces = _MOVE.split(data)  # text, then (row, text) after each cursor move
    for row, text in zip(pieces[1::2], pieces[2::2], strict=True):
        if _ESCAPE.sub(b"", text).strip(b"\r\n"):  # text was written, not just the cursor
            rows[int(row)] = rows.get(int(row), 0) + 1
    sgr = sum(len(code) for code in _SGR.findall(data))
    most = max(rows.values(), default=0)
    print(
        f"  {label:<34} {rate / 1000:6.2f} KB/s = {rate / yardstick:4.2f}x top; "
        f"SGR {100 * sgr / max(1, len(data)):3.0f} %; text on {len(rows)} rows, "
        f"the busiest written {most} times in {seconds:.0f} s"
    )


def terminal_bytes() -> None:
    top = shutil.which("top")
    yardstick = 0.0
    if top is not None:
        with tempfile.TemporaryDirectory() as folder:
            data = count_bytes([top, "-d", "1"], Path(folder), None)
        yardstick = len(data) / BYTES_S
    print(
        f"\nBytes to a {BYTES_SIZE[0]}x{BYTES_SIZE[1]} pty over {BYTES_S:.0f} s after a "
        f"{BYTES_WARM_S:.0f} s warm-up (yardstick: top -d 1, {yardstick / 1000:.2f} KB/s):"
    )
    for workers in (6, 200):
        with tempfile.TemporaryDirectory() as folder:
            args = [FACTORY_TUI, "demo", "--port", "0", "--workers", str(workers)]
            data = count_bytes(args, Path(folder), b"LIVE")
        describe_bytes(f"demo, {workers} workers", data, max(1.0, yardstick))
    with tempfile.TemporaryDirectory() as folder:
        views = count_view_bytes([FACTORY_TUI, "demo", "--port", "0"], Path(folder))
    for label, data in views:
        describe_bytes(f"demo, 6 workers, {label}", data, max(1.0, yardstick), VIEW_S)


def ticks_against(base: Path) -> None:
    """The tick part for `base`'s tree and this one, alternating (the load drifts)."""
    if not (base / "factory_tui" / "__init__.py").is_file():
        raise SystemExit(f"--against {base}: no factory_tui package there")
    for run in (1, 2):
        for label, tree in (("before", base), ("after", ROOT)):
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(f"\n=== {label} ({tree}), run {run}, load {load}", flush=True)
            subprocess.run(
                [sys.executable, __file__, "--only", "ticks"],
                env={**os.environ, "PYTHONPATH": str(tree)},
                check=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("ticks", "start", "cpu", "bytes"))
    parser.add_argument(
        "--against", type=Path, metavar="DIR", help="before/after ticks: DIR's tree, then this"
    )
    arguments = parser.parse_args()
    if arguments.against is not None:
        ticks_against(arguments.against.resolve())
        return
    only = arguments.only
    if only == "bytes":
        terminal_bytes()
        return
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        db = workdir / "morning.db"
        settings = settings_for(db)
        fleet = CameraFleet(settings.roster_workers(), settings.roster_workstations(), seed=7)
        started = time.perf_counter()
        stored = fill(db, settings, fleet, to_utc_us(SHIFT_START), to_utc_us(AT))
        print(
            f"{WORKERS} workers, shift A so far (4h30m): {stored:,} events stored "
            f"in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs, machine shared"
        )
        (workdir / "bench.toml").write_text(config_toml(settings), encoding="utf-8")
        for size in ((120, 40), (200, 60)) if only in (None, "ticks") else ():
            # Each run starts from the same stored morning (the previous run added events).
            copy = workdir / f"tick-{size[0]}.db"
            shutil.copy(db, copy)
            asyncio.run(measure_ticks(copy, settings_for(copy), size))
        if only == "ticks":
            return
        # The command-line runs use the wall clock: give them the running shift so far.
        live_db = workdir / "bench.db"
        now = now_us()
        shift_start = to_utc_us(settings.current_window(from_utc_us(now))[0])
        stored = fill(live_db, settings, fleet, shift_start, now)
        print(f"\nDatabase for the command-line runs: the running shift so far, {stored:,} events")
        if only in (None, "start"):
            first_paint(workdir)
        if only in (None, "cpu"):
            print(f"\nConsole process CPU ({CPU_SECONDS:.0f} s after settling; 1 Hz tick):")
            cpu(workdir, [], "idle (no new events)", settle_s=3.0)
            cpu(workdir, ["--simulate"], "live (--simulate, 200 cameras)", settle_s=15.0)
    if only in (None, "bytes"):
        terminal_bytes()


if __name__ == "__main__":
    main()
