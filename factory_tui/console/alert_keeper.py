"""The console's alerts: conditions evaluated once per tick and kept in the alerts table.

The rules themselves are pure and live in the engine (`engine.drift`, `engine.alerts`); the
drift tracker's warm start is `warm_start.load_drift_history`. `AlertKeeper` evaluates the
conditions of a tick and, in the process that owns the listener, keeps the `alerts` table in
step, writing only when a condition started, ended or changed its text. Viewers never write:
they read the table. The owner also hands each alert it raises or clears to the alert actions
(`alert_actions.ActionRunner`, off the tick), and keeps the models a supervisor asked to
retrain (`request_retrain`).

No Textual, no clock reads: time is passed in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from factory_tui.alert_actions import (
    FAILURES_KEPT,
    ActionRunner,
    AlertEvent,
    audit_entry,
    failure_of,
)
from factory_tui.config import AlertSettings, Settings
from factory_tui.engine.alerts import (
    BY_HAND,
    RETRAIN_SUGGESTED,
    AlertCondition,
    Evidence,
    evaluate_alerts,
)
from factory_tui.engine.drift import DriftSettings, DriftTracker, ModelDrift
from factory_tui.engine.snapshot import Snapshot
from factory_tui.models import from_utc_us
from factory_tui.records import ACTION_FAILED, AlertRecord
from factory_tui.storage import Store, StoreError
from factory_tui.view_models import ActionFailure, AlertsState, natural_key

log = logging.getLogger("factory_tui.alerts")

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
        retrain_after_s=alerts.retrain_after_s,
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

    `actions` runs `[[alerts.actions]]` (by default built from the settings, for an owner
    only): each alert the table raises or clears is handed to it once. `announce`, if given,
    gets each of them too, in the tick's thread (`serve` logs them).
    """

    def __init__(
        self,
        settings: Settings,
        writer: Store | None,
        *,
        in_memory: bool = False,
        actions: ActionRunner | None = None,
        announce: Callable[[AlertEvent], None] | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.in_memory = in_memory and writer is None
        self.tracker = DriftTracker(drift_settings(settings.alerts))
        self.actions = actions
        self.announce = announce
        if actions is None and writer is not None:
            self.actions = ActionRunner.from_settings(settings)
        self._written: tuple[AlertCondition, ...] | None = None
        """The conditions the table last matched (None: not synced since start)."""
        self._active: dict[tuple[str, str], _Held] | None = None
        """What the table holds as active, by (kind, subject) (None: not read since start)."""
        self._by_hand: set[str] = set()
        """Model versions a supervisor asked to retrain."""
        self._hand_lock = threading.Lock()

    def evaluate(
        self,
        snapshot: Snapshot,
        drift: Sequence[ModelDrift],
        idle_since_of: Callable[[str], int | None],
    ) -> tuple[AlertCondition, ...]:
        """The conditions holding at `snapshot.at_us` (see `engine.alerts.evaluate_alerts`)."""
        with self._hand_lock:
            by_hand = frozenset(self._by_hand)
        return evaluate_alerts(
            snapshot,
            drift,
            max_gap_s=self.settings.metrics.max_gap_s,
            idle_s=self.settings.alerts.idle_s,
            in_shift=in_shift(self.settings, snapshot.at_us),
            idle_since_of=idle_since_of,
            drift_settings=self.tracker.settings,
            retrain_by_hand=by_hand,
        )

    def request_retrain(self, model_version: str) -> str:
        """A supervisor's key: raise retrain_suggested for the model by hand, or clear a
        hand-raised one. Takes effect on the next tick; returns what happened in words."""
        if self.writer is None and not self.in_memory:
            return "only the process that owns the listener (serve or a console) raises alerts"
        with self._hand_lock:
            if model_version in self._by_hand:
                self._by_hand.discard(model_version)
                return f"retrain suggestion for {model_version} withdrawn"
            self._by_hand.add(model_version)
        actions = " and handed to the alert actions" if self.actions is not None else ""
        return f"retrain suggested for {model_version}{actions}"

    def retrain_requested(self) -> frozenset[str]:
        """The model versions raised by hand."""
        with self._hand_lock:
            return frozenset(self._by_hand)

    def sync(self, conditions: tuple[AlertCondition, ...], at_us: int) -> str | None:
        """Write the conditions to the table when they differ from what it last got.

        Returns None, or the reason the write failed (it is tried again next tick). The first
        call always writes, so alerts a previous run left active are cleared if they ended.
        """
        if self.writer is None or conditions == self._written:
            return None
        try:
            if self._active is None:
                self._active = self._read_active(self.writer)
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
        self._hand_out(conditions, at_us)
        return None

    def _read_active(self, writer: Store) -> dict[tuple[str, str], _Held]:
        """The alerts a previous run left active: not raised again, cleared when they ended;
        hand-raised retrain suggestions are held again (raises StoreError)."""
        active = {}
        for alert in writer.alerts(active_only=True):
            active[(alert.kind, alert.subject)] = _Held(alert.started_us, alert.details, ())
            if alert.kind == RETRAIN_SUGGESTED and alert.details.endswith(BY_HAND):
                with self._hand_lock:
                    self._by_hand.add(alert.subject)
        return active

    def _hand_out(self, conditions: Sequence[AlertCondition], at_us: int) -> None:
        """Give the actions each alert raised or cleared by this write, once."""
        before = self._active or {}
        now = {
            (item.kind, item.subject): _Held(
                before[(item.kind, item.subject)].started_us
                if (item.kind, item.subject) in before
                else min(item.since_us or at_us, at_us),
                item.details,
                item.evidence,
            )
            for item in conditions
        }
        self._active = now
        if self.actions is None and self.announce is None:
            return
        site = self.settings.site.id
        events = [
            AlertEvent("raised", *key, held.details, site, held.started_us, at_us, held.evidence)
            for key, held in now.items()
            if key not in before
        ] + [
            AlertEvent("cleared", *key, held.details, site, held.started_us, at_us, held.evidence)
            for key, held in before.items()
            if key not in now
        ]
        for event in events:
            if self.announce is not None:
                self.announce(event)
            if self.actions is not None:
                self.actions.submit(event)

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
        drift = tuple(
            sorted(self.tracker.status(snapshot.at_us), key=lambda m: natural_key(m.model_version))
        )
        if self.in_memory:
            held = self.evaluate(snapshot, drift, idle_since_of) if evaluate else ()
            active = held_alerts(held, snapshot.at_us)
            return AlertsState(active=active, drift=drift, history=active if history else None)
        error = None
        if self.writer is not None and evaluate:
            if self._active is None:
                # Before evaluating: a restart holds the hand-raised suggestions again.
                try:
                    self._active = self._read_active(self.writer)
                except StoreError as failure:
                    error = f"alerts not read: {failure}"
            if error is None:
                error = self.sync(self.evaluate(snapshot, drift, idle_since_of), snapshot.at_us)
        active = alert_order(reader.alerts(active_only=True))
        recent = alert_order(reader.alerts(limit=ALERT_HISTORY)) if history else None
        if self.actions is not None:
            self._store_failures()
            failures = self.actions.failures()
        elif self.writer is None:
            failures = stored_failures(reader)
        else:
            failures = ()
        return AlertsState(
            active=active, drift=drift, history=recent, error=error, action_failures=failures
        )

    def _store_failures(self) -> None:
        """Write the actions' new failures to the audit trail (owner only, in the tick), so
        the viewers beside `serve` list them too. If the write fails they are still logged and
        listed by this process, but missing from the trail."""
        if self.actions is None or self.writer is None:
            return
        failures = self.actions.take_unstored()
        if not failures:
            return
        try:
            self.writer.add_audit([audit_entry(failure) for failure in failures])
        except StoreError as error:
            log.warning("failed alert actions not stored in the audit trail: %s", error)

    def close(self) -> None:
        """Stop the alert actions (queued ones get a few seconds) and close the writable
        store, if any."""
        if self.actions is not None:
            self.actions.close()
            self.actions = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def stored_failures(reader: Store) -> tuple[ActionFailure, ...]:
    """The failed alert actions the owner stored in the audit trail, newest last (a viewer's
    alerts view); () when the trail cannot be read."""
    try:
        entries = reader.audit_entries(limit=FAILURES_KEPT, kinds=(ACTION_FAILED,))
    except StoreError:
        return ()
    return tuple(failure_of(entry) for entry in reversed(entries))


@dataclass(frozen=True, slots=True)
class _Held:
    """An active alert as the keeper last wrote it: what its cleared event will carry."""

    started_us: int
    details: str
    evidence: Evidence


def held_alerts(conditions: Sequence[AlertCondition], at_us: int) -> tuple[AlertRecord, ...]:
    """Conditions holding now, shown as active alerts (newest first) without a table."""
    records = [
        AlertRecord(
            0, item.kind, item.subject, item.details, min(item.since_us or at_us, at_us), None
        )
        for item in conditions
    ]
    return alert_order(records)


def alert_order(records: Iterable[AlertRecord]) -> tuple[AlertRecord, ...]:
    """Newest first; alerts raised at the same moment by kind, then subject as people count
    (W2 before W10)."""
    return tuple(
        sorted(
            records,
            key=lambda record: (-record.started_us, record.kind, natural_key(record.subject)),
        )
    )
