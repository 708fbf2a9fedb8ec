"""One worker's timeline: its events sorted by (timestamp, event_hash) and prefix sums over them.

The metric rules of DESIGN.md count time *sighting to sighting*: event `i` opens an interval
`[ts[i], min(ts[i+1], ts[i] + max_gap))` (the last one: `[ts[i], ts[i] + max_gap)`), counted in
the state set by the latest state event at or before `i`. Each interval depends only on its own
event, the next event and the state in force, so the intervals of the *whole* history are fixed
by the data alone. A query with a given `at` is the same set of intervals cut at `at`: the
interval of the last event at or before `at` ends at `min(next event, ts + max_gap)`, and the
next event lies after `at`, so cutting at `at` gives exactly `min(at, ts + max_gap)`.

That is what makes the structure both exact and cheap:

- columns are `array`s (a few bytes per event, not a Python object per event);
- `p_work/p_idle/p_absent[i]` hold the counted microseconds of intervals `0..i-1`, so the time
  counted before any instant `t` is one bisect plus the part of a single interval
  (`counted(t)`), and any window is the difference of two such lookups;
- new events after the last one are appended; a late event is inserted where it belongs and only
  the tail from there is recomputed, with C-level `map`/`accumulate` doing the arithmetic.

Everything is integer microseconds except confidence (a float, summed in timeline order so the
sum does not depend on arrival order).
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate, islice, repeat
from operator import and_, eq, itemgetter, mul, sub
from typing import Final

WORKING: Final = 0
IDLE: Final = 1
ABSENT: Final = 2
PRODUCT: Final = 3
"""Kind codes. An event is stored as `station_index * 4 + kind` (its "own" code)."""
NO_STATE: Final = -1
"""The state code before the worker's first state event (`NO_STATE & 3 == PRODUCT`, so it never
matches a counted state)."""

KIND_CODES: Final[dict[str, int]] = {
    "working": WORKING,
    "idle": IDLE,
    "absent": ABSENT,
    "product_count": PRODUCT,
}

Entry = tuple[int, int, int, int, float]
"""One event as the timeline stores it: (ts_us, hash_key, own code, count, confidence)."""

_HEX_DIGITS: Final = frozenset("0123456789abcdef")
_PREFIX = itemgetter(slice(0, 16))


def hash_key(event_hash: str) -> int:
    """The 64-bit tie-break / dedup key of an event hash.

    For a SHA-256 hex digest (what the store writes: 64 characters, lowercase hex) it is the
    value of its first 16 hex digits, so ordering by the key is ordering by `event_hash`. Any
    other string (hand-made test rows) gets the first 64 bits of its own SHA-256: still
    deterministic and independent of arrival order.
    """
    if len(event_hash) == 64 and _HEX_DIGITS.issuperset(event_hash[:16]):
        return int(event_hash[:16], 16)
    return int.from_bytes(hashlib.sha256(event_hash.encode("utf-8")).digest()[:8], "big")


def hash_keys(hashes: Sequence[str]) -> list[int]:
    """`hash_key` of many hashes; the common all-SHA-256 case runs at C speed."""
    prefixes = list(map(_PREFIX, hashes))
    if set(map(len, hashes)) <= {64} and _HEX_DIGITS.issuperset("".join(prefixes)):
        return list(map(int, prefixes, repeat(16)))
    return [hash_key(value) for value in hashes]


class WorkerTimeline:
    """All events of one worker, sorted by (ts_us, hash key), with prefix sums of counted time.

    `max_gap_us` caps every interval. Appending, inserting and querying are documented on the
    methods; nothing here reads a clock or does I/O.
    """

    __slots__ = (
        "max_gap_us",
        "ts",
        "hk",
        "own",
        "cur",
        "count",
        "conf",
        "p_work",
        "p_idle",
        "p_absent",
        "units",
        "conf_sum",
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
        self.conf: array[float] = array("d")
        self.p_work: array[int] = array("q")
        """Counted working µs of intervals 0..i-1 (same length as `ts`)."""
        self.p_idle: array[int] = array("q")
        self.p_absent: array[int] = array("q")
        self.units: array[int] = array("q", [0])
        """Units of events 0..i-1 (one longer than `ts`)."""
        self.conf_sum: array[float] = array("d", [0.0])
        """Summed confidence of events 0..i-1 (one longer than `ts`)."""

    def __len__(self) -> int:
        return len(self.ts)

    # --- folding events in ------------------------------------------------------------------

    def merge(self, batch: list[Entry]) -> tuple[list[Entry], int, int]:
        """Fold entries in (any order, duplicates allowed); only the touched tail is recomputed.

        Returns (the entries that were new, in timeline order; start; end) where [start, end)
        bounds every instant whose counted state or station may have changed. When nothing was
        new the list is empty and the bounds are meaningless.
        """
        batch.sort()
        batch = _unique_sorted(batch)
        ts, hk = self.ts, self.hk
        n = len(ts)
        head = batch[0]
        if n == 0 or head[0] > ts[-1] or (head[0] == ts[-1] and head[1] > hk[-1]):
            fresh = batch
            position = n
            self._extend(batch)
        else:
            fresh = [entry for entry in batch if not self._contains(entry[0], entry[1])]
            if not fresh:
                return fresh, 0, 0
            position = self._position(fresh[0][0], fresh[0][1])
            old = list(
                zip(
                    ts[position:],
                    hk[position:],
                    self.own[position:],
                    self.count[position:],
                    self.conf[position:],
                    strict=True,
                )
            )
            for column in (ts, hk, self.own, self.count, self.conf):
                del column[position:]
            # Both runs are sorted, so this sort is a linear merge.
            old.extend(fresh)
            old.sort()
            self._extend(old)
        self._recompute(position)
        return fresh, self._touched_from(position), self._touched_until(fresh[-1])

    def _extend(self, entries: list[Entry]) -> None:
        ts, hk, own, count, conf = zip(*entries, strict=True)
        self.ts.extend(ts)
        self.hk.extend(hk)
        self.own.extend(own)
        self.count.extend(count)
        self.conf.extend(conf)

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
        """Recompute the derived columns from `position` to the end."""
        ts, own, cur = self.ts, self.own, self.cur
        n = len(ts)
        state = cur[position - 1] if position else NO_STATE
        del cur[position:]
        carried: list[int] = []
        append = carried.append
        for code in own[position:]:
            if code & 3 != PRODUCT:
                state = code
            append(state)
        cur.extend(carried)

        prefixes = (self.p_work, self.p_idle, self.p_absent)
        if position == 0:
            for prefix in prefixes:
                del prefix[:]
                prefix.append(0)
        first = max(position, 1)
        if n > first:
            # Interval k (closed by event k+1) adds min(ts[k+1] - ts[k], max_gap) to its state.
            window = ts[first - 1 :]
            spans = list(map(min, map(sub, window[1:], window[:-1]), repeat(self.max_gap_us)))
            states = list(map(and_, cur[first - 1 : n - 1], repeat(3)))
            for kind, prefix in zip((WORKING, IDLE, ABSENT), prefixes, strict=True):
                base = prefix[first - 1]
                del prefix[first:]
                added = map(mul, spans, map(eq, states, repeat(kind)))
                prefix.extend(islice(accumulate(added, initial=base), 1, None))

        del self.units[position + 1 :]
        self.units.extend(
            islice(accumulate(self.count[position:], initial=self.units[position]), 1, None)
        )
        del self.conf_sum[position + 1 :]
        self.conf_sum.extend(
            islice(accumulate(self.conf[position:], initial=self.conf_sum[position]), 1, None)
        )

    def _touched_from(self, position: int) -> int:
        # The interval before the first new event now ends earlier (or later).
        return self.ts[position - 1] if position else self.ts[0]

    def _touched_until(self, last_new: Entry) -> int:
        # States carry forward until the next state event; from there on nothing changed.
        index = self._position(last_new[0], last_new[1]) + 1
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

    def counted(self, t: int) -> tuple[int, int, int]:
        """Counted (working, idle, absent) µs before instant `t`, no `at` cut.

        For a query at `at`, pass `min(t, at)`: the history cut at `at` is this one clipped there.
        """
        ts = self.ts
        index = bisect_right(ts, t) - 1
        if index < 0:
            return 0, 0, 0
        working, idle, absent = self.p_work[index], self.p_idle[index], self.p_absent[index]
        kind = self.cur[index] & 3
        if kind != PRODUCT:
            end = self.end_of(index)
            part = (t if t < end else end) - ts[index]
            if kind == WORKING:
                working += part
            elif kind == IDLE:
                idle += part
            else:
                absent += part
        return working, idle, absent

    def working_before(self, t: int) -> int:
        """Counted working µs before `t` (no `at` cut); the sparkline's building block."""
        ts = self.ts
        index = bisect_right(ts, t) - 1
        if index < 0:
            return 0
        total: int = self.p_work[index]
        if self.cur[index] & 3 == WORKING:
            end = self.end_of(index)
            total += (t if t < end else end) - ts[index]
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

    def working_runs(self, lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
        """(start, end, station index) of maximal working stretches clipped to [lo, hi).

        Contiguous working intervals at one station (a camera's heartbeats) come out as one run.
        """
        run_start = run_end = run_station = -1
        for start, end, code in self.intervals(lo, hi):
            if code < 0 or code & 3 != WORKING:
                continue
            station = code >> 2
            if station == run_station and start == run_end:
                run_end = end
                continue
            if run_station >= 0:
                yield run_start, run_end, run_station
            run_start, run_end, run_station = start, end, station
        if run_station >= 0:
            yield run_start, run_end, run_station

    def nbytes(self) -> int:
        """Bytes held by the columns (for the memory figure of the benchmark)."""
        columns = (self.ts, self.hk, self.own, self.cur, self.count, self.conf)
        prefixes = (self.p_work, self.p_idle, self.p_absent, self.units, self.conf_sum)
        return sum(column.buffer_info()[1] * column.itemsize for column in columns + prefixes)


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
