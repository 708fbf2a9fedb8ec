"""A fleet of simulated cameras: deterministic wire lines, and an asyncio runner that sends them.

- `CameraFleet` turns (seed, roster, time span) into the exact lines the cameras send in that
  span, ordered by send time. It is a pure function of those inputs: asking tick by tick or for
  a whole shift at once gives the same lines (see `simulator_model` for the behaviour).
- `SimClock` is simulated time: start + elapsed real time x speed. The console's demo shares one
  clock between the fleet and the app, so both agree on "now".
- `run_fleet` runs one asyncio task per camera, each sending its lines through a `submit`
  callable (the listener's in-process `submit`, or one TCP connection per camera) and tallying
  the replies; `write_jsonl` writes a span to a file as fast as it can be generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import json
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

from factory_tui.config import Settings
from factory_tui.ingest.client import ClientError, ReplyCounts
from factory_tui.ingest.listener import ListenerError
from factory_tui.ingest.simulator_model import (
    KIND_NAMES,
    ON_TIME,
    US_PER_S,
    CameraProfile,
    FleetConfig,
    Item,
    block_batches,
    make_profile,
)
from factory_tui.models import RosterEntry, from_utc_us, to_utc_us

__all__ = [
    "CameraFleet",
    "Emission",
    "FleetConfig",
    "SimClock",
    "SimSummary",
    "Submit",
    "extend_roster",
    "fleet_config_for",
    "run_fleet",
    "write_jsonl",
]

Submit = Callable[[Sequence[bytes]], Awaitable[list[dict[str, Any]]]]
"""Sends lines and returns one reply dict per line, in order, once they are committed."""

SUBMIT_BATCH: Final = 1000
"""Most lines one camera hands to `submit` at once (keeps replies and memory bounded)."""
CATCH_UP_SPAN_S: Final = 600.0
"""Simulated time fetched per step while catching up, e.g. backfilling a shift."""
FILE_CHUNK_S: Final = 900.0
"""Simulated time generated per write when writing a file."""
ERROR_SAMPLES: Final = 5
"""Distinct rejection messages kept in a summary."""

# Failures of the path to the listener that end a run with a summary instead of a traceback.
_SUBMIT_ERRORS: tuple[type[BaseException], ...] = (ClientError, ListenerError, OSError, EOFError)


class SimClock:
    """Simulated time: `start_us` plus the real time elapsed since creation times `speed`."""

    def __init__(
        self, start_us: int, speed: float = 1.0, real: Callable[[], float] = time.monotonic
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be 0 or more, got {speed:g}")
        self._real = real
        self._origin_real = real()
        self._origin_us = start_us
        self._speed = speed
        self.start_us = start_us
        """The simulated instant the clock was created at."""

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (0: paused)."""
        return self._speed

    def now_us(self) -> int:
        """The current simulated instant, UTC epoch microseconds."""
        elapsed = self._real() - self._origin_real
        return self._origin_us + int(elapsed * self._speed * US_PER_S)

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (simulated time does not jump); 0 pauses."""
        if speed < 0:
            raise ValueError(f"speed must be 0 or more, got {speed:g}")
        self._origin_us = self.now_us()
        self._origin_real = self._real()
        self._speed = speed


class Emission(NamedTuple):
    """One line a camera sends: when, for which event time, how, and the bytes (no newline)."""

    send_us: int
    ts_us: int
    camera_id: str
    kind: str
    """`on_time`, `late` (sent after lines with later timestamps) or `duplicate` (a re-send)."""
    line: bytes


def extend_roster(
    roster: Sequence[RosterEntry], count: int | None, prefix: str
) -> tuple[RosterEntry, ...]:
    """The first `count` roster entries, topped up with ids `<prefix>1..<prefix>N` if short.

    Generated ids that the roster already uses are skipped; generated entries are named by id.
    """
    if count is None:
        return tuple(roster)
    if count < 1:
        raise ValueError(f"need at least one, got {count}")
    chosen = list(roster[:count])
    used = {entry.id for entry in roster}
    number = 0
    while len(chosen) < count:
        number += 1
        candidate = f"{prefix}{number}"
        if candidate not in used:
            chosen.append(RosterEntry(candidate, candidate))
            used.add(candidate)
    return tuple(chosen)


def fleet_config_for(settings: Settings, at_us: int, **overrides: Any) -> FleetConfig:
    """A fleet config whose shift blocks line up with the site's shifts around `at_us`.

    Blocks take the running shift's start and length (else the first configured shift's; with
    no shifts, 8 hours from 06:00 local time), and the heartbeat stays well under max_gap.
    `overrides` are further FleetConfig fields.
    """
    moment = from_utc_us(at_us)
    zone = settings.tz
    local = moment.astimezone(zone)
    bounds: tuple[datetime, datetime] | None = None
    for shift in settings.shifts:
        bounds = shift.window_at(moment, zone)
        if bounds is not None:
            break
    if bounds is None and settings.shifts:
        first = settings.shifts[0]
        start = datetime.combine(local.date(), first.start, zone)
        end_day = local.date() + timedelta(days=0 if first.end > first.start else 1)
        bounds = (start, datetime.combine(end_day, first.end, zone))
    if bounds is None:
        start = datetime.combine(local.date(), clock_time(6), zone)
        bounds = (start, start + timedelta(hours=8))
    length_s = (bounds[1] - bounds[0]).total_seconds()
    fields: dict[str, Any] = {
        "shift_s": length_s,
        "shift_anchor_us": to_utc_us(bounds[0]),
        "heartbeat_s": min(60.0, settings.metrics.max_gap_s / 2),
    }
    if length_s < 6 * 3600:
        # Too short for two breaks and a lunch: one break mid-shift, everything scaled down.
        fields.update(
            breaks=((0.5, 0.08 * length_s),),
            break_jitter_s=0.05 * length_s,
            arrival_spread_s=0.03 * length_s,
            departure_spread_s=0.03 * length_s,
        )
    fields.update(overrides)
    return FleetConfig(**fields)


class _CameraStream:
    """One camera's lines, generated lazily and handed out by send time.

    Remembers where the last request ended, so consecutive requests (a run, tick by tick) cost
    only the new lines; any other request restarts at the block holding its start, which sees
    every line sent in the span because no line is sent outside its own block.
    """

    __slots__ = (
        "_batch",
        "_batches",
        "_delayed",
        "_flag",
        "_fleet",
        "_pos",
        "_profile",
        "_upto",
    )

    def __init__(self, fleet: CameraFleet, profile: CameraProfile) -> None:
        self._fleet = fleet
        self._profile = profile
        self._batches: Iterator[tuple[list[Item], bool]] = iter(())
        self._batch: list[Item] = []
        self._flag = False
        self._pos = 0
        self._delayed: list[Item] = []
        self._upto: int | None = None

    def _restart(self, block: int) -> None:
        self._batches = self._blocks_from(block)
        self._batch, self._flag = next(self._batches)
        self._pos = 0
        self._delayed = []

    def _blocks_from(self, block: int) -> Iterator[tuple[list[Item], bool]]:
        fleet = self._fleet
        while True:
            yield from block_batches(
                fleet.seed, self._profile, fleet.station_json, fleet.config, block
            )
            block += 1

    def take(self, t0: int, t1: int, out: list[Item]) -> None:
        """Append every line this camera sends in [t0, t1) to `out` (unordered)."""
        first_block = self._fleet.block_of(t0)
        if self._upto is None or t0 < self._upto or self._batch[self._pos][2] < first_block:
            self._restart(first_block)
        delayed = self._delayed
        batch, flag, pos = self._batch, self._flag, self._pos
        # Every line sent before t1 has an event time before t1: generate up to there.
        while batch[pos][6] < t1:
            end = len(batch)
            if batch[-1][6] >= t1:
                end = bisect_left(batch, t1, pos, end, key=_event_time)
            if not flag and batch[pos][6] >= t0:
                # Sent on time, all inside the span: the whole slice goes out in one piece.
                out.extend(batch[pos:end])
            else:
                for item in batch[pos:end]:
                    if item[5] != ON_TIME:
                        heapq.heappush(delayed, item)
                    elif item[0] >= t0:
                        out.append(item)
            if end < len(batch):
                pos = end
                break
            batch, flag = next(self._batches)
            pos = 0
        self._batch, self._flag, self._pos = batch, flag, pos
        while delayed and delayed[0][0] < t1:
            item = heapq.heappop(delayed)
            if item[0] >= t0:
                out.append(item)
        self._upto = t1


_event_time = itemgetter(6)
_send_time = itemgetter(0)


class CameraFleet:
    """Simulated cameras, one per worker; lines are a pure function of seed, roster and span.

    Not thread-safe: it keeps per-camera generation state to make consecutive spans cheap.
    """

    def __init__(
        self,
        workers: Sequence[RosterEntry],
        workstations: Sequence[RosterEntry],
        *,
        seed: int = 1,
        config: FleetConfig | None = None,
    ) -> None:
        if not workers:
            raise ValueError("a fleet needs at least one worker")
        if not workstations:
            raise ValueError("a fleet needs at least one workstation")
        for kind, entries in (("worker", workers), ("workstation", workstations)):
            ids = [entry.id for entry in entries]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{kind} ids must be unique")
        self.seed = seed
        self.config = config or FleetConfig()
        self.workers = tuple(workers)
        self.workstations = tuple(workstations)
        self.station_json = tuple(json.dumps(entry.id) for entry in self.workstations)
        """Workstation ids as JSON strings, encoded once for line building."""
        self.cameras: tuple[CameraProfile, ...] = tuple(
            make_profile(seed, index, worker, len(self.workstations), self.config)
            for index, worker in enumerate(self.workers)
        )
        self._streams = [_CameraStream(self, profile) for profile in self.cameras]

    def block_of(self, at_us: int) -> int:
        """Index of the shift block containing `at_us`."""
        return (at_us - self.config.shift_anchor_us) // self.config.shift_us

    def shift_start(self, at_us: int) -> int:
        """Start of the simulated shift containing `at_us`."""
        return self.config.shift_anchor_us + self.block_of(at_us) * self.config.shift_us

    def camera(self, worker_id: str) -> CameraProfile:
        """The profile of the camera watching `worker_id`."""
        for profile in self.cameras:
            if profile.worker_id == worker_id:
                return profile
        raise KeyError(worker_id)

    def _collect(self, t0_us: int, t1_us: int) -> list[Item]:
        if t1_us < t0_us:
            raise ValueError("the span ends before it starts")
        out: list[Item] = []
        if t1_us == t0_us:
            return out
        # Camera by camera; each camera adds the lines it sends on time (in order), then its
        # late lines and duplicates (in send order). A stable sort on the send time then gives
        # (send time, camera, on time first, sequence): an order that depends only on the lines,
        # never on how time was cut into spans.
        for stream in self._streams:
            stream.take(t0_us, t1_us, out)
        out.sort(key=_send_time)
        return out

    def events_between(self, t0_us: int, t1_us: int) -> list[bytes]:
        """Wire lines (JSON, no newline) sent in [t0_us, t1_us), in send order."""
        return [item[4].encode() for item in self._collect(t0_us, t1_us)]

    def emissions_between(self, t0_us: int, t1_us: int) -> list[Emission]:
        """Like `events_between`, with each line's camera, timestamp, send time and kind."""
        cameras = self.cameras
        return [
            Emission(send, ts, cameras[camera].camera_id, KIND_NAMES[kind], line.encode())
            for send, camera, _, _, line, kind, ts in self._collect(t0_us, t1_us)
        ]

    def write_between(self, t0_us: int, t1_us: int, handle: IO[bytes]) -> int:
        """Write the lines sent in [t0_us, t1_us) to a binary file, one per line; the count."""
        items = self._collect(t0_us, t1_us)
        if items:
            handle.write("\n".join([item[4] for item in items]).encode())
            handle.write(b"\n")
        return len(items)


def write_jsonl(
    fleet: CameraFleet,
    path: Path,
    start_us: int,
    end_us: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write every line sent in [start_us, end_us) to `path` as JSON lines; the line count.

    Generated in chunks of simulated time, so memory stays flat however long the span is.
    `progress(lines_so_far, sim_us_done)` is called after each chunk.
    """
    written = 0
    step = int(FILE_CHUNK_S * US_PER_S)
    # Millions of short-lived tuples of ints and strings, none in a reference cycle: pausing
    # the cycle collector while they stream through saves about a sixth of the time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with path.open("wb") as handle:
            t = start_us
            while t < end_us:
                t_next = min(end_us, t + step)
                written += fleet.write_between(t, t_next, handle)
                t = t_next
                if progress is not None:
                    progress(written, t - start_us)
    finally:
        if collecting:
            gc.enable()
    return written


@dataclass(frozen=True, slots=True)
class SimSummary:
    """What a run sent and what the listener said about it."""

    sent: int
    accepted: int
    duplicate: int
    rejected: int
    unanswered: int
    """Lines sent without a reply (the connection failed first)."""
    late: int
    """Lines sent late on purpose (out of order)."""
    resent: int
    """Lines re-sent on purpose (each should come back `duplicate`)."""
    elapsed_s: float
    sim_start_us: int
    sim_end_us: int
    errors: tuple[str, ...] = ()
    """The first few distinct rejection messages."""
    failure: str | None = None
    """Why the run ended early, when the path to the listener failed."""

    @property
    def rate_per_s(self) -> float:
        """Lines sent per real second."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def lines(self) -> list[str]:
        """The summary as short human-readable lines."""
        simulated = (self.sim_end_us - self.sim_start_us) / US_PER_S
        out = [
            f"sent {self.sent} lines in {self.elapsed_s:.1f} s ({self.rate_per_s:.0f}/s), "
            f"covering {_duration_text(simulated)} of simulated time",
            f"accepted {self.accepted}, duplicate {self.duplicate}, rejected {self.rejected}"
            + (f", unanswered {self.unanswered}" if self.unanswered else ""),
            f"deliberate: {self.resent} re-sent duplicates, {self.late} late lines",
        ]
        out.extend(f"rejected: {error}" for error in self.errors)
        if self.failure:
            out.append(f"stopped early: {self.failure}")
        return out


def _duration_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


@dataclass(slots=True)
class _Tally(ReplyCounts):
    sent: int = 0
    unanswered: int = 0
    late: int = 0
    resent: int = 0
    errors: list[str] = field(default_factory=list)
    failure: str | None = None

    def record(self, batch: Sequence[Emission], replies: Sequence[dict[str, Any]]) -> None:
        self.sent += len(batch)
        for emission in batch:
            if emission.kind == "late":
                self.late += 1
            elif emission.kind == "duplicate":
                self.resent += 1
        for reply in replies:
            error = self.count(reply)
            if error is not None and len(self.errors) < ERROR_SAMPLES and error not in self.errors:
                self.errors.append(error)
        self.unanswered += max(0, len(batch) - len(replies))


class _Dispatcher:
    """One task per camera, each sending its own lines in order; a tick waits for all of them."""

    def __init__(
        self,
        fleet: CameraFleet,
        submit: Submit | None,
        submit_for: Callable[[str], Submit] | None,
        tally: _Tally,
        stop: asyncio.Event,
    ) -> None:
        if submit is None and submit_for is None:
            raise ValueError("run_fleet needs submit or submit_for")
        self._tally = tally
        self._stop = stop
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._index = {profile.camera_id: profile.index for profile in fleet.cameras}
        self._queues: list[asyncio.Queue[list[Emission]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        for profile in fleet.cameras:
            queue: asyncio.Queue[list[Emission]] = asyncio.Queue()
            send = submit_for(profile.camera_id) if submit_for is not None else submit
            assert send is not None
            self._queues.append(queue)
            self._tasks.append(
                asyncio.create_task(self._camera(queue, send), name=f"camera {profile.camera_id}")
            )

    async def _camera(self, queue: asyncio.Queue[list[Emission]], send: Submit) -> None:
        while True:
            batch = await queue.get()
            try:
                # After a failed send the path is gone: the rest is dropped, not retried.
                if self._tally.failure is None:
                    await self._send(batch, send)
            finally:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

    async def _send(self, batch: list[Emission], send: Submit) -> None:
        for offset in range(0, len(batch), SUBMIT_BATCH):
            chunk = batch[offset : offset + SUBMIT_BATCH]
            try:
                replies = await send([emission.line for emission in chunk])
            except _SUBMIT_ERRORS as error:
                # A broken connection still reports the replies it received before breaking.
                self._tally.record(chunk, error.replies if isinstance(error, ClientError) else [])
                if self._tally.failure is None:
                    self._tally.failure = _describe_failure(error)
                self._stop.set()
                return
            self._tally.record(chunk, replies)

    async def dispatch(self, emissions: Iterable[Emission]) -> None:
        """Hand each camera its lines (in order) and wait until every camera has sent them."""
        groups: dict[int, list[Emission]] = {}
        index = self._index
        for emission in emissions:
            groups.setdefault(index[emission.camera_id], []).append(emission)
        if not groups:
            return
        self._pending += len(groups)
        self._idle.clear()
        for camera, batch in groups.items():
            self._queues[camera].put_nowait(batch)
        await self._idle.wait()

    async def close(self) -> None:
        """Stop the camera tasks (they are idle between ticks)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _describe_failure(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, ClientError | ListenerError):
        return text
    if isinstance(error, EOFError | ConnectionError):
        return f"the listener closed the connection ({text})"
    return text


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep up to `seconds`, waking at once when `stop` is set."""
    if seconds <= 0 or stop.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_fleet(
    fleet: CameraFleet,
    clock: SimClock,
    submit: Submit | None,
    *,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    tick_s: float = 0.5,
    rate: float | None = None,
    from_us: int | None = None,
    submit_for: Callable[[str], Submit] | None = None,
    caught_up: asyncio.Event | None = None,
) -> SimSummary:
    """Run the fleet against `submit` until `duration_s` of simulated time or `stop`.

    One task per camera sends that camera's lines in send order; each tick waits for every reply,
    so a slow listener slows the run down instead of piling lines up in memory.

    - Paced by `clock` (default): the run starts at `clock.start_us`, and every `tick_s` real
      seconds the lines sent between the previous tick and `clock.now_us()` go out. `from_us`
      (before the clock's now) starts earlier: that history goes out first, in bounded steps,
      e.g. to fill the current shift before going live.
    - `rate` (lines per real second, for load tests): simulated time runs as fast as needed to
      send that many lines per second; the clock (or `from_us`) only gives the start.
    - `submit_for(camera_id)`, when given, returns each camera's own submit (one TCP connection
      per camera); otherwise every camera uses `submit`.
    - `caught_up`, when given, is set once the history is answered and the run keeps pace with
      the clock (the console holds its alerts until then: half a history is not a dark floor).
    """
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be positive, got {rate:g}")
    if tick_s <= 0:
        raise ValueError(f"tick_s must be positive, got {tick_s:g}")
    stop = stop or asyncio.Event()
    tally = _Tally()
    start_us = clock.start_us if from_us is None else from_us
    end_us = None if duration_s is None else start_us + int(duration_s * US_PER_S)
    loop = asyncio.get_running_loop()
    started = loop.time()
    dispatcher = _Dispatcher(fleet, submit, submit_for, tally, stop)
    try:
        if rate is None:
            reached = await _run_clocked(
                fleet, clock, dispatcher, stop, start_us, end_us, tick_s, caught_up
            )
        else:
            reached = await _run_rated(fleet, dispatcher, stop, start_us, end_us, rate, tick_s)
    finally:
        await dispatcher.close()
    return SimSummary(
        sent=tally.sent,
        accepted=tally.accepted,
        duplicate=tally.duplicate,
        rejected=tally.rejected,
        unanswered=tally.unanswered,
        late=tally.late,
        resent=tally.resent,
        elapsed_s=loop.time() - started,
        sim_start_us=start_us,
        sim_end_us=reached,
        errors=tuple(tally.errors),
        failure=tally.failure,
    )


async def _run_clocked(
    fleet: CameraFleet,
    clock: SimClock,
    dispatcher: _Dispatcher,
    stop: asyncio.Event,
    start_us: int,
    end_us: int | None,
    tick_s: float,
    caught_up: asyncio.Event | None = None,
) -> int:
    """Send what the clock says is due, tick by tick; returns the simulated instant reached."""
    t = start_us
    catch_up = int(CATCH_UP_SPAN_S * US_PER_S)
    while not stop.is_set():
        target = clock.now_us()
        if end_us is not None:
            target = min(target, end_us)
        while t < target and not stop.is_set():
            # Bounded steps: a backfill or a stalled listener never builds one huge batch.
            t_next = min(target, t + catch_up)
            await dispatcher.dispatch(fleet.emissions_between(t, t_next))
            t = t_next
        if caught_up is not None and not stop.is_set():
            caught_up.set()
        if end_us is not None and t >= end_us:
            break
        await _wait(stop, tick_s)
    return t


async def _run_rated(
    fleet: CameraFleet,
    dispatcher: _Dispatcher,
    stop: asyncio.Event,
    start_us: int,
    end_us: int | None,
    rate: float,
    tick_s: float,
) -> int:
    """Send `rate` lines per real second, generating simulated time as fast as needed."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    tick = min(tick_s, 0.1)
    buffer: list[Emission] = []
    produced = 0
    t = start_us
    step = int(60 * US_PER_S)
    while not stop.is_set():
        due = int(rate * (loop.time() - started)) - produced
        # After a stall, do not burst more than a second's worth to catch up.
        due = min(due, max(1, int(rate)))
        while len(buffer) < due and (end_us is None or t < end_us):
            t_next = t + step if end_us is None else min(end_us, t + step)
            fetched = fleet.emissions_between(t, t_next)
            buffer.extend(fetched)
            # Size the next step to what is still missing at the density just seen.
            density = len(fetched) / max(1, t_next - t)
            missing = max(1, due - len(buffer))
            step = int(min(3600 * US_PER_S, max(US_PER_S, missing / max(density, 1e-12))))
            t = t_next
        if due > 0 and buffer:
            batch, buffer = buffer[:due], buffer[due:]
            produced += len(batch)
            await dispatcher.dispatch(batch)
        if end_us is not None and t >= end_us and not buffer:
            return end_us
        await _wait(stop, tick)
    # Lines generated but not sent do not count as covered time.
    return buffer[0].send_us if buffer else t
