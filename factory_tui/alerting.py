"""Alerts for the console: model drift fed from the store, conditions evaluated once per tick.

The rules themselves are pure and live in the engine (`engine.drift`, `engine.alerts`); this
module connects them to the store the way the console's tick needs:

- `load_drift_history` gives a fresh `DriftTracker` what its checks at `at` can look at — each
  model's baseline period (its first `baseline_s` in the database) and the last few rolling
  windows — without reading the database's whole history at start-up.
- `AlertKeeper` evaluates the conditions of a tick and, in the process that owns the listener,
  keeps the `alerts` table in step, writing only when a condition started, ended or changed
  its text. Viewers never write: they read the table.

No Textual, no clock reads: time is passed in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from factory_tui.config import AlertSettings, Settings
from factory_tui.engine.alerts import AlertCondition, evaluate_alerts
from factory_tui.engine.drift import BUCKET_US, DriftSettings, DriftTracker, ModelDrift
from factory_tui.engine.snapshot import US_PER_S, Snapshot
from factory_tui.models import from_utc_us
from factory_tui.store import AlertRecord, Store, StoreError

ALERT_HISTORY: Final = 200
"""Alerts (active and cleared) listed in the alerts view."""


def drift_settings(alerts: AlertSettings) -> DriftSettings:
    """The drift thresholds of the `[alerts]` config section."""
    return DriftSettings(
        window_s=alerts.drift_window_s,
        drop=alerts.drift_drop,
        sustain_s=alerts.drift_sustain_s,
        baseline_s=alerts.baseline_s,
        baselines=dict(alerts.baseline_confidence),
        rate_window_s=alerts.rate_window_s,
        rate_change=alerts.rate_change,
    )


def drift_floor(settings: DriftSettings, at_us: int) -> int:
    """The oldest timestamp the rolling checks of `DriftTracker.status(at_us)` look at.

    Each check looks back one window (confidence or rate, the longer) from each of the
    minute boundaries of the sustain period; one spare minute covers rounding.
    """
    minutes = (max(settings.window_s, settings.rate_window_s) + settings.sustain_s) / 60
    return (at_us // BUCKET_US - int(minutes) - 2) * BUCKET_US


def load_drift_history(tracker: DriftTracker, store: Store, at_us: int) -> int:
    """Fold into `tracker` what its checks at `at_us` need; returns how many events were new.

    That is every event from `drift_floor` on, and for each model seen before it, the events
    of its baseline period (its first `baseline_s`). Events in between cannot change a check
    at `at_us`; leaving them out keeps a start-up on a long history quick. The tracker's
    all-time `events` and `mean_confidence` then cover only what was loaded, so the console
    does not show them.
    """
    floor = drift_floor(tracker.settings, at_us)
    baseline_us = round(tracker.settings.baseline_s * US_PER_S)
    added = 0
    for model, first_us in store.model_first_seen():
        if first_us >= floor:
            continue
        end = min(first_us + baseline_us, floor)
        added += tracker.apply(
            row for row in store.iter_range(first_us, end) if row.model_version == model
        )
    added += tracker.apply(store.iter_range(floor, None))
    return added


def in_shift(settings: Settings, at_us: int) -> bool:
    """True when a configured shift is running at `at_us` (dark cameras only alert then)."""
    moment: datetime = from_utc_us(at_us)
    return any(shift.window_at(moment, settings.tz) is not None for shift in settings.shifts)


@dataclass(frozen=True, slots=True)
class AlertsState:
    """What the views show about alerts after a tick."""

    active: tuple[AlertRecord, ...]
    """Alerts not cleared yet, newest first (read from the table: the owner's view of them)."""
    drift: tuple[ModelDrift, ...]
    """Every model's drift figures at the tick's `at`."""
    history: tuple[AlertRecord, ...] | None = None
    """Recent alerts, active and cleared, newest first; None when not read this tick (they
    are only read while the alerts view is on)."""
    error: str | None = None
    """Why the alerts could not be written or read this tick (the figures may be behind)."""

    @property
    def count(self) -> int:
        """Number of active alerts."""
        return len(self.active)


class AlertKeeper:
    """Evaluates the alert conditions of a tick and keeps the alerts table in step with them.

    `writer` is a writable store (the process that owns the listener) or None (a viewer,
    which evaluates nothing and reads the table the owner writes).
    """

    def __init__(self, settings: Settings, writer: Store | None) -> None:
        self.settings = settings
        self.writer = writer
        self.tracker = DriftTracker(drift_settings(settings.alerts))
        self._written: tuple[AlertCondition, ...] | None = None
        """The conditions the table last matched (None: not synced since start)."""

    def evaluate(
        self,
        snapshot: Snapshot,
        drift: Sequence[ModelDrift],
        idle_since_of: Callable[[str], int | None],
    ) -> tuple[AlertCondition, ...]:
        """The conditions holding at `snapshot.at_us` (see `engine.alerts.evaluate_alerts`)."""
        return evaluate_alerts(
            snapshot,
            drift,
            max_gap_s=self.settings.metrics.max_gap_s,
            idle_s=self.settings.alerts.idle_s,
            in_shift=in_shift(self.settings, snapshot.at_us),
            idle_since_of=idle_since_of,
        )

    def sync(self, conditions: tuple[AlertCondition, ...], at_us: int) -> str | None:
        """Write the conditions to the table when they differ from what it last got.

        Returns None, or the reason the write failed (it is tried again next tick). The first
        call always writes, so alerts a previous run left active are cleared if they ended.
        """
        if self.writer is None or conditions == self._written:
            return None
        try:
            self.writer.sync_alerts(
                [
                    (item.kind, item.subject, item.details, min(item.since_us or at_us, at_us))
                    for item in conditions
                ],
                at_us,
            )
        except (StoreError, sqlite3.Error) as error:
            return f"alerts not saved: {error}"
        self._written = conditions
        return None

    def state(
        self,
        reader: Store,
        snapshot: Snapshot,
        idle_since_of: Callable[[str], int | None],
        *,
        history: bool,
        evaluate: bool = True,
    ) -> AlertsState:
        """One tick's alerts: evaluate and write them (owner only, when `evaluate`), then read
        the table.

        The table is read back rather than the conditions shown, so the owner and its viewers
        show the same alerts, with the times they were raised.
        """
        drift = self.tracker.status(snapshot.at_us)
        error = None
        if self.writer is not None and evaluate:
            error = self.sync(self.evaluate(snapshot, drift, idle_since_of), snapshot.at_us)
        active = tuple(reader.alerts(active_only=True))
        recent = tuple(reader.alerts(limit=ALERT_HISTORY)) if history else None
        return AlertsState(active=active, drift=drift, history=recent, error=error)

    def close(self) -> None:
        """Close the writable store, if any."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
