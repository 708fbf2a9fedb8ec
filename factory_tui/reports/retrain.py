"""Which models a report suggests retraining (`report --by model_version`): the drift the
console would see at the report's instant, held for `[alerts] retrain_after_s`, and the
suggestions a supervisor raised by hand that were active then (from the alerts table)."""

from __future__ import annotations

from typing import Any

from factory_tui.engine.alerts import BY_HAND, RETRAIN_SUGGESTED, AlertCondition, retrain_condition
from factory_tui.engine.drift import DriftSettings, DriftTracker
from factory_tui.storage import Store
from factory_tui.warm_start import load_drift_history


def retrain_suggestions(store: Store, settings: DriftSettings, at_us: int) -> list[AlertCondition]:
    """The retrain_suggested alerts holding at `at_us`, by model_version, with their evidence."""
    tracker = DriftTracker(settings)
    load_drift_history(tracker, store, at_us, until_us=at_us)  # not the events since
    by_hand = {
        alert.subject
        for alert in store.alerts_raised(0, at_us + 1)
        if alert.kind == RETRAIN_SUGGESTED
        and alert.details.endswith(BY_HAND)
        and (alert.cleared_us is None or alert.cleared_us > at_us)
    }
    return [
        retrain_condition(model, settings, model.model_version in by_hand)
        for model in tracker.status(at_us)
        if model.retrain_suggested or model.model_version in by_hand
    ]


def retrain_data(suggestions: list[AlertCondition]) -> list[dict[str, Any]]:
    """The JSON of the suggestions: what an alert action would hand a retraining pipeline."""
    return [
        {"model_version": item.subject, "details": item.details, "evidence": dict(item.evidence)}
        for item in suggestions
    ]
