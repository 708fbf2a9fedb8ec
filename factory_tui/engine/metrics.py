"""The metrics engine: stored events in, an immutable `Snapshot` out (docs/metrics.md).

`Engine.apply` folds store rows in (any order, any repeats, any chunking); `Engine.snapshot`
answers for any window `[from, to)` and any `at`. Pure: no I/O, no clock, no UI imports.

How the work is split so a tick stays cheap whatever the history size:

- per worker, a `WorkerTimeline` (columns + prefix sums): window sums are O(log n);
- per station, a `StationUnits` prefix sum for units;
- station occupancy (a union over workers) is summed from cached five-minute blocks, each
  computed from the workers' working stretches (runs, not events); new events drop only the
  blocks whose time they can change, and only the partial blocks at the window's edges are
  computed on every snapshot.

A console left running forgets what no window it shows needs: `prune(cut)` drops the events
before `cut` and keeps only what they carry forward (each worker's state in force and latest
sighting), so memory stays flat however long it runs; rows older than the cut that arrive
later are not held either. Windows whose `history_floor` is at or after the cut are answered
exactly as by an engine that never forgot anything.

An `Engine` is not thread-safe: fold and ask from one thread at a time (the console's tick
worker does both).
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from itertools import compress, islice, repeat
from operator import and_, attrgetter, eq, itemgetter, mul
from typing import Any, Final, NamedTuple

from factory_tui.engine.natural import natural_key
from factory_tui.engine.snapshot import (
    US_PER_S,
    FactoryMetrics,
    Segment,
    Snapshot,
    StationMetrics,
    Window,
    WorkerMetrics,
    WorkerState,
)
from factory_tui.engine.stations import Span, StationUnits, union_length, union_spans
from factory_tui.engine.timeline import (
    CONFIDENCE_SCALE,
    KIND_CODES,
    NO_STATE,
    PRODUCT,
    WORKING,
    Columns,
    HeldColumns,
    WorkerTimeline,
    as_lists,
    hash_keys,
    renumbered,
)
from factory_tui.models import EngineRow, EventRecord

US_PER_HOUR: Final = 3600 * US_PER_S
BLOCK_US: Final = 300 * US_PER_S
"""Station occupancy is cached per block of this length (aligned to the epoch)."""
ACTIVITY_BUCKETS: Final = 12
ACTIVITY_BUCKET_US: Final = 300 * US_PER_S
CHUNK_ROWS: Final = 50_000
"""`apply` folds long iterables in chunks of this many rows, to bound transient memory (a
chunk's rows and their per-worker copies: about 40 MB at 50,000 rows, twice that at 100,000,
for the same folding time: benchmarks/report.py)."""
_CONFIDENCE_CACHE: Final = 4096
"""Distinct confidence values remembered scaled; past this, each row is scaled on its own."""
_SPARE_BLOCKS: Final = 64
"""Cached blocks kept outside the last queried window before the cache is trimmed."""

STATE_NAMES: Final[tuple[WorkerState, ...]] = ("working", "idle", "absent")

_TS: Final = itemgetter(1)

ROW_FIELDS: Final = attrgetter(
    "worker_id", "ts_us", "event_hash", "event_type", "workstation_id", "count", "confidence", "id"
)
"""Turns an `EventRecord` into an `EngineRow`'s fields (a plain tuple in its order)."""


class HeldEvents(NamedTuple):
    """An engine's events, per worker (`Engine.held_events`), to fold into another engine."""

    stations: tuple[str, ...]
    """Station ids, in the numbering the `own` codes use (station index * 4 + kind)."""
    workers: Iterable[tuple[str, WorkerTimeline]]
    """(worker id, its timeline), never pruned: nothing carried. Folded in one at a time, so
    they may arrive one at a time (from a pipe) without all being held at once."""
    cursor: int
    """The highest store row id among them."""


class Engine:
    """Worker, station and factory metrics over any window, kept current incrementally.

    `max_gap_s`: no gap between two sightings of a worker counts for more than this, and a
    worker whose latest event is older than this at `at` is unobserved. `workers` and
    `workstations` map roster ids to display names; every roster entry appears in snapshots.
    """

    def __init__(
        self,
        max_gap_s: float = 900.0,
        workers: Mapping[str, str] | None = None,
        workstations: Mapping[str, str] | None = None,
    ) -> None:
        if not max_gap_s > 0:
            raise ValueError(f"max_gap_s must be positive, got {max_gap_s!r}")
        self.max_gap_us: int = round(max_gap_s * US_PER_S)
        self._roster_workers: dict[str, str] = {}
        self._roster_stations: dict[str, str] = {}
        self._timelines: dict[str, WorkerTimeline] = {}
        self._station_ids: list[str] = []
        self._station_index: dict[str, int] = {}
        self._station_codes: dict[str, dict[str, int]] = {}
        """Station id -> {event type: own code of that event there}."""
        self._confidences: dict[float, int] = {}
        """Confidence -> the same in billionths, for the values seen (see `_scaled`)."""
        self._station_first: list[int] = []
        """Earliest event timestamp seen at each station (any event type)."""
        self._station_units: list[StationUnits] = []
        self._station_workers: list[set[str]] = []
        """Workers that have had a working state event at each station."""
        self._station_visitors: list[set[str]] = []
        """Workers that have had any event at each station."""
        self._blocks: dict[int, dict[int, int]] = {}
        """Block number -> {station index: occupied µs in that block}."""
        self._cursor = 0
        self._events = 0
        self._horizon: int | None = None
        self._dropped = 0
        self.set_roster(workers or {}, workstations or {})

    # --- state ------------------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """Highest store row id folded in so far (0 at start)."""
        return self._cursor

    @property
    def events(self) -> int:
        """Distinct events folded in so far (pruned ones included, rows that arrived older than
        the horizon not: the engine cannot tell those from repeats)."""
        return self._events

    @property
    def horizon(self) -> int | None:
        """The latest prune cut-off: events before it are not held (None: nothing pruned)."""
        return self._horizon

    @property
    def dropped(self) -> int:
        """Rows that arrived older than the horizon: the store keeps them, the engine only
        what they carry forward (state and latest sighting)."""
        return self._dropped

    def held(self) -> int:
        """Events held now (over every worker)."""
        return sum(len(timeline) for timeline in self._timelines.values())

    def oldest_held_us(self) -> int | None:
        """Timestamp of the oldest event held (None when none is)."""
        firsts = [timeline.ts[0] for timeline in self._timelines.values() if len(timeline)]
        firsts += [units.ts[0] for units in self._station_units if len(units.ts)]
        return min(firsts, default=None)

    def prune(self, before_us: int) -> int:
        """Forget every event with ts < `before_us`; returns how many were dropped.

        What they carry forward stays: each worker's state in force and latest sighting, the
        stations seen. Afterwards `snapshot`, `timeline`, `station_timeline`, `station_time`
        and `idle_since` are exact for any window and `at` whose `history_floor`
        (`factory_tui.warm_start`) is at or after `before_us`; rows older than `before_us`
        that arrive later are not held. A cut-off at or before the horizon changes nothing.
        """
        if self._horizon is not None and before_us <= self._horizon:
            return 0
        self._horizon = before_us
        dropped = sum(timeline.prune(before_us) for timeline in self._timelines.values())
        for units in self._station_units:
            units.prune(before_us)
        # Cached occupancy of blocks that end before the cut-off is of no window still exact.
        for number in [number for number in self._blocks if number < before_us // BLOCK_US]:
            del self._blocks[number]
        return dropped

    def set_roster(self, workers: Mapping[str, str], workstations: Mapping[str, str]) -> None:
        """Replace the roster (id -> name); ids seen in events are shown whether listed or not."""
        self._roster_workers = dict(workers)
        self._roster_stations = dict(workstations)

    def nbytes(self) -> int:
        """Bytes held in the engine's event columns (not counting Python object overhead)."""
        return sum(timeline.nbytes() for timeline in self._timelines.values()) + sum(
            units.nbytes() for units in self._station_units
        )

    # --- folding rows in --------------------------------------------------------------------

    def apply(self, rows: Iterable[EventRecord]) -> int:
        """Fold stored rows in; returns how many events were new (a repeated hash is ignored)."""
        return self.apply_tuples(map(ROW_FIELDS, rows))  # type: ignore[arg-type]

    def apply_tuples(self, rows: Iterable[EngineRow]) -> int:
        """`apply` for rows already read as tuples in `EngineRow` order, e.g. straight from SQL.

        This skips building an `EventRecord` per row, which dominates reading a large history.
        """
        added = 0
        iterator = iter(rows)
        # Folding allocates no reference cycles, but its allocations (and the caller's rows,
        # built as they are pulled) would trigger full collections that walk the whole heap
        # again and again; pause the cyclic collector meanwhile, as bulk loaders do.
        enabled = gc.isenabled()
        gc.disable()
        try:
            while chunk := list(islice(iterator, CHUNK_ROWS)):
                added += self._fold(chunk)
        finally:
            if enabled:
                gc.enable()
        return added

    def held_events(self) -> HeldEvents:
        """The events held, as each worker's timeline, for another engine's `apply_held`: how a
        history read in parts (in other processes) comes together in one engine."""
        workers = [
            (worker_id, timeline) for worker_id, timeline in self._timelines.items() if timeline
        ]
        return HeldEvents(tuple(self._station_ids), workers, self._cursor)

    def apply_held(self, held: HeldEvents) -> int:
        """Fold in another engine's `held_events`; returns how many events were new.

        Exactly as if that engine's rows had been folded in here (what it only carried
        forward from pruned rows is not passed on: export from an engine that never pruned).
        A worker's events that all come after ours (a history split by time) are joined on
        with their figures rebased (`WorkerTimeline.extend_with`); others are merged as rows.
        """
        # Its station numbers are its own: renumber its events' codes (station * 4 + kind).
        codes: list[int] = []
        for station_id in held.stations:
            position = self._station_index.get(station_id)
            if position is None:
                position = self._add_station(station_id)
            codes += range(position * 4, position * 4 + 4)
        renumber = None if codes == list(range(len(codes))) else [*codes, NO_STATE]
        products: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
        added = 0
        for worker_id, later in held.workers:
            timeline = self._timelines.get(worker_id)
            if timeline is None:
                timeline = self._timelines[worker_id] = WorkerTimeline(self.max_gap_us)
            horizon = self._horizon
            if timeline.follows(later) and (horizon is None or later.ts[0] >= horizon):
                first = len(timeline)
                touched = timeline.extend_with(later, renumber)
                ts, hk, own, count, conf = (column[first:] for column in timeline.held_columns())
                fresh: HeldColumns = (ts, hk, own, count, conf)
                self._note_fresh(worker_id, fresh, products)
                self._invalidate(*touched)
                added += len(later)
                continue
            ts, hk, own, count, conf = later.held_columns()
            if renumber is not None:
                own = renumbered(own, renumber)
            added += self._fold_worker(worker_id, (ts, hk, own, count, conf), products)
        self._cursor = max(self._cursor, held.cursor)
        return self._add_products(products, added)

    def _fold(self, chunk: list[EngineRow]) -> int:
        groups: defaultdict[str, list[EngineRow]] = defaultdict(list)
        for row in chunk:
            groups[row[0]].append(row)
        products: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
        added = 0
        for worker_id, rows in groups.items():
            _, ts, hashes, types, station_ids, counts, confs, ids = _time_ordered(rows)
            self._cursor = max(self._cursor, max(ids))
            columns = self._columns(ts, hashes, types, station_ids, counts, confs)
            added += self._fold_worker(worker_id, columns, products)
        return self._add_products(products, added)

    def _add_products(self, products: Mapping[int, list[tuple[int, int]]], added: int) -> int:
        """Count `added` new events and add their products to their stations' units."""
        # One sorted batch per station: products of many workers interleave in time.
        for station, events in products.items():
            self._station_units[station].add(events)
        self._events += added
        return added

    def _columns(
        self,
        ts: tuple[int, ...],
        hashes: tuple[str | bytes, ...],
        types: tuple[str, ...],
        station_ids: tuple[str, ...],
        counts: tuple[int, ...],
        confs: tuple[float, ...],
    ) -> Columns:
        """One worker's rows as the timeline's columns."""
        try:
            owns = self._owns(station_ids, types)
        except KeyError:
            # A station seen for the first time (or an unknown event type): number the new
            # stations, then look again.
            for station_id in sorted(set(station_ids).difference(self._station_index)):
                self._add_station(station_id)
            try:
                owns = self._owns(station_ids, types)
            except KeyError as error:
                raise ValueError(f"unknown event_type {error.args[0]!r}") from None
        return (list(ts), hash_keys(hashes), owns, list(counts), self._scaled(confs))

    def _owns(self, station_ids: tuple[str, ...], types: tuple[str, ...]) -> list[int]:
        """Each row's own code: two dictionary lookups, its station's codes, then its type's."""
        codes = map(self._station_codes.__getitem__, station_ids)
        return list(map(dict.__getitem__, codes, types))

    def _scaled(self, confs: tuple[float, ...]) -> list[int]:
        """Confidences in billionths. Cameras report few distinct values, so each is scaled
        once and looked up after (no float product and rounding per row)."""
        cache = self._confidences
        try:
            return list(map(cache.__getitem__, confs))
        except KeyError:
            pass
        missing = set(confs).difference(cache)
        if len(cache) + len(missing) > _CONFIDENCE_CACHE:
            return list(map(round, map(mul, confs, repeat(CONFIDENCE_SCALE))))
        for confidence in missing:
            cache[confidence] = round(confidence * CONFIDENCE_SCALE)
        return list(map(cache.__getitem__, confs))

    def _fold_worker(
        self,
        worker_id: str,
        columns: Columns | HeldColumns,
        products: defaultdict[int, list[tuple[int, int]]],
    ) -> int:
        """Fold one worker's rows (as timeline columns, sorted by ts); returns how many were new."""
        timeline = self._timelines.get(worker_id)
        if timeline is None:
            timeline = self._timelines[worker_id] = WorkerTimeline(self.max_gap_us)
        horizon = self._horizon
        if horizon is not None and columns[0][0] < horizon:
            listed = as_lists(columns)
            old = bisect_left(listed[0], horizon)
            self._carry_in(worker_id, timeline, _head(listed, old))
            columns = _tail(listed, old)
            if not columns[0]:
                return 0
        fresh, touched_from, touched_until = timeline.merge(columns)
        if fresh is None:
            return 0
        self._note_fresh(worker_id, fresh, products)
        self._invalidate(touched_from, touched_until)
        return len(fresh[0])

    def _carry_in(self, worker_id: str, timeline: WorkerTimeline, columns: Columns) -> None:
        """Rows older than the horizon: not held; they may still carry a state forward, be the
        worker's latest sighting or name a station."""
        self._dropped += len(columns[0])
        firsts = self._station_first
        for t, own in zip(columns[0], columns[2], strict=True):
            station = own >> 2
            firsts[station] = min(firsts[station], t)
            self._station_visitors[station].add(worker_id)
            if own & 3 == WORKING:
                self._station_workers[station].add(worker_id)
        self._invalidate(*timeline.carry_in(columns))

    def _add_station(self, station_id: str) -> int:
        position = len(self._station_ids)
        self._station_ids.append(station_id)
        self._station_index[station_id] = position
        self._station_codes[station_id] = {
            event_type: position * 4 + kind for event_type, kind in KIND_CODES.items()
        }
        self._station_first.append(2**63 - 1)
        self._station_units.append(StationUnits())
        self._station_workers.append(set())
        self._station_visitors.append(set())
        return position

    def _note_fresh(
        self,
        worker_id: str,
        fresh: Columns | HeldColumns,
        products: defaultdict[int, list[tuple[int, int]]],
    ) -> None:
        """Station bookkeeping for new events: first sighting, who worked where, and the
        (ts, count) of product events, collected into `products` by station."""
        fresh_ts, _, owns, counts, _ = fresh
        codes = set(owns)  # few distinct (station, kind) codes, whatever the batch size
        earliest = fresh_ts[0]  # the new events come in timeline order
        firsts = self._station_first
        for station in {code >> 2 for code in codes}:
            if firsts[station] > earliest:
                here = min(t for t, own in zip(fresh_ts, owns, strict=True) if own >> 2 == station)
                firsts[station] = min(firsts[station], here)
        for code in codes:
            self._station_visitors[code >> 2].add(worker_id)
            if code & 3 == WORKING:
                self._station_workers[code >> 2].add(worker_id)
        if any(code & 3 == PRODUCT for code in codes):
            is_product = map(eq, map(and_, owns, repeat(3)), repeat(PRODUCT))
            for t, own, units in compress(zip(fresh_ts, owns, counts, strict=True), is_product):
                products[own >> 2].append((t, units))

    def _invalidate(self, start_us: int, end_us: int) -> None:
        """Forget cached occupancy blocks that overlap [start_us, end_us)."""
        blocks = self._blocks
        if not blocks or end_us <= start_us:
            return
        first, last = start_us // BLOCK_US, (end_us - 1) // BLOCK_US
        if last - first < len(blocks):
            for number in range(first, last + 1):
                blocks.pop(number, None)
        else:
            for number in [number for number in blocks if first <= number <= last]:
                del blocks[number]

    # --- queries ----------------------------------------------------------------------------

    def snapshot(self, window: Window, at_us: int, *, once: bool = False) -> Snapshot:
        """Every metric (docs/metrics.md) over `window`, `at_us` being now (later events unseen).

        `once`: a one-off question (a report). Station occupancy is then summed over the window
        in one sweep, without filling the five-minute blocks a live view reuses tick after tick
        (five times less work for one question over a long window).
        """
        start = window.from_us
        end = min(window.to_us, at_us)  # counted time stops at the window's end and at `at`
        units_end = window.instants_end(at_us)
        length_us = window.to_us - window.from_us

        worker_ids = set(self._roster_workers)
        worker_ids.update(
            worker_id for worker_id, tl in self._timelines.items() if tl.seen_by(at_us)
        )
        counted: list[tuple[int, int, int]] = []
        workers = tuple(
            self._worker_metrics(worker_id, start, end, units_end, at_us, counted)
            for worker_id in sorted(worker_ids, key=natural_key)
        )

        present: defaultdict[str, list[str]] = defaultdict(list)
        for worker in workers:
            if worker.station_id is not None and worker.state in ("working", "idle"):
                present[worker.station_id].append(worker.worker_id)
        occupancy = self._occupancy_direct(start, end) if once else self._occupancy(start, end)
        station_ids = set(self._roster_stations)
        station_ids.update(
            station_id
            for station_id, first in zip(self._station_ids, self._station_first, strict=True)
            if first <= at_us
        )
        stations = tuple(
            self._station_metrics(
                station_id, occupancy, start, units_end, length_us, present[station_id]
            )
            for station_id in sorted(station_ids, key=natural_key)
        )
        return Snapshot(
            window=window,
            at_us=at_us,
            workers=workers,
            stations=stations,
            factory=_factory(workers, counted, length_us),
            cursor=self._cursor,
            total_events=self._events,
        )

    def _worker_metrics(
        self,
        worker_id: str,
        start: int,
        end: int,
        units_end: int,
        at_us: int,
        counted: list[tuple[int, int, int]],
    ) -> WorkerMetrics:
        """One worker's row; appends its (working, idle, absent) µs to `counted`."""
        name = self._roster_workers.get(worker_id, worker_id)
        timeline = self._timelines.get(worker_id)
        latest = None if timeline is None else timeline.latest(at_us)
        if timeline is None or latest is None:
            counted.append((0, 0, 0))
            return WorkerMetrics(
                worker_id=worker_id,
                name=name,
                active_s=0.0,
                idle_s=0.0,
                absent_s=0.0,
                utilization=None,
                units=0,
                uph=None,
                state="unobserved",
                station_id=None,
                last_seen_us=None,
                mean_confidence=None,
                events=0,
                activity=(0.0,) * ACTIVITY_BUCKETS,
            )
        active = idle = absent = 0
        if end > start:
            working_1, idle_1, absent_1 = timeline.counted(end)
            working_0, idle_0, absent_0 = timeline.counted(start)
            active, idle, absent = working_1 - working_0, idle_1 - idle_0, absent_1 - absent_0
        counted.append((active, idle, absent))
        first, stop = timeline.span(start, units_end) if units_end > start else (0, 0)
        units = timeline.units[stop] - timeline.units[first]
        events = stop - first
        mean_confidence = (
            (timeline.conf_sum[stop] - timeline.conf_sum[first]) / (events * CONFIDENCE_SCALE)
            if events
            else None
        )
        last_seen, code = latest
        station_id = self._station_ids[code >> 2] if code >= 0 else None
        state: WorkerState = "unobserved"
        if code >= 0 and at_us - last_seen <= self.max_gap_us:
            state = STATE_NAMES[code & 3]
        return WorkerMetrics(
            worker_id=worker_id,
            name=name,
            active_s=active / US_PER_S,
            idle_s=idle / US_PER_S,
            absent_s=absent / US_PER_S,
            utilization=active / (active + idle) if active + idle else None,
            units=units,
            uph=units * US_PER_HOUR / active if active else None,
            state=state,
            station_id=station_id,
            last_seen_us=last_seen,
            mean_confidence=mean_confidence,
            events=events,
            activity=self._activity(timeline, at_us),
        )

    @staticmethod
    def _activity(timeline: WorkerTimeline, at_us: int) -> tuple[float, ...]:
        """Working fraction of each of the last 12 five-minute buckets before `at`, oldest first.

        `WorkerTimeline.working_before` at the 13 bucket edges, inlined into one pass: the
        edges rise, so each search starts where the previous one ended (the console's tick
        takes this for every worker: it was about 60 % of a 200-worker Snapshot).
        """
        ts, lost = timeline.ts, timeline.lost
        run_start, run_code, run_work = timeline.run_start, timeline.run_code, timeline.run_work
        n, gap = len(ts), timeline.max_gap_us
        fractions: list[float] = []
        index = run = 0
        previous = 0
        mark = at_us - ACTIVITY_BUCKETS * ACTIVITY_BUCKET_US
        for step in range(ACTIVITY_BUCKETS + 1):
            index = bisect_right(ts, mark, index) - 1
            if index < 0:
                total = 0
                index = 0
            else:
                run = bisect_right(run_start, index, run) - 1
                total = run_work[run]
                code = run_code[run]
                if code >= 0 and code & 3 == WORKING:
                    # The run's whole intervals before `index`, then interval `index` cut here.
                    first = run_start[run]
                    start = ts[index]
                    end = start + gap
                    if index + 1 < n and ts[index + 1] < end:
                        end = ts[index + 1]
                    total += (start - ts[first]) - (lost[index] - lost[first])
                    total += (mark if mark < end else end) - start
            if step:  # each bucket's fraction as soon as its end is known
                fractions.append((total - previous) / ACTIVITY_BUCKET_US)
            previous = total
            mark += ACTIVITY_BUCKET_US
        return tuple(fractions)

    def _station_metrics(
        self,
        station_id: str,
        occupancy: Mapping[int, int],
        start: int,
        units_end: int,
        length_us: int,
        present: list[str],
    ) -> StationMetrics:
        index = self._station_index.get(station_id)
        occupied = units = 0
        if index is not None:
            occupied = occupancy.get(index, 0)
            units = self._station_units[index].between(start, units_end)
        return StationMetrics(
            workstation_id=station_id,
            name=self._roster_stations.get(station_id, station_id),
            occupancy_s=occupied / US_PER_S,
            utilization=occupied / length_us if length_us else None,
            units=units,
            throughput_uph=units * US_PER_HOUR / length_us if length_us else None,
            workers_present=tuple(present),
        )

    # --- station occupancy ------------------------------------------------------------------

    def _occupancy(self, lo: int, hi: int) -> dict[int, int]:
        """Station index -> µs in [lo, hi) during which some worker was working there."""
        if hi <= lo:
            return {}
        first = -(-lo // BLOCK_US)  # first block that starts at or after lo
        stop = hi // BLOCK_US  # blocks before this one end at or before hi
        if first >= stop:
            return self._occupancy_direct(lo, hi)
        totals = self._occupancy_direct(lo, first * BLOCK_US)
        self._fill_blocks(first, stop)
        blocks = self._blocks
        for number in range(first, stop):
            for station, occupied in blocks[number].items():
                totals[station] = totals.get(station, 0) + occupied
        for station, occupied in self._occupancy_direct(stop * BLOCK_US, hi).items():
            totals[station] = totals.get(station, 0) + occupied
        if len(blocks) > stop - first + _SPARE_BLOCKS:
            # Keep the cache to about the window the views keep asking for.
            for number in [number for number in blocks if not first <= number < stop]:
                del blocks[number]
        return totals

    def _occupancy_direct(self, lo: int, hi: int) -> dict[int, int]:
        if hi <= lo:
            return {}
        spans: defaultdict[int, list[Span]] = defaultdict(list)
        for timeline in self._timelines.values():
            for start, end, station in timeline.working_runs(lo, hi):
                spans[station].append((start, end))
        return {station: union_length(pieces) for station, pieces in spans.items()}

    def _fill_blocks(self, first: int, stop: int) -> None:
        """Compute every missing block in [first, stop), one sweep per run of missing blocks."""
        blocks = self._blocks
        number = first
        while number < stop:
            if number in blocks:
                number += 1
                continue
            run_stop = number + 1
            while run_stop < stop and run_stop not in blocks:
                run_stop += 1
            self._compute_blocks(number, run_stop)
            number = run_stop

    def _compute_blocks(self, first: int, stop: int) -> None:
        pieces: defaultdict[tuple[int, int], list[Span]] = defaultdict(list)
        for timeline in self._timelines.values():
            for start, end, station in timeline.working_runs(first * BLOCK_US, stop * BLOCK_US):
                block = start // BLOCK_US
                while start < end:
                    edge = (block + 1) * BLOCK_US
                    piece_end = end if end < edge else edge
                    pieces[(block, station)].append((start, piece_end))
                    start = piece_end
                    block += 1
        computed: dict[int, dict[int, int]] = {number: {} for number in range(first, stop)}
        for (block, station), spans in pieces.items():
            computed[block][station] = union_length(spans)
        self._blocks.update(computed)

    # --- timelines for the detail views -----------------------------------------------------

    def timeline(self, worker_id: str, window: Window, at_us: int) -> tuple[Segment, ...]:
        """The worker's counted segments and unobserved gaps over [from, min(to, at)), in order.

        Adjacent segments with the same state and station are joined (heartbeats do not split
        a stretch of work).
        """
        lo, hi = window.from_us, min(window.to_us, at_us)
        if hi <= lo:
            return ()
        segments: list[Segment] = []
        position = lo
        timeline = self._timelines.get(worker_id)
        if timeline is not None:
            for start, end, code in timeline.intervals(lo, hi):
                if start > position:
                    _join(segments, Segment(position, start, "unobserved", None))
                if code < 0:
                    _join(segments, Segment(start, end, "unobserved", None))
                else:
                    state = STATE_NAMES[code & 3]
                    _join(segments, Segment(start, end, state, self._station_ids[code >> 2]))
                position = end
        if position < hi:
            _join(segments, Segment(position, hi, "unobserved", None))
        return tuple(segments)

    def idle_since(self, worker_id: str, window: Window, at_us: int) -> int | None:
        """Start of the worker's unbroken idle stretch up to `min(to, at)`, clipped to the
        window; None when it is not idle then. The same as the start of the trailing idle
        segments of `timeline`, without building the timeline."""
        timeline = self._timelines.get(worker_id)
        hi = min(window.to_us, at_us)
        if timeline is None or hi <= window.from_us:
            return None
        start = timeline.idle_start(hi)
        return None if start is None else max(start, window.from_us)

    def station_time(
        self, workstation_id: str, window: Window, at_us: int
    ) -> dict[str, tuple[float, float, float, int]]:
        """Per worker with any event at the station: (working_s, idle_s, absent_s, units) there.

        Time is the worker's counted time while a state at this station was in force, over
        [from, min(to, at)); units are its product events there counted as in the Snapshot
        (from <= ts < to, ts <= at). Workers with nothing in the window are left out.
        """
        index = self._station_index.get(workstation_id)
        if index is None:
            return {}
        lo, hi = window.from_us, min(window.to_us, at_us)
        units_end = window.instants_end(at_us)
        found: dict[str, tuple[float, float, float, int]] = {}
        for worker_id in self._station_visitors[index]:
            timeline = self._timelines[worker_id]
            working, idle, absent = timeline.time_at_station(index, lo, hi)
            units = timeline.units_at_station(index, window.from_us, units_end)
            if working or idle or absent or units:
                found[worker_id] = (
                    working / US_PER_S,
                    idle / US_PER_S,
                    absent / US_PER_S,
                    units,
                )
        return found

    def station_timeline(
        self, workstation_id: str, window: Window, at_us: int
    ) -> tuple[Segment, ...]:
        """Occupied ("working") and not occupied ("unobserved") stretches of a station.

        Covers [from, min(to, at)) in order; every segment has `station_id=workstation_id`.
        """
        lo, hi = window.from_us, min(window.to_us, at_us)
        if hi <= lo:
            return ()
        index = self._station_index.get(workstation_id)
        spans: list[Span] = []
        if index is not None:
            for worker_id in self._station_workers[index]:
                spans.extend(
                    (start, end)
                    for start, end, station in self._timelines[worker_id].working_runs(lo, hi)
                    if station == index
                )
        segments: list[Segment] = []
        position = lo
        for start, end in union_spans(spans):
            if start > position:
                segments.append(Segment(position, start, "unobserved", workstation_id))
            segments.append(Segment(start, end, "working", workstation_id))
            position = end
        if position < hi:
            segments.append(Segment(position, hi, "unobserved", workstation_id))
        return tuple(segments)


def _time_ordered(rows: list[EngineRow]) -> list[tuple[Any, ...]]:
    """The rows' columns, the rows sorted by ts (stable for ties). Rows come nearly in time
    order, so the sort is about one pass; sorted by ts, the timeline's merge needs no sort of
    its own (unless timestamps tie)."""
    rows.sort(key=_TS)
    return list(zip(*rows, strict=True))


def _head(columns: Columns, stop: int) -> Columns:
    ts, hk, own, count, conf = (column[:stop] for column in columns)
    return ts, hk, own, count, conf


def _tail(columns: Columns, start: int) -> Columns:
    ts, hk, own, count, conf = (column[start:] for column in columns)
    return ts, hk, own, count, conf


def _join(segments: list[Segment], segment: Segment) -> None:
    """Append, extending the previous segment instead when it continues it."""
    if segments:
        last = segments[-1]
        if (
            last.end_us == segment.start_us
            and last.state == segment.state
            and last.station_id == segment.station_id
        ):
            segments[-1] = Segment(last.start_us, segment.end_us, last.state, last.station_id)
            return
    segments.append(segment)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _factory(
    workers: tuple[WorkerMetrics, ...], counted: list[tuple[int, int, int]], length_us: int
) -> FactoryMetrics:
    """Factory totals: sums over workers (in integer µs), means of the non-null worker ratios."""
    units = sum(worker.units for worker in workers)
    states = [worker.state for worker in workers]
    active, idle, absent = (
        (sum(column) for column in zip(*counted, strict=True)) if counted else (0, 0, 0)
    )
    return FactoryMetrics(
        active_s=active / US_PER_S,
        idle_s=idle / US_PER_S,
        absent_s=absent / US_PER_S,
        units=units,
        avg_utilization=_mean([w.utilization for w in workers if w.utilization is not None]),
        avg_uph=_mean([w.uph for w in workers if w.uph is not None]),
        throughput_uph=units * US_PER_HOUR / length_us if length_us else None,
        working=states.count("working"),
        idle=states.count("idle"),
        absent=states.count("absent"),
        unobserved=states.count("unobserved"),
    )
