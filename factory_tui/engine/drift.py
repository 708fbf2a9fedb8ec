"""Model drift: per model_version, rolling confidence and production rate against a baseline.

Events are folded into one-minute buckets per model. Confidence is summed as integer
micro-units, so every sum — and so every result — is the same whatever order and however often
events arrive. Rolling figures are taken at whole-minute boundaries (the last complete minute
before `at`), which makes them reproducible for a given `at`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from factory_tui.engine.natural import natural_key
from factory_tui.models import EventRecord

BUCKET_US = 60_000_000
BUCKET_S = 60
CONFIDENCE_SCALE = 1_000_000
UNKNOWN_MODEL = "(none)"
"""The model_version shown for events that carried none."""


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """Thresholds of the drift checks (see `[alerts]` in the config)."""

    window_s: float = 600.0
    drop: float = 0.10
    sustain_s: float = 300.0
    baseline_s: float = 3600.0
    baselines: Mapping[str, float] = field(default_factory=dict)
    rate_window_s: float = 1800.0
    rate_change: float = 0.5
    min_events: int = 5
    """A rolling window (confidence or rate) with fewer events of the model than this is too
    thin to judge."""
    retrain_after_s: float = 3600.0
    """A confidence or rate drift held this long suggests retraining the model."""


@dataclass(frozen=True, slots=True)
class ModelDrift:
    """One model version's confidence and production rate at `at`, and whether either drifts."""

    model_version: str
    events: int
    """Events of this model before the last whole minute at or before `at`."""
    mean_confidence: float | None
    baseline_confidence: float | None
    """The configured baseline, else the mean over the model's first `baseline_s`; None until
    that first period is complete."""
    rolling_confidence: float | None
    confidence_drifting: bool
    baseline_uph: float | None
    rolling_uph: float | None
    """Units/h over the part of the last `rate_window_s` the model sent in; None before the
    baseline period ends, or when that window is too thin to judge (fewer than `min_events`
    events, or sending in less than half of it)."""
    rate_drifting: bool
    confidence_held_s: int = 0
    """How long the confidence has been low without a break, in whole minutes (as seconds),
    counted up to `retrain_after_s` (a drift's age once it is sustained)."""
    rate_held_s: int = 0
    """The same for the production rate departing from its baseline."""
    retrain_suggested: bool = False
    """A confidence or rate drift has held for `retrain_after_s`."""
    window_events: int = 0
    """Events in the rolling confidence window (`window_s`)."""
    baseline_events: int = 0
    """Events in the baseline period (0 until it is complete)."""


@dataclass(slots=True)
class _Bucket:
    confidence_micro: int = 0
    events: int = 0
    units: int = 0


@dataclass(slots=True)
class _Series:
    buckets: dict[int, _Bucket] = field(default_factory=dict)
    first_us: int | None = None

    def add(self, row: EventRecord) -> None:
        bucket = self.buckets.setdefault(row.ts_us // BUCKET_US, _Bucket())
        bucket.confidence_micro += round(row.confidence * CONFIDENCE_SCALE)
        bucket.events += 1
        if row.event_type == "product_count":
            bucket.units += row.count
        if self.first_us is None or row.ts_us < self.first_us:
            self.first_us = row.ts_us

    def totals(self, first: int, stop: int) -> _Bucket:
        """Sums over the buckets with index in [first, stop)."""
        total = _Bucket()
        if stop - first > len(self.buckets):
            spans = (b for i, b in self.buckets.items() if first <= i < stop)
        else:
            spans = (b for i in range(first, stop) if (b := self.buckets.get(i)) is not None)
        for bucket in spans:
            total.confidence_micro += bucket.confidence_micro
            total.events += bucket.events
            total.units += bucket.units
        return total

    def sending(self, first: int, stop: int) -> tuple[_Bucket, int]:
        """Events and units summed over the buckets with index in [first, stop), and how many
        of those minutes the model was sending in (0: no event there).

        That is from the minute of its first event there to that of its last, widened on each
        side by its longest gap between two minutes with events there (a model whose events
        come every few minutes still covers the minutes between them), within [first, stop).
        Silence before its first event or after its last one, longer than that, is left out.
        """
        total = _Bucket()
        buckets = self.buckets
        if stop - first > len(buckets):
            minutes: Iterable[int] = sorted(i for i in buckets if first <= i < stop)
        else:
            minutes = range(first, stop)
        low = last = 0
        gap = 1
        for index in minutes:
            bucket = buckets.get(index)
            if bucket is None:
                continue
            if not total.events:
                low = index
            elif index - last > gap:
                gap = index - last
            last = index
            total.events += bucket.events
            total.units += bucket.units
        if not total.events:
            return total, 0
        return total, min(stop, last + gap) - max(first, low - gap + 1)


def _minutes(seconds: float) -> int:
    return max(1, round(seconds * 1_000_000 / BUCKET_US))


class DriftTracker:
    """Folds stored events in and reports per-model drift at any `at`."""

    def __init__(self, settings: DriftSettings | None = None) -> None:
        self.settings = settings or DriftSettings()
        self._series: dict[str, _Series] = {}
        self._seen: set[int] = set()
        """Store ids folded in (a stored event has one id; an int id costs half a hex hash)."""
        self._settled = -(2**63)
        """Rows with ids up to this one are never applied again (see `settle`)."""

    def apply(self, rows: Iterable[EventRecord]) -> int:
        """Fold stored rows in, ignoring rows (store ids) applied before; returns how many
        were new."""
        added = 0
        for row in rows:
            if row.id <= self._settled or row.id in self._seen:
                continue
            self._seen.add(row.id)
            model = row.model_version or UNKNOWN_MODEL
            self._series.setdefault(model, _Series()).add(row)
            added += 1
        return added

    def settle(self, store_id: int) -> None:
        """Rows with ids up to `store_id` are all folded in that ever will be (a reader past
        them by cursor): forget their ids, so a console left running does not grow by one id
        per event, and ignore them from now on."""
        if store_id > self._settled:
            self._settled = store_id
            self._seen = {seen for seen in self._seen if seen > store_id}

    def forget_before(self, cut_us: int) -> None:
        """Drop the minute sums before `cut_us`, except each model's baseline period, so a
        console left running stays flat. Checks whose windows start at or after `cut_us` are
        unchanged; `events` and `mean_confidence` then cover only what is kept (as after a
        warm start: the console does not show them)."""
        cut = cut_us // BUCKET_US
        baseline = _minutes(self.settings.baseline_s)
        for series in self._series.values():
            if series.first_us is None:
                continue
            kept_from = series.first_us // BUCKET_US + baseline
            for index in [index for index in series.buckets if kept_from <= index < cut]:
                del series.buckets[index]

    def status(self, at_us: int) -> tuple[ModelDrift, ...]:
        """Every model's drift figures at `at`, sorted by model_version."""
        now = at_us // BUCKET_US
        return tuple(
            self._model_status(model, series, now)
            for model, series in sorted(self._series.items(), key=lambda item: natural_key(item[0]))
            if series.first_us is not None and series.first_us // BUCKET_US < now
        )

    def _model_status(self, model: str, series: _Series, now: int) -> ModelDrift:
        cfg = self.settings
        assert series.first_us is not None
        start = series.first_us // BUCKET_US
        everything = series.totals(start, now)
        baseline_end = start + _minutes(cfg.baseline_s)
        has_baseline = now >= baseline_end
        measured = series.totals(start, baseline_end) if has_baseline else None

        base_conf: float | None = cfg.baselines.get(model)
        if base_conf is None and measured is not None and measured.events:
            base_conf = measured.confidence_micro / measured.events / CONFIDENCE_SCALE
        base_uph: float | None = None
        if measured is not None:
            base_uph = measured.units / (_minutes(cfg.baseline_s) / 60)

        sustain_checks = _minutes(cfg.sustain_s) + 1 if cfg.sustain_s > 0 else 1
        retrain_checks = _minutes(cfg.retrain_after_s) + 1
        longest = max(sustain_checks, retrain_checks)
        conf_held = _held(
            lambda boundary: self._confidence_low(series, boundary, base_conf, baseline_end),
            now,
            longest,
        )
        rate_held = _held(
            lambda boundary: self._rate_departs(series, boundary, base_uph, baseline_end),
            now,
            longest,
        )

        rolling = series.totals(now - _minutes(cfg.window_s), now)
        return ModelDrift(
            model_version=model,
            events=everything.events,
            mean_confidence=_mean(everything),
            baseline_confidence=base_conf,
            rolling_confidence=_mean(rolling) if rolling.events >= cfg.min_events else None,
            confidence_drifting=conf_held >= sustain_checks,
            baseline_uph=base_uph,
            rolling_uph=self._rolling_uph(series, now) if has_baseline else None,
            rate_drifting=rate_held >= sustain_checks,
            confidence_held_s=max(0, conf_held - 1) * BUCKET_S,
            rate_held_s=max(0, rate_held - 1) * BUCKET_S,
            # Never before the drift itself is sustained (a retrain_after_s under sustain_s).
            retrain_suggested=max(conf_held, rate_held) >= longest,
            window_events=rolling.events,
            baseline_events=measured.events if measured is not None else 0,
        )

    def _confidence_low(
        self, series: _Series, boundary: int, baseline: float | None, baseline_end: int
    ) -> bool:
        # Judged only after the baseline period: during it the model is its own baseline.
        if baseline is None or boundary < baseline_end:
            return False
        window = series.totals(boundary - _minutes(self.settings.window_s), boundary)
        if window.events < self.settings.min_events:
            return False
        mean = window.confidence_micro / window.events / CONFIDENCE_SCALE
        return baseline - mean > self.settings.drop

    def _rate_departs(
        self, series: _Series, boundary: int, baseline_uph: float | None, baseline_end: int
    ) -> bool:
        if not baseline_uph or boundary < baseline_end:
            return False
        uph = self._rolling_uph(series, boundary)
        if uph is None:
            return False
        return abs(uph - baseline_uph) > self.settings.rate_change * baseline_uph

    def _rolling_uph(self, series: _Series, boundary: int) -> float | None:
        """Units per hour over the part of the `rate_window_s` before `boundary` that the
        model was sending in; None (not judged) when the window holds fewer than `min_events`
        events of the model (none: silence is not a rate, a stopped camera is camera_dark's
        alert) or the model sent in less than half of it (a camera that stopped or started
        within it: its rate is not yet, or no longer, known)."""
        minutes = _minutes(self.settings.rate_window_s)
        window, sending = series.sending(boundary - minutes, boundary)
        if window.events < max(1, self.settings.min_events) or 2 * sending < minutes:
            return None
        return window.units * 60 / sending


def _held(holds: Callable[[int], bool], now: int, limit: int) -> int:
    """How many minute boundaries in a row, from `now` back, `holds` is true at (at most
    `limit`): a check that fails at `now` costs one call."""
    count = 0
    while count < limit and holds(now - count):
        count += 1
    return count


def _mean(total: _Bucket) -> float | None:
    return total.confidence_micro / total.events / CONFIDENCE_SCALE if total.events else None
