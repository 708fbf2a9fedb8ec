"""The console's alerts without a console: `serve`'s tick, on a thread of its own.

A site box that runs only `serve` must still raise its alerts and fire their actions: nobody
keeps a console open there. `HeadlessAlerts` runs the console's own `TickPipeline` (the same
warm start, engine, pruning, drift tracker and `AlertKeeper`) every `[metrics] tick_s`, with
nothing on top: the view it builds asks for nothing beyond the Snapshot. As in the console
that owns the listener, the keeper writes the alerts table (so a viewer opened later shows
them) and hands each alert raised or cleared to the actions; here each is also logged.

`serve` runs it in a child process of its own (`AlertProcess`): folding every stored row into
the engine costs about half of what storing it does, and in the listener's process that CPU
would come out of ingest (one interpreter lock). The child reads the database through its own
connections, as a viewer console would, and is the listener owner's: it starts with `serve`,
stops with it (SIGTERM to both, as systemd sends, or `serve` asking), and stops by itself when
`serve` dies.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from typing import Final

from factory_tui.alert_actions import CLOSE_WAIT_S, AlertEvent
from factory_tui.config import Settings
from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.console.pipeline import Clock, TickPipeline
from factory_tui.models import now_us
from factory_tui.storage import Store, StoreError, open_store

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
"""The child's niceness over serve's: a CPU-bound box gives ingest about nine parts in ten."""


def log_alert(event: AlertEvent) -> None:
    """One log line per alert raised or cleared: `alert raised: camera_dark W3: no event...`."""
    log.warning("alert %s: %s %s: %s", event.phase, event.kind, event.subject, event.details)


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

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = now_us) -> HeadlessAlerts:
        """The stores and the pipeline for our site; raises StoreError (one sentence)."""
        location, site = settings.store.location, settings.site.id
        reader = open_store(location, read_only=True, site=site)
        writer: Store | None = None
        try:
            writer = open_store(location, durability=settings.store.durability, site=site)
        except StoreError:
            reader.close()
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
            self._tick()
            # A fixed rate; a tick longer than tick_s is followed by the next at once.
            next_at = max(next_at + self.tick_s, time.monotonic())
            if self._stop.wait(next_at - time.monotonic()):
                break

    def _tick(self) -> None:
        try:
            result = self.pipeline.tick()
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

    def _failed(self, why: str) -> None:
        """Log a failure once, not every tick while it lasts."""
        if why != self._failing:
            log.warning("%s", why)
        self._failing = why


class AlertProcess:
    """`HeadlessAlerts` in a child process, kept running: a supervising thread starts it, and
    starts it again (after RESTART_S, doubling up to RESTART_MAX_S) if it ends or cannot open
    the database, so a crash or a database that is down for a while does not end alerting for
    the rest of the run. `stop` asks it to end and waits a bounded time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.starts = 0
        """Children started (for tests and logs)."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The running child's pid (None before it starts or once stopped)."""
        with self._lock:
            return None if self._process is None else self._process.pid

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
            process, pipe = self._process, self._pipe
        if process is not None and pipe is not None:
            with contextlib.suppress(OSError, ValueError):  # already gone
                pipe.send("stop")
            # Its sentinel, not join: the supervising thread is the one that reaps it.
            if not wait_for([process.sentinel], KILL_AFTER_S):
                log.warning("alerts: the alerts process did not stop in %g s; killed", KILL_AFTER_S)
                process.kill()
        if self._thread is not None:
            self._thread.join(KILL_AFTER_S)

    def _supervise(self) -> None:
        delay = RESTART_S
        while True:
            spawned = self._spawn()
            if spawned is None:
                return  # stopping
            process, pipe = spawned
            error = _wait_ready(pipe)
            if error is None:
                delay = RESTART_S  # it ran: a later end starts the backoff afresh
            process.join()
            with self._lock:
                self._process = self._pipe = None
            pipe.close()
            if self._stopping.is_set():
                return
            why = error or f"the alerts process ended (exit status {process.exitcode})"
            log.warning("alerts: %s; starting it again in %g s", why, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_S)

    def _spawn(self) -> tuple[multiprocessing.process.BaseProcess, Connection] | None:
        context = multiprocessing.get_context("spawn")  # no copy of the listener's threads
        ours, theirs = context.Pipe()
        process = context.Process(
            target=run_child, args=(self.settings, theirs), name="factory-tui alerts"
        )
        with self._lock:
            if self._stopping.is_set():
                return None
            process.start()
            self._process, self._pipe = process, ours
            self.starts += 1
        theirs.close()
        return process, ours


def _wait_ready(pipe: Connection) -> str | None:
    """None once the child ticks, else why it does not (it then ends by itself)."""
    try:
        if not pipe.poll(START_WAIT_S):
            return f"the alerts process did not start in {START_WAIT_S:g} s"
        error: str | None = pipe.recv()
    except (EOFError, OSError):
        return "the alerts process ended as it started"
    return error


def run_child(settings: Settings, pipe: Connection) -> None:
    """The child's whole life: open, tell the parent, tick until told to stop (or SIGTERM, or
    the parent gone), stop."""
    stop = threading.Event()
    # Below the listener: when the CPU is short, ingest gets it and the alerts catch up after.
    with contextlib.suppress(OSError):
        os.nice(NICE)
    # Ctrl-C reaches the whole process group: serve stops us in its own time.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # systemd's stop signals every process of the unit at once.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("factory_tui")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        alerts = HeadlessAlerts.open(settings)
    except StoreError as error:
        pipe.send(str(error))
        return
    pipe.send(None)
    alerts.start()

    def watch_parent() -> None:
        with contextlib.suppress(EOFError, OSError):
            pipe.recv()  # "stop", or EOF when serve is gone
        stop.set()

    threading.Thread(target=watch_parent, name="factory-tui parent", daemon=True).start()
    while not stop.wait(0.5):  # short waits: the SIGTERM handler runs between them
        pass
    alerts.stop()
