"""One worker's timeline: its events sorted by (timestamp, event_hash) and prefix sums over them.

The metric rules (docs/metrics.md) count time *sighting to sighting*: event `i` opens an interval
`[ts[i], min(ts[i+1], ts[i] + max_gap))` (the last one: `[ts[i], ts[i] + max_gap)`), counted in
the state set by the latest state event at or before `i`. Each interval depends only on its own
event, the next event and the state in force, so the intervals of the *whole* history are fixed
by the data alone. A query with a given `at` is the same set of intervals cut at `at`: the
interval of the last event at or before `at` ends at `min(next event, ts + max_gap)`, and the
next event lies after `at`, so cutting at `at` gives exactly `min(at, ts + max_gap)`.

That is what makes the structure both exact and cheap:

- columns are `array`s (a few bytes per event, not a Python object per event);
- prefix sums (`lost`, and per-state totals at the start of each run of one state, see
  `WorkerTimeline`) make the time counted before any instant `t` one or two bisects plus the
  part of a single interval (`counted(t)`), and any window the difference of two lookups;
- new events after the last one are appended; a late event is inserted where it belongs and only
  the tail from there is recomputed, with C-level `map`/`accumulate` doing the arithmetic.

Everything is an integer: microseconds, and confidence in billionths (`CONFIDENCE_SCALE`), so
every sum is exact and no result depends on arrival order or on how much history is held.

A long-running console forgets old events (`prune`): it drops the events before a cut-off
instant and keeps only what they carry forward — the state in force and the latest sighting
(the *carry*). Every interval of a dropped event ends before `cut + max_gap`, so the figures of
any window from there on are those of the whole history.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate, islice, repeat
from operator import add, itemgetter, lt, sub
from typing import Final

WORKING: Final = 0
IDLE: Final = 1
ABSENT: Final = 2
PRODUCT: Final = 3
"""Kind codes. An event is stored as `station_index * 4 + kind` (its "own" code)."""
NO_STATE: Final = -1
"""The state code before the worker's first state event (`NO_STATE & 3 == PRODUCT`, so it never
matches a counted state)."""

CONFIDENCE_SCALE: Final = 1_000_000_000
"""Confidence is held as an integer number of billionths: sums are exact (a float prefix sum
would depend on how much history precedes a window), and a decimal confidence such as 0.93
averages back to exactly 0.93."""

KIND_CODES: Final[dict[str, int]] = {
    "working": WORKING,
    "idle": IDLE,
    "absent": ABSENT,
    "product_count": PRODUCT,
}

Entry = tuple[int, int, int, int, float]
"""One event as the timeline stores it: (ts_us, hash_key, own code, count, confidence in
billionths)."""
Columns = tuple[list[int], list[int], list[int], list[int], list[int]]
"""Events as five equally long lists, in `Entry` field order."""
HeldColumns = tuple["array[int]", "array[int]", "array[int]", "array[int]", "array[int]"]
"""A timeline's own columns (`WorkerTimeline.held_columns`), in `Entry` field order."""

_PREFIX = itemgetter(slice(0, 16))
_BIG_ENDIAN_HOST: Final = sys.byteorder == "big"


def hash_key(event_hash: str | bytes) -> int:
    """The 64-bit tie-break / dedup key of an event hash.

    For a SHA-256 hex digest (what the store writes: 64 hex characters) it is the value of its
    first 16 hex digits, so ordering by the key is ordering by `event_hash`. Any other string
    (hand-made test rows) gets the first 64 bits of its own SHA-256: still deterministic and
    independent of arrival order. A digest read as its 32 raw bytes (as the SQLite store keeps
    it) gets the key of its hex text: the value of its first 8 bytes.
    """
    if isinstance(event_hash, bytes):
        if len(event_hash) == 32:
            return int.from_bytes(event_hash[:8], "big")
        return int.from_bytes(hashlib.sha256(event_hash).digest()[:8], "big")
    if len(event_hash) == 64:
        try:
            prefix = bytes.fromhex(event_hash[:16])
        except ValueError:
            prefix = b""
        if len(prefix) == 8:
            return int.from_bytes(prefix, "big")
    return int.from_bytes(hashlib.sha256(event_hash.encode("utf-8")).digest()[:8], "big")


def hash_keys(hashes: Sequence[str | bytes]) -> list[int]:
    """`hash_key` of many hashes; the common all-SHA-256 cases run at C speed."""
    kinds, lengths = set(map(type, hashes)), set(map(len, hashes))
    if kinds == {bytes} and lengths == {32}:
        # Each digest is four 64-bit words; its key is the first.
        return _big_endian_keys(b"".join(hashes), step=4)  # type: ignore[arg-type]
    if kinds == {str} and lengths == {64}:
        try:
            raw = bytes.fromhex("".join(map(_PREFIX, hashes)))
        except ValueError:
            raw = b""
        # Exactly 8 bytes per hash means every prefix was 16 hex digits (the per-hash rule).
        if len(raw) == 8 * len(hashes):
            return _big_endian_keys(raw)
    return [hash_key(value) for value in hashes]


def _big_endian_keys(raw: bytes, step: int = 1) -> list[int]:
    """The unsigned 64-bit big-endian numbers packed in `raw` (every `step`-th of them)."""
    keys: array[int] = array("Q")
    keys.frombytes(raw)
    if step != 1:
        keys = keys[::step]
    if not _BIG_ENDIAN_HOST:
        keys.byteswap()
    return keys.tolist()


class WorkerTimeline:
    """All events of one worker, sorted by (ts_us, hash key), with prefix sums of counted time.

    `max_gap_us` caps every interval. Appending, inserting and querying are documented on the
    methods; nothing here reads a clock or does I/O.

    Counted time per state is kept in two layers, because states change far less often than
    events arrive (cameras repeat the current state as a heartbeat):

    - `lost[i]` is how much of the gaps before event `i` the max_gap cap dropped, so the
      counted length of intervals a..i-1 is `(ts[i] - ts[a]) - (lost[i] - lost[a])`, and
      intervals a..i-1 are back to back exactly when `lost[i] == lost[a]`;
    - the *runs* (maximal stretches of events with the same state code in force) carry the
      per-state totals at their start. The time of a state before event `i` is its total at
      the start of `i`'s run plus, when the run is in that state, the counted length from the
      run's start to `i`. A working stretch at one station is a run cut at the gaps `lost`
      marks, so station occupancy walks runs, not events.
    """

    __slots__ = (
        "max_gap_us",
        "ts",
        "hk",
        "own",
        "cur",
        "count",
        "conf",
        "lost",
        "units",
        "conf_sum",
        "run_start",
        "run_code",
        "run_work",
        "run_idle",
        "run_absent",
        "carry_ts",
        "carry_hk",
        "carry_state_ts",
        "carry_state_hk",
        "carry_code",
    )

    def __init__(self, max_gap_us: int) -> None:
        self.max_gap_us = max_gap_us
        self.ts: array[int] = array("q")
        """Event timestamps, ascending (ties ordered by `hk`)."""
        self.hk: array[int] = array("Q")
        """64-bit key of each event's hash (see `hash_key`)."""
        self.own: array[int] = array("i")
        """Each event's own code: station_index * 4 + kind."""
        self.cur: array[int] = array("i")
        """The state code in force after each event (code of the latest state event, or -1)."""
        self.count: array[int] = array("q")
        self.conf: array[int] = array("q")
        """Confidence in billionths (see `CONFIDENCE_SCALE`)."""
        self.lost: array[int] = array("q")
        """Time the max_gap cap dropped from the gaps before each event (non-decreasing)."""
        self.units: array[int] = array("q", [0])
        """Units of events 0..i-1 (one longer than `ts`)."""
        self.conf_sum: array[int] = array("q", [0])
        """Summed confidence (billionths) of events 0..i-1 (one longer than `ts`)."""
        self.run_start: array[int] = array("q")
        """Index of the first event of each run (runs tile 0..n-1)."""
        self.run_code: array[int] = array("i")
        """The state code in force through each run (-1: no state yet)."""
        self.run_work: array[int] = array("q")
        """Counted working µs of the intervals before each run starts."""
        self.run_idle: array[int] = array("q")
        self.run_absent: array[int] = array("q")
        self.carry_ts: int | None = None
        """Timestamp of the latest event before the held ones (pruned, or dropped as too old)."""
        self.carry_hk = 0
        self.carry_state_ts: int | None = None
        """Timestamp of the latest state event before the held ones."""
        self.carry_state_hk = 0
        self.carry_code: int = NO_STATE
        """The state code that event set: in force at the first held event."""

    def __len__(self) -> int:
        return len(self.ts)

    def seen_by(self, at_us: int) -> bool:
        """True when the worker had any event at or before `at_us` (held or carried)."""
        if self.carry_ts is not None and self.carry_ts <= at_us:
            return True
        return bool(self.ts) and self.ts[0] <= at_us

    def latest(self, at_us: int) -> tuple[int, int] | None:
        """(timestamp, state code in force) of the latest event at or before `at_us`, held
        or carried; None when there is none."""
        index = bisect_right(self.ts, at_us) - 1
        if index >= 0:
            return self.ts[index], self.cur[index]
        if self.carry_ts is not None and self.carry_ts <= at_us:
            return self.carry_ts, self.carry_code
        return None

    def prune(self, before_us: int) -> int:
        """Forget the events with ts < `before_us`, keeping what they carry forward; returns
        how many were dropped.

        Counted time, units and timelines stay exact for every instant from
        `before_us + max_gap` on (an interval never outlives its event by more than max_gap).
        """
        ts = self.ts
        k = bisect_left(ts, before_us)
        if k == 0:
            return 0
        last = k - 1
        self._carry_last(ts[last], self.hk[last])
        state = last
        own = self.own
        while state >= 0 and own[state] & 3 == PRODUCT:
            state -= 1
        if state >= 0:
            self._carry_state(ts[state], self.hk[state], own[state])
        n = len(ts)
        run_start = self.run_start
        if k == n:
            for column in (*self._columns(), self.cur, self.lost, *self._runs()):
                del column[:]
            del self.units[1:]
            del self.conf_sum[1:]
            return k
        # The run holding event k now starts at 0. Totals restart from 0 there, as `counted`
        # counts nothing before the first event held.
        run = bisect_right(run_start, k) - 1
        totals = [self.run_work[run], self.run_idle[run], self.run_absent[run]]
        kind = self.run_code[run] & 3
        if kind != PRODUCT:
            totals[kind] += self.counted_between(run_start[run], k)
        for column in self._runs():
            del column[:run]
        run_start[0] = k
        self.run_work[0], self.run_idle[0], self.run_absent[0] = totals
        for column in (*self._columns(), self.cur, self.lost, self.units, self.conf_sum):
            del column[:k]
        for column, base in zip((run_start, *self._runs()[2:]), (k, *totals), strict=True):
            rebased = list(map(sub, column, repeat(base)))
            del column[:]
            column.fromlist(rebased)
        return k

    def carry_in(self, columns: Columns) -> tuple[int, int]:
        """Fold in events older than the held ones (late rows before the prune cut-off): they
        are not held, only what they carry forward is. Returns [start, end) of the instants
        whose counted state may have changed (empty when none).
        """
        code_before = self.carry_code
        for ts_us, key, own in zip(columns[0], columns[1], columns[2], strict=True):
            self._carry_last(ts_us, key)
            if own & 3 != PRODUCT:
                self._carry_state(ts_us, key, own)
        if self.carry_code == code_before or not self.ts:
            return 0, 0
        self._recompute(0)
        # The carried state holds until the first held state event.
        index, owns, n = 0, self.own, len(self.ts)
        while index < n and owns[index] & 3 == PRODUCT:
            index += 1
        end = self.ts[index] if index < n else self.ts[n - 1] + self.max_gap_us
        return self.ts[0], end

    def _carry_last(self, ts_us: int, key: int) -> None:
        if self.carry_ts is None or (ts_us, key) > (self.carry_ts, self.carry_hk):
            self.carry_ts, self.carry_hk = ts_us, key

    def _carry_state(self, ts_us: int, key: int, own: int) -> None:
        if self.carry_state_ts is None or (ts_us, key) > (self.carry_state_ts, self.carry_state_hk):
            self.carry_state_ts, self.carry_state_hk, self.carry_code = ts_us, key, own

    def _runs(self) -> tuple[array[int], array[int], array[int], array[int], array[int]]:
        return self.run_start, self.run_code, self.run_work, self.run_idle, self.run_absent

    def merge(
        self, columns: Columns | HeldColumns
    ) -> tuple[Columns | HeldColumns | None, int, int]:
        """Fold events in (any order, duplicates allowed); only the touched tail is recomputed.

        `columns` holds equally long lists (ts_us, hash key, own code, count, confidence in
        billionths).
        Returns (the columns of the events that were new, in timeline order, or None when none
        was; start; end) where [start, end) bounds every instant whose counted state or
        station may have changed.
        """
        new_ts, new_hk = columns[0], columns[1]
        if not all(map(lt, new_ts, islice(new_ts, 1, None))):
            # Out of order or tied timestamps: sort by (ts, key), dropping repeats. (Strictly
            # rising timestamps, the common case, are already in timeline order and unique.)
            columns = _transpose(_unique_sorted(sorted(zip(*columns, strict=True))))
            new_ts, new_hk = columns[0], columns[1]
        n = len(self.ts)
        split = self._count_not_after_last(new_ts, new_hk)
        fresh: Columns | HeldColumns
        if not split:
            # The common case: everything new sorts after everything seen so far.
            position = n
            fresh = columns
            self._append(columns)
        else:
            # Only the events that sort before the last one held can be repeats or need a
            # merge with the held tail; the rest is appended after them. (Events given as
            # arrays, another timeline's columns, go this way as lists.)
            listed = as_lists(columns)
            early = [
                entry
                for entry in zip(*(column[:split] for column in listed), strict=True)
                if not self._contains(entry[0], entry[1])
            ]
            later = _slice_columns(listed, split)
            if not early and not later[0]:
                return None, 0, 0
            position = n
            fresh = later
            if early:
                position = self._position(early[0][0], early[0][1])
                tail = list(zip(*(column[position:] for column in self._columns()), strict=True))
                for column in self._columns():
                    del column[position:]
                # Both runs are sorted, so this sort is a linear merge.
                tail.extend(early)
                tail.sort()
                self._append(_transpose(tail))
                fresh = _concat_columns(_transpose(early), later)
            self._append(later)
        self._recompute(position)
        last_ts, last_hk = fresh[0][-1], fresh[1][-1]
        return fresh, self._touched_from(position), self._touched_until(last_ts, last_hk)

    def follows(self, later: WorkerTimeline) -> bool:
        """True when `later` can be joined on by `extend_with`: it never pruned or carried
        anything, counts gaps as this one does, and all its events sort after all of ours."""
        if later.carry_ts is not None or later.max_gap_us != self.max_gap_us or not later.ts:
            return False
        return not self.ts or (later.ts[0], later.hk[0]) > (self.ts[-1], self.hk[-1])

    def extend_with(self, later: WorkerTimeline, codes: Sequence[int] | None) -> tuple[int, int]:
        """Append the events of `later` (see `follows`) with its derived columns rebased, not
        recomputed: the same columns `merge` would give, at a few C-level passes per event.
        `codes` renumbers its own codes (index: its code, -1 last; None: same numbering).
        Returns [start, end) of the instants whose counted state may have changed."""
        n1, n2, gap = len(self.ts), len(later.ts), self.max_gap_us
        state = self.cur[-1] if n1 else self.carry_code  # in force before its first event
        own, cur, run_code = later.own, later.cur, later.run_code
        if codes is not None:
            own, cur, run_code = (renumbered(column, codes) for column in (own, cur, run_code))
        # Its first events may come before any state event of its own (-1): ours holds there.
        leading = 0
        if run_code[0] == NO_STATE:
            leading = later.run_start[1] if len(later.run_start) > 1 else n2
        base_lost = 0
        if n1:
            base_lost = self.lost[-1] + max(later.ts[0] - self.ts[-1] - gap, 0)
        self.ts.extend(later.ts)
        self.hk.extend(later.hk)
        self.own.extend(own)
        self.count.extend(later.count)
        self.conf.extend(later.conf)
        self.cur.extend(array("i", [state]) * leading)
        self.cur.extend(cur[leading:])
        # Its sums start from 0 (lost, and units and confidence one longer: 0 before its first
        # event); ours go on from where they end.
        self.lost.fromlist(_shifted(later.lost, base_lost))
        self.units.fromlist(_shifted(later.units[1:], self.units[-1]))
        self.conf_sum.fromlist(_shifted(later.conf_sum[1:], self.conf_sum[-1]))
        self._join_runs(later, n1, state, run_code, leading)
        return self._touched_from(n1), self._touched_until(self.ts[-1], self.hk[-1])

    def _join_runs(
        self, later: WorkerTimeline, n1: int, state: int, codes: array[int], leading: int
    ) -> None:
        """The runs of `later` after ours: shifted by `n1`, its leading no-state run in our
        state, each run's totals ours at its first event plus its own (plus the leading run's
        time, which it did not count and we do); a run that continues the one before it joins
        it."""
        totals = [0, 0, 0]
        if self.run_start:
            first = self.run_start[-1]
            totals = [self.run_work[-1], self.run_idle[-1], self.run_absent[-1]]
            if state & 3 != PRODUCT:
                totals[state & 3] += self.counted_between(first, n1)
        extra = [0, 0, 0]
        if leading and leading < len(later.ts) and state & 3 != PRODUCT:
            extra[state & 3] = later.counted_between(0, leading)
        previous = self.run_code[-1] if self.run_code else None
        theirs = zip(
            later.run_start, codes, later.run_work, later.run_idle, later.run_absent, strict=True
        )
        for number, (start, code, work, idle, absent) in enumerate(theirs):
            if number == 0 and code == NO_STATE:
                code = state
            if code == previous:
                continue  # the state goes on: the run before it continues
            previous = code
            self.run_start.append(start + n1)
            self.run_code.append(code)
            if number == 0:
                self.run_work.append(totals[0])
                self.run_idle.append(totals[1])
                self.run_absent.append(totals[2])
            else:
                self.run_work.append(totals[0] + extra[0] + work)
                self.run_idle.append(totals[1] + extra[1] + idle)
                self.run_absent.append(totals[2] + extra[2] + absent)

    def _count_not_after_last(self, new_ts: Sequence[int], new_hk: Sequence[int]) -> int:
        """How many of the (sorted) new events sort at or before the last event held."""
        ts = self.ts
        if not ts or new_ts[0] > ts[-1]:
            return 0
        last_ts, last_hk = ts[-1], self.hk[-1]
        split = bisect_left(new_ts, last_ts)
        stop = bisect_right(new_ts, last_ts, split)
        while split < stop and new_hk[split] <= last_hk:
            split += 1
        return split

    def _columns(self) -> HeldColumns:
        return self.ts, self.hk, self.own, self.count, self.conf

    def held_columns(self) -> HeldColumns:
        """The events held, in timeline order (ts, hash key, own code, count, confidence)."""
        return self._columns()

    def _append(self, columns: Columns | HeldColumns) -> None:
        ts, hk, own, count, conf = columns
        if isinstance(ts, list):
            self.ts.fromlist(ts)
            self.hk.fromlist(hk)  # type: ignore[arg-type]
            self.own.fromlist(own)  # type: ignore[arg-type]
            self.count.fromlist(count)  # type: ignore[arg-type]
            self.conf.fromlist(conf)  # type: ignore[arg-type]
        else:  # arrays of the same types (another timeline's columns): copied as they are
            for held, values in zip(self._columns(), columns, strict=True):
                held.extend(values)

    def _after_last(self, ts_us: int, key: int) -> bool:
        """True when (ts_us, key) sorts after every event held."""
        ts = self.ts
        if not ts:
            return True
        return ts_us > ts[-1] or (ts_us == ts[-1] and key > self.hk[-1])

    def _contains(self, ts_us: int, key: int) -> bool:
        ts = self.ts
        index = bisect_left(ts, ts_us)
        while index < len(ts) and ts[index] == ts_us:
            if self.hk[index] == key:
                return True
            index += 1
        return False

    def _position(self, ts_us: int, key: int) -> int:
        """Index at which an entry with this (ts, key) belongs."""
        ts = self.ts
        index = bisect_left(ts, ts_us)
        while index < len(ts) and ts[index] == ts_us and self.hk[index] < key:
            index += 1
        return index

    def _recompute(self, position: int) -> None:
        """Recompute the derived columns and the runs from `position` to the end."""
        ts, cur = self.ts, self.cur
        n = len(ts)
        run_start, run_code = self.run_start, self.run_code
        # Runs that start before `position` keep their start, code and totals; only the one
        # holding position-1 may now end elsewhere, and it is simply continued below.
        kept = bisect_right(run_start, position - 1)
        run_totals = (self.run_work, self.run_idle, self.run_absent)
        for column in (run_start, run_code, *run_totals):
            del column[kept:]

        state = cur[position - 1] if position else self.carry_code
        in_run = run_code[-1] if kept else None
        del cur[position:]
        carried: list[int] = []
        append = carried.append
        starts: list[int] = []
        codes: list[int] = []
        product = PRODUCT  # a local: this loop runs once per new event
        for index, code in enumerate(self.own[position:], position):
            if code & 3 != product:
                state = code
            append(state)
            if state != in_run:
                in_run = state
                starts.append(index)
                codes.append(state)
        cur.fromlist(carried)

        # lost[i] = lost[i-1] + max(ts[i] - ts[i-1] - max_gap, 0), from position on.
        first = max(position, 1)
        if position == 0:
            del self.lost[:]
            self.lost.append(0)
        if n > first:
            base = self.lost[first - 1]
            del self.lost[first - 1 :]
            window = ts[first - 1 :]
            over = map(sub, map(sub, window[1:], window[:-1]), repeat(self.max_gap_us))
            self.lost.fromlist(list(accumulate(map(max, over, repeat(0)), initial=base)))

        if starts:
            self._add_runs(starts, codes)

        base_units = self.units[position]
        del self.units[position:]
        self.units.fromlist(list(accumulate(self.count[position:], initial=base_units)))
        base_conf = self.conf_sum[position]
        del self.conf_sum[position:]
        self.conf_sum.fromlist(list(accumulate(self.conf[position:], initial=base_conf)))

    def _add_runs(self, starts: list[int], codes: list[int]) -> None:
        """Append runs (their first events and state codes) after the runs held, each with
        the per-state totals at its start: those of the run before plus its counted time."""
        ts, lost = self.ts, self.lost
        run_start, run_code = self.run_start, self.run_code
        totals = [0, 0, 0]
        previous_start, previous_kind = 0, PRODUCT  # PRODUCT: nothing before counts
        if run_start:
            totals = [self.run_work[-1], self.run_idle[-1], self.run_absent[-1]]
            previous_start, previous_kind = run_start[-1], run_code[-1] & 3
        work: list[int] = []
        idle: list[int] = []
        absent: list[int] = []
        for start, code in zip(starts, codes, strict=True):
            if previous_kind != PRODUCT:
                totals[previous_kind] += (ts[start] - ts[previous_start]) - (
                    lost[start] - lost[previous_start]
                )
            work.append(totals[0])
            idle.append(totals[1])
            absent.append(totals[2])
            previous_start, previous_kind = start, code & 3
        run_start.fromlist(starts)
        run_code.fromlist(codes)
        self.run_work.fromlist(work)
        self.run_idle.fromlist(idle)
        self.run_absent.fromlist(absent)

    def _touched_from(self, position: int) -> int:
        # The interval before the first new event now ends earlier (or later).
        return self.ts[position - 1] if position else self.ts[0]

    def _touched_until(self, ts_us: int, key: int) -> int:
        # States carry forward until the next state event; from there on nothing changed.
        index = self._position(ts_us, key) + 1
        own, n = self.own, len(self.ts)
        while index < n and own[index] & 3 == PRODUCT:
            index += 1
        if index < n:
            return self.ts[index]
        return self.ts[n - 1] + self.max_gap_us

    # --- queries ----------------------------------------------------------------------------

    def end_of(self, index: int) -> int:
        """End of the interval opened by event `index` (with no `at` cut)."""
        ts = self.ts
        end: int = ts[index] + self.max_gap_us
        if index + 1 < len(ts) and ts[index + 1] < end:
            end = ts[index + 1]
        return end

    def counted_between(self, first: int, stop: int) -> int:
        """Counted length of intervals first..stop-1 (each one closed by the next event)."""
        return (self.ts[stop] - self.ts[first]) - (self.lost[stop] - self.lost[first])

    def counted(self, t: int) -> tuple[int, int, int]:
        """Counted (working, idle, absent) µs before instant `t`, no `at` cut.

        For a query at `at`, pass `min(t, at)`: the history cut at `at` is this one clipped there.
        """
        ts = self.ts
        index = bisect_right(ts, t) - 1
        if index < 0:
            return 0, 0, 0
        run = bisect_right(self.run_start, index) - 1
        totals = [self.run_work[run], self.run_idle[run], self.run_absent[run]]
        kind = self.run_code[run] & 3
        if kind != PRODUCT:
            # Intervals from the run's start to index-1 are whole; interval `index` is cut at t.
            end = self.end_of(index)
            inside = self.counted_between(self.run_start[run], index)
            totals[kind] += inside + (t if t < end else end) - ts[index]
        return totals[0], totals[1], totals[2]

    def working_before(self, t: int) -> int:
        """Counted working µs before `t` (no `at` cut); the sparkline's building block."""
        ts = self.ts
        index = bisect_right(ts, t) - 1
        if index < 0:
            return 0
        run = bisect_right(self.run_start, index) - 1
        total: int = self.run_work[run]
        code = self.run_code[run]
        if code >= 0 and code & 3 == WORKING:
            end = self.end_of(index)
            inside = self.counted_between(self.run_start[run], index)
            total += inside + (t if t < end else end) - ts[index]
        return total

    def span(self, lo: int, hi: int) -> tuple[int, int]:
        """Index range [a, b) of the events with lo <= ts < hi."""
        return bisect_left(self.ts, lo), bisect_left(self.ts, hi)

    def last_index(self, at_us: int) -> int:
        """Index of the last event at or before `at_us` (-1 when there is none)."""
        return bisect_right(self.ts, at_us) - 1

    def intervals(self, lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
        """(start, end, state code) of every non-empty interval clipped to [lo, hi), in order.

        The state code is -1 for time before the first state event (not counted). Stretches
        between intervals (a gap longer than max_gap) are not reported: they are unobserved.
        """
        ts, cur = self.ts, self.cur
        n = len(ts)
        first = max(bisect_right(ts, lo) - 1, 0)
        stop = bisect_left(ts, hi)
        gap = self.max_gap_us
        for index in range(first, stop):
            start = ts[index]
            end = start + gap
            if index + 1 < n and ts[index + 1] < end:
                end = ts[index + 1]
            if start < lo:
                start = lo
            if end > hi:
                end = hi
            if end > start:
                yield start, end, cur[index]

    def time_at_station(self, station: int, lo: int, hi: int) -> tuple[int, int, int]:
        """Counted (working, idle, absent) µs in [lo, hi) while a state at `station` was in force.

        Walks runs, not events: a run's counted time is one prefix-sum difference, and only the
        intervals cut by `lo` and `hi` are measured on their own.
        """
        totals = [0, 0, 0]
        ts, run_start, run_code = self.ts, self.run_start, self.run_code
        n = len(ts)
        if not n or hi <= lo:
            return 0, 0, 0
        first = max(bisect_right(ts, lo) - 1, 0)
        stop = bisect_left(ts, hi)  # intervals first..stop-1 reach into [lo, hi)
        runs = len(run_start)
        run = bisect_right(run_start, first) - 1
        while run < runs and run_start[run] < stop:
            code = run_code[run]
            following = run_start[run + 1] if run + 1 < runs else n
            if code >= 0 and code >> 2 == station and code & 3 != PRODUCT:
                a, b = max(run_start[run], first), min(following, stop)
                if b < n:
                    length = self.counted_between(a, b)
                else:  # the last interval is closed by max_gap, not by a next event
                    length = self.counted_between(a, n - 1) + self.end_of(n - 1) - ts[n - 1]
                # Cut the first interval at lo and the last at hi.
                length -= max(0, min(self.end_of(a), lo) - ts[a])
                length -= max(0, self.end_of(b - 1) - max(hi, ts[b - 1]))
                totals[code & 3] += length
            run += 1
        return totals[0], totals[1], totals[2]

    def idle_start(self, hi: int) -> int | None:
        """Start of the unbroken idle stretch that runs up to `hi`, or None when the worker is
        not idle then (another state, or unobserved: no state yet, or a gap over max_gap).

        Walks back over runs, not events: idle runs at different stations join when no time
        was dropped between them, and within a run `lost` shows a dropped gap by bisection.
        """
        ts, lost, run_start, run_code = self.ts, self.lost, self.run_start, self.run_code
        index = bisect_left(ts, hi) - 1  # the last interval reaching into [.., hi)
        if index < 0 or self.end_of(index) < hi:
            return None
        run = bisect_right(run_start, index) - 1
        if run_code[run] < 0 or run_code[run] & 3 != IDLE:
            return None
        while True:
            first = run_start[run]
            # The stretch starts after the last dropped gap in this run, if there is one.
            joined = bisect_left(lost, lost[index], first, index + 1)
            if joined > first or run == 0 or lost[first] != lost[first - 1]:
                return ts[joined]
            previous = run_code[run - 1]
            if previous < 0 or previous & 3 != IDLE:
                return ts[first]
            run -= 1
            index = first - 1

    def units_at_station(self, station: int, lo: int, hi: int) -> int:
        """Units of this worker's product events at `station` with lo <= ts < hi."""
        a, b = self.span(lo, hi)
        code = station * 4 + PRODUCT
        return sum(
            units for own, units in zip(self.own[a:b], self.count[a:b], strict=True) if own == code
        )

    def working_runs(self, lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
        """(start, end, station index) of maximal working stretches clipped to [lo, hi).

        Walks runs, not events: within a working run, the stretch only breaks where the
        max_gap cap dropped time, which `lost` finds by bisection. Back-to-back heartbeats at
        one station therefore cost nothing, however many there are.
        """
        ts, lost, run_start, run_code = self.ts, self.lost, self.run_start, self.run_code
        n = len(ts)
        if not n:
            return
        first = max(bisect_right(ts, lo) - 1, 0)
        stop = bisect_left(ts, hi)  # intervals first..stop-1 reach into [lo, hi)
        runs = len(run_start)
        run = bisect_right(run_start, first) - 1
        while run < runs and run_start[run] < stop:
            code = run_code[run]
            following = run_start[run + 1] if run + 1 < runs else n
            if code >= 0 and code & 3 == WORKING:
                index = max(run_start[run], first)
                end_index = min(following, stop)
                while index < end_index:
                    # The stretch runs until the first interval after which time was dropped.
                    broken = bisect_right(lost, lost[index], index + 1, end_index)
                    start, end = ts[index], self.end_of(broken - 1)
                    if start < lo:
                        start = lo
                    if end > hi:
                        end = hi
                    if end > start:
                        yield start, end, code >> 2
                    index = broken
            run += 1

    def nbytes(self) -> int:
        """Bytes held by the columns (for the memory figure of the benchmark)."""
        columns = (self.ts, self.hk, self.own, self.cur, self.count, self.conf, self.lost)
        prefixes = (self.units, self.conf_sum)
        runs = (self.run_start, self.run_code, self.run_work, self.run_idle, self.run_absent)
        return sum(
            column.buffer_info()[1] * column.itemsize for column in columns + prefixes + runs
        )


def _transpose(entries: list[Entry]) -> Columns:
    ts, hk, own, count, conf = (list(column) for column in zip(*entries, strict=True))
    return ts, hk, own, count, conf


def renumbered(codes: array[int], numbers: Sequence[int]) -> array[int]:
    """Own or state codes in another station numbering: `numbers[code]` (-1, no state, is the
    last entry of `numbers` and stays -1)."""
    return array("i", list(map(numbers.__getitem__, codes)))


def _shifted(values: array[int], base: int) -> list[int]:
    """Each of `values` plus `base`."""
    return list(map(add, values, repeat(base))) if base else values.tolist()


def as_lists(columns: Columns | HeldColumns) -> Columns:
    """Columns as lists (the general merge path edits lists, not arrays)."""
    ts, hk, own, count, conf = (
        column if isinstance(column, list) else column.tolist() for column in columns
    )
    return ts, hk, own, count, conf


def _slice_columns(columns: Columns, start: int) -> Columns:
    ts, hk, own, count, conf = (column[start:] for column in columns)
    return ts, hk, own, count, conf


def _concat_columns(first: Columns, second: Columns) -> Columns:
    ts, hk, own, count, conf = (a + b for a, b in zip(first, second, strict=True))
    return ts, hk, own, count, conf


def _unique_sorted(entries: list[Entry]) -> list[Entry]:
    """Drop repeats of one (ts, hash key) from a sorted list: they are the same event."""
    keys = list(map(itemgetter(1), entries))
    if len(set(keys)) == len(keys):
        return entries
    unique = [entries[0]]
    for entry in islice(entries, 1, None):
        last = unique[-1]
        if entry[0] != last[0] or entry[1] != last[1]:
            unique.append(entry)
    return unique
