"""Loading the engine for a window at an instant: one way, for the console, `report` and the
benchmarks.

A gap counts for at most max_gap, so no event older than `window start - max_gap` can change
a window's time figures; what such older events still carry in is each worker's state, station
and "last seen". So the history needed is every event from that floor on, plus, per worker, its
latest event and its latest state event before the floor. This keeps a start-up or a report
fast however long the database's history is, with exactly the numbers of an engine fed it all
(docs/metrics.md, "Loading a window").

The drift tracker is loaded the same way: each model's baseline period and the last few rolling
windows, not the whole history.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

from factory_tui.config import Settings
from factory_tui.engine import Engine
from factory_tui.engine.drift import BUCKET_US, DriftTracker
from factory_tui.engine.metrics import ACTIVITY_BUCKET_US, ACTIVITY_BUCKETS, HeldEvents
from factory_tui.engine.snapshot import US_PER_S, Window
from factory_tui.models import from_utc_us, to_utc_us
from factory_tui.storage import Store, StoreError


@dataclass(frozen=True, slots=True)
class ShiftWindow:
    """What the console and the default report show at an instant."""

    shift: Window
    """The whole running shift (or the day, outside every shift)."""
    so_far: Window
    """Its part up to the instant: the window the figures are computed over."""
    title: str
    """"Shift B" or "Day 2024-05-01"."""


def shift_window(settings: Settings, at_us: int) -> ShiftWindow:
    """The running shift at `at_us` (else that day) and its part so far.

    Figures cover the shift so far: a rate over the whole shift would read low until its end.
    """
    start, end, label = settings.current_window(from_utc_us(at_us))
    shift = Window(to_utc_us(start), to_utc_us(end), label)
    is_shift = any(item.name == label for item in settings.shifts)
    so_far = Window(shift.from_us, max(shift.from_us, min(shift.to_us, at_us)), label)
    return ShiftWindow(shift, so_far, f"Shift {label}" if is_shift else f"Day {label}")


def previous_window(settings: Settings, shown: ShiftWindow) -> Window:
    """The window shown just before `shown` began (the previous shift, or the day before)."""
    return shift_window(settings, shown.shift.from_us - 1).shift


def keep_floor(settings: Settings, shown: ShiftWindow, at_us: int) -> int:
    """The oldest timestamp a live console still needs at `at_us`: what the shown window and
    the previous one (which the views can still show) need. Older events can be pruned; a
    past window is loaded from the store when asked (`load_engine`)."""
    max_gap_s = settings.metrics.max_gap_s
    previous = previous_window(settings, shown)
    return min(
        history_floor(shown.so_far, at_us, max_gap_s), history_floor(previous, at_us, max_gap_s)
    )


def roster_names(settings: Settings, store: Store) -> tuple[dict[str, str], dict[str, str]]:
    """Worker and workstation names: our config, with the database's roster (the owner's
    config and auto-registered ids) over it."""
    workers = {entry.id: entry.name for entry in settings.roster_workers()}
    stations = {entry.id: entry.name for entry in settings.roster_workstations()}
    workers.update(store.workers())
    stations.update(store.workstations())
    return workers, stations


def history_floor(window: Window, at_us: int, max_gap_s: float) -> int:
    """The oldest timestamp that can change `snapshot(window, at_us)` (its activity hour too)."""
    max_gap_us = round(max_gap_s * US_PER_S)
    return min(window.from_us, at_us - ACTIVITY_BUCKETS * ACTIVITY_BUCKET_US) - max_gap_us


def load_history(
    engine: Engine,
    store: Store,
    floor_us: int,
    until_us: int | None = None,
    *,
    reopen: Callable[[], Store] | None = None,
) -> int:
    """Fold into `engine` every event with `floor_us <= ts <= until_us` (no upper bound when None)
    and what each worker carries in from before the floor; returns how many events were new.

    The engine ignores events it already holds, so rows stored while this runs may be read again
    by the next cursor read without harm. With `reopen` (a second connection to the same data)
    a long read is split in two processes (`fold_in_two`).
    """
    span = store.time_span()
    if span is None:
        return 0
    first, last = span
    to_us = last if until_us is None else until_us
    if reopen is not None and _worth_splitting(store, span, floor_us, to_us):
        added = fold_in_two(engine, store, reopen, max(floor_us, first), min(to_us, last))
    else:
        added = engine.apply_tuples(store.engine_rows(floor_us, to_us))
    if first < floor_us:
        for worker_id in store.worker_ids():
            rows = store.engine_rows_before(worker_id, floor_us, state_only=False)
            rows += store.engine_rows_before(worker_id, floor_us, state_only=True)
            added += engine.apply_tuples(rows)
    return added


def load_engine(
    store: Store,
    settings: Settings,
    window: Window,
    at_us: int,
    *,
    until_us: int | None = None,
    every_station: bool = False,
    reopen: Callable[[], Store] | None = None,
) -> Engine:
    """An engine holding every stored event that can affect `snapshot(window, at_us)`.

    Events after `until_us` are left out (None: everything stored now, as a live console
    wants). `every_station` also names the stations seen only before the history floor (one
    table scan), so a report lists the same stations as with the whole history. `reopen`
    lets a long read use a second process (`load_history`): for one-off commands only.
    """
    max_gap_s = settings.metrics.max_gap_s
    floor = history_floor(window, at_us, max_gap_s)
    workers, stations = roster_names(settings, store)
    if every_station:
        for station_id in store.stations_before(floor):
            stations.setdefault(station_id, station_id)
    engine = Engine(max_gap_s, workers, stations)
    load_history(engine, store, floor, until_us, reopen=reopen)
    return engine


def drift_floor(tracker: DriftTracker, at_us: int) -> int:
    """The oldest timestamp the rolling checks of `tracker.status(at_us)` look at.

    Each check looks back one window (confidence or rate, the longer) from each of the
    minute boundaries of the sustain period, or of `retrain_after_s` (how long a drift has
    held), the longer; one spare minute covers rounding.
    """
    settings = tracker.settings
    held_s = max(settings.sustain_s, settings.retrain_after_s)
    minutes = (max(settings.window_s, settings.rate_window_s) + held_s) / 60
    return (at_us // BUCKET_US - int(minutes) - 2) * BUCKET_US


def drift_keep_floor(tracker: DriftTracker, at_us: int) -> int:
    """The oldest timestamp any check of `tracker.status(at_us)` looks at, counting how long
    a drift has held (up to `retrain_after_s`) as well as the sustain period."""
    settings = tracker.settings
    held_s = max(settings.sustain_s, settings.retrain_after_s)
    minutes = (max(settings.window_s, settings.rate_window_s) + held_s) / 60
    return (at_us // BUCKET_US - int(minutes) - 2) * BUCKET_US


def load_drift_history(
    tracker: DriftTracker, store: Store, at_us: int, *, until_us: int | None = None
) -> int:
    """Fold into `tracker` what its checks at `at_us` need; returns how many events were new.

    That is every event from `drift_floor` on (up to `until_us` inclusive, when given: a
    report at a past instant needs nothing later), and for each model seen before it, the
    events of its baseline period (its first `baseline_s`). Events in between cannot change a
    check at `at_us`; leaving them out keeps a start-up on a long history quick. The tracker's
    all-time `events` and `mean_confidence` then cover only what was loaded, so the console
    does not show them.
    """
    floor = drift_floor(tracker, at_us)
    baseline_us = round(tracker.settings.baseline_s * US_PER_S)
    added = 0
    for model, first_us in store.model_first_seen():
        if first_us >= floor:
            continue
        end = min(first_us + baseline_us, floor)
        added += tracker.apply(
            row for row in store.iter_range(first_us, end) if row.model_version == model
        )
    added += tracker.apply(store.iter_range(floor, None if until_us is None else until_us + 1))
    return added


# --- a long read in two processes -------------------------------------------------------------

SPLIT_READ_ROWS: Final = 200_000
"""Reads expected to hold at least this many events are split in two processes."""
LATER_SHARE: Final = 0.5
"""The share of the time range the second process reads. This process waits for the slower
of the two parts, then folds the other's events in (a fifth of folding them from rows), so
halves are best."""


def _worth_splitting(store: Store, span: tuple[int, int], from_us: int, to_us: int) -> bool:
    """True when [from_us, to_us] holds about SPLIT_READ_ROWS events or more (the site's row
    count, its newest id, times the range's share of its time span) and a core is spare."""
    first, last = span
    share = (min(to_us, last) - max(from_us, first)) / max(last - first, 1)
    return store.max_event_id() * share >= SPLIT_READ_ROWS and _spare_core()


def _spare_core() -> bool:
    """True when another core is idle enough for the second process: the load average, which
    counts this process too when it has been busy, leaves at least half a core free. On a
    busy machine the two processes would only take turns (and a split costs about a tenth
    more work)."""
    if not hasattr(os, "fork") or not hasattr(os, "getloadavg"):
        return False  # not a POSIX system: read in one process
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) >= 2 and os.getloadavg()[0] <= (cores or 1) - 0.5


def fold_in_two(
    engine: Engine, store: Store, reopen: Callable[[], Store], from_us: int, to_us: int
) -> int:
    """Fold the events with from_us <= ts <= to_us into `engine`: a forked child reads and folds
    the later part through its own connection (`reopen`) while this process reads and folds the
    earlier one, then its events join ours (`Engine.apply_held`); returns how many were new.

    Reading rows is Python work under one lock per process, so on two cores this halves the
    longest part of a report over a long history; the figures are those of one engine fed all
    (the engine's result does not depend on order or chunking). Fork only where no other thread
    runs (one-off commands); the child leaves with `os._exit`, touching nothing it inherited.
    The child's workers come through the pipe one at a time and are folded in as they come,
    so their copies are never all held at once.
    """
    split_us = to_us - int((to_us - from_us) * LATER_SHARE)
    receive, send = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read the later part, send its events, leave
        os.close(receive)
        _send_later_part(engine, reopen, split_us, to_us, send)
    os.close(send)
    done = False
    try:
        added = engine.apply_tuples(store.engine_rows(from_us, split_us - 1))
        with os.fdopen(receive, "rb") as pipe:
            try:
                succeeded, value = pickle.load(pipe)
                if not succeeded:
                    raise StoreError(f"reading the later events failed: {value}")
                stations, cursor, count = value
                workers = (pickle.load(pipe) for _ in range(count))
                added += engine.apply_held(HeldEvents(stations, workers, cursor))
            except EOFError:
                raise StoreError("the second reading process ended without an answer") from None
        done = True
    finally:
        if not done:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return added


def _send_later_part(
    engine: Engine, reopen: Callable[[], Store], from_us: int, to_us: int, send: int
) -> NoReturn:
    """The child of `fold_in_two`: fold [from_us, to_us] into an engine of its own, send
    (True, (stations, cursor, worker count)) then each (worker id, timeline), or (False, why);
    then leave at once."""
    try:
        outcome: tuple[bool, object]
        held: HeldEvents | None = None
        try:
            with reopen() as own:
                part = Engine(engine.max_gap_us / US_PER_S)
                part.apply_tuples(own.engine_rows(from_us, to_us))
            held = part.held_events()
            workers = list(held.workers)
            outcome = (True, (held.stations, held.cursor, len(workers)))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
            outcome = (False, f"{type(error).__name__}: {error}")
        with os.fdopen(send, "wb") as pipe:
            pickle.dump(outcome, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            if held is not None:
                for item in workers:
                    pickle.dump(item, pipe, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        os._exit(0)
