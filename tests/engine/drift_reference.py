"""A brute-force reference for model drift (engine/drift.py), from its documentation alone.

The rules (README "Alerts", the `[alerts]` settings, `DriftSettings` and `ModelDrift`):

- Events are grouped by `model_version` (none: `(none)`); a stored event (one store id) counts
  once however often it is folded in.
- Figures at `at` are taken at the last whole minute at or before `at` ("now"): only events
  before now count. A model is listed once its first event's minute has ended.
- Every duration setting is a whole number of minutes (seconds / 60, rounded, at least one).
- The baseline period is the model's first `baseline_s`, starting at the start of the minute of
  its first event. Until it has ended there is no measured baseline and no rate; the configured
  `baselines[model]` is shown from the start, but nothing is judged during the baseline period.
- Confidence drifts when, at every whole-minute boundary of the last `sustain_s` (now, and each
  minute back to now - sustain_s), the mean confidence over the `window_s` before that boundary
  is more than `drop` below the baseline; a window with fewer than `min_events` events is too
  thin to judge (and then no rolling mean is shown).
- Rate drifts when, at each of those boundaries, units/h over the `rate_window_s` before it
  departs from the baseline units/h by more than `rate_change` of it, either way. A baseline of
  zero units/h never drifts (there is no rate to depart from). The units/h are taken over the
  minutes the model was sending in: from the minute of its first event in the window to the
  minute of its last, inclusive, widened on each side by its longest gap between two minutes
  with events in the window, and kept within the window. A rate window with fewer than
  `min_events` events (and always one without any: silence is not drift), or sent in for less
  than half its minutes, is not judged (and then no rolling rate is shown).

Nothing here is incremental: every figure filters the raw event list again, with exact
fractions. Confidences are taken in micro-units (the tracker's documented resolution).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from factory_tui.engine.drift import DriftSettings
from factory_tui.models import EventRecord

MINUTE_US = 60_000_000
UNKNOWN = "(none)"


@dataclass(frozen=True)
class ExpectedDrift:
    """What `ModelDrift` must say, with exact numbers."""

    model_version: str
    events: int
    mean_confidence: Fraction | None
    baseline_confidence: Fraction | None
    rolling_confidence: Fraction | None
    confidence_drifting: bool
    baseline_uph: Fraction | None
    rolling_uph: Fraction | None
    rate_drifting: bool


def whole_minutes(seconds: float) -> int:
    """A duration setting in whole minutes, at least one."""
    return max(1, round(Fraction(seconds) / 60))


def reference_drift(
    rows: Iterable[EventRecord], settings: DriftSettings, at_us: int
) -> list[ExpectedDrift]:
    """Every model's figures at `at_us`, sorted by model_version."""
    stored: dict[int, EventRecord] = {}
    for row in rows:
        stored.setdefault(row.id, row)
    by_model: dict[str, list[EventRecord]] = defaultdict(list)
    for row in stored.values():
        by_model[row.model_version or UNKNOWN].append(row)
    now = at_us - at_us % MINUTE_US  # the last whole minute at or before `at`
    return [
        _model(model, events, settings, now)
        for model, events in sorted(by_model.items())
        if _minute_start(min(event.ts_us for event in events)) < now
    ]


def _minute_start(ts_us: int) -> int:
    return ts_us - ts_us % MINUTE_US


def _mean(events: list[EventRecord]) -> Fraction | None:
    if not events:
        return None
    return Fraction(sum(round(e.confidence * 1_000_000) for e in events), 1_000_000 * len(events))


def _units_per_hour(events: list[EventRecord], minutes: int) -> Fraction:
    units = sum(e.count for e in events if e.event_type == "product_count")
    return Fraction(units * 60, minutes)


def _model(model: str, events: list[EventRecord], cfg: DriftSettings, now: int) -> ExpectedDrift:
    def before(lo: int | None, hi: int) -> list[EventRecord]:
        return [e for e in events if (lo is None or lo <= e.ts_us) and e.ts_us < hi]

    start = _minute_start(min(e.ts_us for e in events))
    baseline_minutes = whole_minutes(cfg.baseline_s)
    baseline_end = start + baseline_minutes * MINUTE_US
    complete = now >= baseline_end
    in_baseline = before(start, baseline_end)

    configured = cfg.baselines.get(model)
    baseline: Fraction | None = None
    if configured is not None:
        baseline = Fraction(configured)
    elif complete:
        baseline = _mean(in_baseline)
    baseline_uph = _units_per_hour(in_baseline, baseline_minutes) if complete else None

    window = whole_minutes(cfg.window_s) * MINUTE_US
    rate_minutes = whole_minutes(cfg.rate_window_s)

    def confidence_low(boundary: int) -> bool:
        if baseline is None or boundary < baseline_end:
            return False
        recent = before(boundary - window, boundary)
        mean = _mean(recent)
        if len(recent) < cfg.min_events or mean is None:
            return False
        return baseline - mean > Fraction(cfg.drop)

    def rolling_uph(boundary: int) -> Fraction | None:
        recent = before(boundary - rate_minutes * MINUTE_US, boundary)
        if len(recent) < max(1, cfg.min_events):
            return None
        sent = sorted({_minute_start(e.ts_us) // MINUTE_US for e in recent})
        gap = max([1] + [b - a for a, b in zip(sent, sent[1:], strict=False)])
        lo = boundary // MINUTE_US - rate_minutes
        sending = min(boundary // MINUTE_US, sent[-1] + gap) - max(lo, sent[0] - gap + 1)
        if 2 * sending < rate_minutes:
            return None
        return _units_per_hour(recent, sending)

    def rate_departs(boundary: int) -> bool:
        if not baseline_uph or boundary < baseline_end:
            return False
        uph = rolling_uph(boundary)
        if uph is None:
            return False
        return abs(uph - baseline_uph) > Fraction(cfg.rate_change) * baseline_uph

    sustain = whole_minutes(cfg.sustain_s) if cfg.sustain_s > 0 else 0
    boundaries = [now - k * MINUTE_US for k in range(sustain + 1)]
    rolling = before(now - window, now)
    return ExpectedDrift(
        model_version=model,
        events=len(before(None, now)),
        mean_confidence=_mean(before(None, now)),
        baseline_confidence=baseline,
        rolling_confidence=_mean(rolling) if len(rolling) >= cfg.min_events else None,
        confidence_drifting=all(confidence_low(b) for b in boundaries),
        baseline_uph=baseline_uph,
        rolling_uph=rolling_uph(now) if complete else None,
        rate_drifting=all(rate_departs(b) for b in boundaries),
    )
