"""A rate over a sliding window of recent counts; time is passed in, as everywhere in engine/."""

from __future__ import annotations

from collections import deque


class RateMeter:
    """Counts per second over the last `window_s` seconds.

    With `started_s`, a meter younger than its window divides by its age (at least one second),
    so a rate reads right from the start instead of climbing for `window_s` seconds.
    """

    def __init__(self, window_s: float = 5.0, started_s: float | None = None) -> None:
        self.window_s = window_s
        self.started_s = started_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at_s: float, count: int) -> None:
        """Count `count` things at `at_s` (seconds on any monotonic clock)."""
        self._samples.append((at_s, count))

    def per_second(self, now_s: float) -> float:
        """The rate at `now_s`; samples older than the window are forgotten."""
        samples = self._samples
        while samples and samples[0][0] < now_s - self.window_s:
            samples.popleft()
        span = self.window_s
        if self.started_s is not None:
            span = min(self.window_s, max(now_s - self.started_s, 1.0))
        return sum(count for _, count in samples) / span
