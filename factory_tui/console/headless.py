"""The console's alerts without a console: `serve`'s tick, in a child process of its own.

A site box that runs only `serve` must still raise its alerts and fire their actions: nobody
keeps a console open there. `HeadlessAlerts` runs the console's own `TickPipeline` (the same
warm start, engine, pruning, drift tracker and `AlertKeeper`) every `[metrics] tick_s`, with
nothing on top: the view it builds asks for nothing beyond the Snapshot. As in the console
that owns the listener, the keeper writes the alerts table (so a viewer opened later shows
them) and hands each alert raised or cleared to the actions; here each is also logged.

`serve` runs it in a child process of its own (`AlertProcess`): folding every stored row into
the engine costs CPU of the order of storing it, and in the listener's process that CPU came
out of ingest (one interpreter lock: half the ingest rate under a flood, measured by
`benchmarks/ingest.py --alerts`). The child reads the database through its own
connections, as a viewer console would, and is the listener owner's: it starts with `serve`,
stops with it (SIGTERM to both, as systemd sends, or `serve` asking), and stops by itself when
`serve` dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Final

from factory_tui.alert_actions import CLOSE_WAIT_S, AlertEvent
from factory_tui.config import Settings
from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.console.pipeline import MAX_BATCHES_PER_TICK, Clock, TickPipeline
from factory_tui.models import now_us
from factory_tui.storage import READ_BATCH, Store, StoreError, open_store

log = logging.getLogger("factory_tui.serve")

STOP_WAIT_S: Final = 10.0
"""How long stopping waits for a running tick (a warm start on a large database) to end."""
START_WAIT_S: Final = 60.0
"""How long `serve` waits for the child to open its stores (a cold interpreter, a slow disk)."""
KILL_AFTER_S: Final = STOP_WAIT_S + CLOSE_WAIT_S + 5.0
"""A child not gone this long after being asked to stop is killed."""
RESTART_S: Final = 2.0
"""Wait before starting an ended alerts process again (doubled each time it fails to run)."""
RESTART_MAX_S: Final = 60.0
NICE: Final = 10
"""The child's niceness: where CPU is short, it gets about a tenth of what serve gets."""
CATCH_UP_ROWS: Final = MAX_BATCHES_PER_TICK * READ_BATCH
"""More rows behind than one tick reads: that tick holds the alerts."""


def log_alert(event: AlertEvent) -> None:
    """One log line per alert raised or cleared:
    `alert raised: camera_dark W3 (W3 (Ana): no event for 16 min)`."""
    log.warning("alert %s: %s %s (%s)", event.phase, event.kind, event.subject, event.details)


class HeadlessAlerts:
    """Evaluates the alerts every `tick_s` in a thread, as the console owning the listener does.

    `open` opens the stores (a read-only one for the tick, a writable one for the alerts
    table); `start` starts the thread; `stop` ends it after the running tick, then closes the
    stores and gives queued actions up to `alert_actions.CLOSE_WAIT_S`.
    """

    def __init__(self, pipeline: TickPipeline, tick_s: float) -> None:
        self.pipeline = pipeline
        self.tick_s = tick_s
        self.ticks = 0
        """Ticks completed (for tests and logs)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None
        """The last tick's error, logged once until a tick succeeds again."""
        self._holding = False
        """Too far behind the store: a tick would evaluate stale figures (dark cameras that
        only look dark because their rows are not read yet), so alerts wait."""

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = now_us) -> HeadlessAlerts:
        """The stores and the pipeline for our site; raises StoreError (one sentence)."""
        location, site = settings.store.location, settings.site.id
        # The writable one first: it creates (or migrates) the schema the reader attaches to.
        writer: Store = open_store(location, durability=settings.store.durability, site=site)
        try:
            reader = open_store(location, read_only=True, site=site)
        except StoreError:
            writer.close()
            raise
        keeper = AlertKeeper(settings, writer, announce=log_alert)
        # serve's /metrics reads its own per-model figures: the tick needs no tally of them.
        pipeline = TickPipeline(settings, reader, keeper, clock=clock, tally_models=False)
        return cls(pipeline, settings.metrics.tick_s)

    def start(self) -> None:
        """Start ticking (the first tick, the warm start, at once)."""
        self._thread = threading.Thread(target=self._run, name="factory-tui alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the running tick, close the stores; blocks (call it off the loop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
            if self._thread.is_alive():
                log.warning("alerts: a tick still running after %g s is left", STOP_WAIT_S)
        # Waits for a tick that is still running, then stops the actions.
        self.pipeline.close()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.tick()
            # A fixed rate; a tick longer than tick_s is followed by the next at once.
            next_at = max(next_at + self.tick_s, time.monotonic())
            if self._stop.wait(next_at - time.monotonic()):
                break

    def tick(self) -> None:
        """One tick, as the thread runs them: errors are logged (once), never raised."""
        try:
            behind = self._backlog()
            if behind > CATCH_UP_ROWS and not self._holding:
                log.warning("alerts: held while %d stored rows are read in", behind)
            elif behind <= CATCH_UP_ROWS and self._holding:
                log.info("alerts: caught up, evaluated again")
            self._holding = behind > CATCH_UP_ROWS
            result = self.pipeline.tick(evaluate_alerts=not self._holding)
        except StoreError as error:
            self._failed(f"alerts: the database cannot be read: {error}")
            return
        except Exception as error:  # a bug must not end alerting for the rest of the run
            why = f"alerts: the tick failed: {error!r}"
            if why != self._failing:
                log.exception("%s", why)
            self._failing = why
            return
        if result is None:  # closed
            return
        self.ticks += 1
        not_saved = result.view.alerts.error
        if not_saved is not None:
            self._failed(f"alerts: {not_saved}")
            return
        if self._failing is not None:
            log.info("alerts: evaluated again")
            self._failing = None
        if result.initial:
            active = len(result.view.alerts.active)
            log.info(
                "alerts: evaluated every %g s (%d rows loaded, %d active)",
                self.tick_s,
                result.new_rows,
                active,
            )

    def _backlog(self) -> int:
        """Rows stored past the cursor (0 before the warm start, which reads what it needs)."""
        if not self.pipeline.loaded:
            return 0
        newest = self.pipeline.read(lambda store: store.max_event_id())
        return 0 if newest is None else max(newest - self.pipeline.cursor, 0)

    def _failed(self, why: str) -> None:
        """Log a failure once, not every tick while it lasts."""
        if why != self._failing:
            log.warning("%s", why)
        self._failing = why


class AlertProcess:
    """`HeadlessAlerts` in a child process, kept running: a supervising thread starts it, and
    starts it again (after RESTART_S, doubling up to RESTART_MAX_S) if it ends or cannot open
    the database, so a crash or a database that is down for a while does not end alerting for
    the rest of the run. `stop` asks it to end and waits a bounded time.

    The child is a fresh interpreter (`child_main`, not a fork of the listener's threads): it
    reads the settings pickled on its stdin, answers `ready` (or `error ...`) on its stdout, and
    stops when its stdin closes, which is how `stop` asks, and what happens when serve dies.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.starts = 0
        """Children started (for tests and logs)."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The running child's pid (None before it starts or once stopped)."""
        with self._lock:
            return None if self._child is None else self._child.pid

    def start(self) -> None:
        """Start the child and its supervision; returns at once (the child opens the stores
        and logs `alerts: evaluated every ...` by itself)."""
        self._thread = threading.Thread(
            target=self._supervise, name="factory-tui alerts supervisor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the child to stop (a running tick ends, queued actions get their few seconds);
        kill it if it is still there after KILL_AFTER_S. Blocks: call it off the loop."""
        with self._lock:
            self._stopping.set()
            child = self._child
        if child is not None and child.stdin is not None:
            with contextlib.suppress(OSError):
                child.stdin.close()
        if self._thread is None:
            return
        # The supervising thread reaps the child and returns once it is gone.
        self._thread.join(KILL_AFTER_S)
        if self._thread.is_alive() and child is not None:
            log.warning("alerts: the alerts process did not stop in %g s; killed", KILL_AFTER_S)
            child.kill()
            self._thread.join(KILL_AFTER_S)

    def _supervise(self) -> None:
        delay = RESTART_S
        while True:
            child = self._spawn()
            if child is None:
                return  # stopping
            error = _wait_ready(child)
            if error is None:
                delay = RESTART_S  # it ran: a later end starts the backoff afresh
            status = child.wait()
            with self._lock:
                self._child = None
            if child.stdout is not None:
                child.stdout.close()
            if self._stopping.is_set():
                return
            why = error or f"the alerts process ended (exit status {status})"
            log.warning("alerts: %s; starting it again in %g s", why, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_S)

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,  # its one line, ready or not; its log goes to our stderr
            )
            self._child = child
            self.starts += 1
        assert child.stdin is not None
        try:
            child.stdin.write(pickle.dumps(self.settings))
            child.stdin.flush()
        except OSError:
            pass  # it ended already: _wait_ready says so
        return child


CHILD_CODE: Final = "from factory_tui.console.headless import child_main; child_main()"


def _wait_ready(child: subprocess.Popen[bytes]) -> str | None:
    """None once the child ticks, else why it does not (it then ends by itself)."""
    assert child.stdout is not None
    readable, _, _ = select.select([child.stdout], [], [], START_WAIT_S)
    if not readable:
        return f"the alerts process did not start in {START_WAIT_S:g} s"
    line = child.stdout.readline().decode(errors="replace").strip()
    if line == "ready":
        return None
    return line.removeprefix("error ") or "the alerts process ended as it started"


def child_main() -> None:
    """The child's whole life: read the settings, open, say so, tick until stdin closes (serve
    asks, or is gone) or SIGTERM comes (systemd signals every process of the unit), stop."""
    stop = threading.Event()
    # Ctrl-C reaches the whole process group: serve stops us in its own time.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Below the listener: when the CPU is short, ingest gets most of it and the alerts catch up
    # after (held meanwhile if a tick cannot). Not idle priority: a reader starved in the middle
    # of its read holds the WAL's checkpoints back, and the writer pays for that.
    with contextlib.suppress(OSError):
        os.nice(NICE)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("factory_tui")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    stdin = sys.stdin.buffer
    try:
        settings: Settings = pickle.load(stdin)
    except EOFError:
        return  # serve stopped before we started
    try:
        alerts = HeadlessAlerts.open(settings)
    except StoreError as error:
        print(f"error {error}", flush=True)
        sys.exit(1)
    try:
        print("ready", flush=True)
    except BrokenPipeError:  # serve is gone already
        # Python flushes stdout again at exit: point it at nothing (as its docs advise).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        alerts.stop()
        return
    alerts.start()

    def watch_parent() -> None:
        with contextlib.suppress(OSError):
            stdin.read()  # returns at EOF: serve closed it, or serve is gone
        stop.set()

    threading.Thread(target=watch_parent, name="factory-tui parent", daemon=True).start()
    while not stop.wait(0.5):  # short waits: the SIGTERM handler runs between them
        pass
    alerts.stop()
