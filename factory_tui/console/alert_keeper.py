"""The console's alerts: conditions evaluated once per tick and kept in the alerts table.

The rules themselves are pure and live in the engine (`engine.drift`, `engine.alerts`); the
drift tracker's warm start is `warm_start.load_drift_history`. `AlertKeeper` evaluates the
conditions of a tick and, in the process that owns the listener, keeps the `alerts` table in
step, writing only when a condition started, ended or changed its text. Viewers never write:
they read the table.

No Textual, no clock reads: time is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

from factory_tui.config import AlertSettings, Settings
from factory_tui.engine.alerts import AlertCondition, evaluate_alerts
from factory_tui.engine.drift import DriftSettings, DriftTracker, ModelDrift
from factory_tui.engine.snapshot import Snapshot
from factory_tui.models import from_utc_us
from factory_tui.records import AlertRecord
from factory_tui.storage import Store, StoreError
from factory_tui.view_models import AlertsState

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


def in_shift(settings: Settings, at_us: int) -> bool:
    """True when a configured shift is running at `at_us` (dark cameras only alert then)."""
    moment: datetime = from_utc_us(at_us)
    return any(shift.window_at(moment, settings.tz) is not None for shift in settings.shifts)


class AlertKeeper:
    """Evaluates the alert conditions of a tick and keeps the alerts table in step with them.

    `writer` is a writable store (the process that owns the listener) or None (a viewer,
    which evaluates nothing and reads the table the owner writes). `in_memory` (a console over
    many sites, whose boxes do not forward their alerts tables) evaluates the conditions itself
    and shows them without writing them anywhere.
    """

    def __init__(
        self, settings: Settings, writer: Store | None, *, in_memory: bool = False
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.in_memory = in_memory and writer is None
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
        except StoreError as error:
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
        if self.in_memory:
            held = self.evaluate(snapshot, drift, idle_since_of) if evaluate else ()
            active = held_alerts(held, snapshot.at_us)
            return AlertsState(active=active, drift=drift, history=active if history else None)
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


def held_alerts(conditions: Sequence[AlertCondition], at_us: int) -> tuple[AlertRecord, ...]:
    """Conditions holding now, shown as active alerts (newest first) without a table."""
    records = [
        AlertRecord(
            0, item.kind, item.subject, item.details, min(item.since_us or at_us, at_us), None
        )
        for item in conditions
    ]
    records.sort(key=lambda record: (-record.started_us, record.kind, record.subject))
    return tuple(records)
