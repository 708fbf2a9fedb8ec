"""What browser tabs cost: `factory-tui demo --web` with 20 tabs open in headless Chromium.

Prints figures; asserts nothing (the machine is shared and noisy, timings are not tests).

The demo runs as `demo --web` does for a person: the simulator (at --speed 10), the listener and
the web server in one process, and one `factory-tui demo --viewer` process per tab. Twenty tabs
are opened one after the other, each waited for until its console shows LIVE; after a short
settle, every process's CPU time (user + system) is read over 20 s of live updates, and its
memory: RSS, and USS (the memory only that process holds, what one more tab really adds).
Chromium's own cost is the browser's, on the machine that shows the page, and is left out.

Run: `.venv/bin/python benchmarks/web.py [--tabs 20] [--workers 6]` (about a minute); needs
Chromium (`apt-get install chromium`) and the dev extra (Playwright).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import ScreenText, launch  # noqa: E402

SETTLE_S = 5.0
MEASURE_S = 20.0
MB = 1024 * 1024


def viewer_processes(server: psutil.Process) -> list[psutil.Process]:
    """The tabs' viewers (not the shells textual-serve starts them through)."""
    return [
        child
        for child in server.children(recursive=True)
        if "--viewer" in child.cmdline() and Path(child.cmdline()[0]).name != "sh"
    ]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=6)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="factory-web-bench-"))
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "factory_tui",
            "demo",
            "--web",
            "--web-port",
            "0",
            "--port",
            "0",
            "--workers",
            str(options.workers),
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert demo.stdout is not None
    found = re.search(r"http://\S+", demo.stdout.readline())
    assert found, "demo --web printed no address"
    url = found.group(0)
    server = psutil.Process(demo.pid)
    browsers = launch()
    browser = next(browsers)
    try:
        started = time.perf_counter()
        pages = []
        for _ in range(options.tabs):
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            screen = ScreenText(page)
            with page.expect_websocket():
                page.goto(url)
            screen.wait_for("LIVE", "Ana Silva", timeout_s=120)
            pages.append(page)
            print(f"  tab {len(pages)} LIVE at {time.perf_counter() - started:.1f} s", flush=True)
        all_live_s = time.perf_counter() - started
        viewers = viewer_processes(server)
        time.sleep(SETTLE_S)
        before = {process.pid: cpu_seconds(process) for process in [server, *viewers]}
        clock = time.perf_counter()
        time.sleep(MEASURE_S)
        elapsed = time.perf_counter() - clock
        after = {process.pid: cpu_seconds(process) for process in [server, *viewers]}
        cpu = {pid: (after[pid] - before[pid]) / elapsed * 100 for pid in before}
        memory = {p.pid: p.memory_full_info() for p in [server, *viewers]}
        closing = time.perf_counter()
        for page in pages:
            page.close()
        _, alive = psutil.wait_procs(viewers, timeout=60)
        closed_s = time.perf_counter() - closing
    finally:
        demo.send_signal(signal.SIGINT)  # first: an interrupted browser must not leave it running
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
        with contextlib.suppress(Exception):
            next(browsers, None)

    tab_cpu = [cpu[p.pid] for p in viewers]
    tab_rss = [memory[p.pid].rss / MB for p in viewers]
    tab_uss = [memory[p.pid].uss / MB for p in viewers]
    print(
        f"factory-tui web, {len(viewers)} tabs on demo --web ({options.workers} workers, "
        f"simulated at 10x), {psutil.cpu_count()} cores"
    )
    print(f"  all {options.tabs} tabs LIVE after {all_live_s:.1f} s (opened one after another)")
    print(
        f"  per tab (its viewer process): CPU {statistics.mean(tab_cpu):.1f} % of a core "
        f"(mean; max {max(tab_cpu):.1f} %), RSS {statistics.median(tab_rss):.0f} MB "
        f"(median), USS {statistics.median(tab_uss):.0f} MB (median)"
    )
    print(
        f"  all tabs: CPU {sum(tab_cpu):.0f} % of a core, RSS {sum(tab_rss):.0f} MB, "
        f"USS {sum(tab_uss):.0f} MB"
    )
    print(
        f"  the demo process (simulator, listener, alerts, web server): CPU "
        f"{cpu[server.pid]:.1f} %, RSS {memory[server.pid].rss / MB:.0f} MB"
    )
    print(
        f"  closing the tabs: {len(viewers) - len(alive)} of {len(viewers)} viewers ended "
        f"within {closed_s:.1f} s"
    )


if __name__ == "__main__":
    main()
