"""Workstation building blocks: units counted per station, and the union of occupied time.

A station is occupied while at least one worker's counted time is `working` there; two workers
at one station for the same hour make one occupied hour, not two. The engine keeps occupancy in
five-minute blocks (see `Engine`); this module holds the pure pieces it is built from.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import accumulate, islice

Span = tuple[int, int]
"""A half-open stretch of time [start_us, end_us)."""


def union_length(spans: list[Span]) -> int:
    """Microseconds covered by at least one of the spans (sorts `spans` in place)."""
    if not spans:
        return 0
    spans.sort()
    total = 0
    run_start, run_end = spans[0]
    for start, end in islice(spans, 1, None):
        if start > run_end:
            total += run_end - run_start
            run_start, run_end = start, end
        elif end > run_end:
            run_end = end
    return total + run_end - run_start


def union_spans(spans: list[Span]) -> list[Span]:
    """The spans merged into disjoint, sorted stretches (touching stretches join)."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


class StationUnits:
    """The product_count events of one station: timestamps and a prefix sum of their counts."""

    __slots__ = ("ts", "units")

    def __init__(self) -> None:
        self.ts: array[int] = array("q")
        self.units: array[int] = array("q", [0])
        """Units of events 0..i-1 (one longer than `ts`)."""

    def add(self, events: list[tuple[int, int]]) -> None:
        """Fold in (ts_us, count) pairs of events not seen before (the worker timelines dedup)."""
        events.sort()
        ts = self.ts
        if not ts or events[0][0] >= ts[-1]:
            position = len(ts)
            tail = events
        else:
            position = bisect_left(ts, events[0][0])
            tail = sorted(
                [(ts[i], self.units[i + 1] - self.units[i]) for i in range(position, len(ts))]
                + events
            )
            del ts[position:]
        ts.fromlist([item[0] for item in tail])
        base = self.units[position]
        del self.units[position:]
        self.units.fromlist(list(accumulate((item[1] for item in tail), initial=base)))

    def between(self, lo: int, hi: int) -> int:
        """Units of events with lo <= ts < hi."""
        if hi <= lo:
            return 0
        return self.units[bisect_left(self.ts, hi)] - self.units[bisect_left(self.ts, lo)]

    def prune(self, before_us: int) -> int:
        """Forget the events with ts < `before_us` (counts from there on are unchanged);
        returns how many were dropped."""
        dropped = bisect_left(self.ts, before_us)
        if dropped:
            del self.ts[:dropped]
            del self.units[:dropped]
        return dropped

    def nbytes(self) -> int:
        """Bytes held by the columns."""
        return sum(col.buffer_info()[1] * col.itemsize for col in (self.ts, self.units))
