"""QA's night: a floor that stops sending after its shift raises no rate_drift and suggests no
retraining, end to end (simulated cameras, a real store, the alert keeper that `serve` runs);
while a model still sending with far fewer units still raises both."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from factory_tui.alert_actions import AlertEvent
from factory_tui.cli import app
from factory_tui.config import load_settings
from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.engine.alerts import RATE_DRIFT, RETRAIN_SUGGESTED
from factory_tui.engine.snapshot import FactoryMetrics, Snapshot, Window
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore
from factory_tui.warm_start import load_drift_history

CONFIG = """\
[ingest]
auto_register = true

[[shifts]]
name = "A"
start = "06:00"
end = "07:30"
"""
DAY = datetime(2024, 5, 1, tzinfo=UTC)


def simulated(tmp_path: Path) -> list[str]:
    """Six cameras from 06:00 to 07:30, as QA ran them."""
    out = tmp_path / "early.jsonl"
    result = CliRunner().invoke(
        app,
        ["simulate", "--to-file", str(out), "--workers", "6", "--duration", "90m"]
        + ["--start", "2024-05-01T06:00"],
    )
    assert result.exit_code == 0, result.output
    return out.read_text().splitlines()


def alerts_at(tmp_path: Path, lines: list[str], hour: int, minute: int) -> list[AlertEvent]:
    """What the keeper of a store holding `lines` raises at hour:minute (a fresh start)."""
    config = tmp_path / "night.toml"
    config.write_text(CONFIG)
    settings = load_settings(config)
    db = tmp_path / f"factory-{hour}-{minute}.db"
    at = to_utc_us(DAY.replace(hour=hour, minute=minute))
    raised: list[AlertEvent] = []
    with SqliteStore.open(db) as store:
        store.insert_batch([parse_event(line) for line in lines])
        keeper = AlertKeeper(settings, store, announce=raised.append)
        keeper.actions = None
        assert load_drift_history(keeper.tracker, store, at) > 0
        factory = FactoryMetrics(0.0, 0.0, 0.0, 0, None, None, None, 0, 0, 0, 0)
        snapshot = Snapshot(Window(at - 3_600_000_000, at, "day"), at, (), (), factory, 0, 0)
        keeper.state(store, snapshot, lambda _worker: None, history=False)
        keeper.writer = None  # the store is closed by the `with`
    return raised


def test_a_floor_silent_after_its_shift_raises_no_drift(tmp_path: Path) -> None:
    lines = simulated(tmp_path)
    for hour, minute in ((7, 55), (8, 30), (10, 0), (23, 0)):
        kinds = {(event.kind, event.subject) for event in alerts_at(tmp_path, lines, hour, minute)}
        assert not {kind for kind, _ in kinds} & {RATE_DRIFT, RETRAIN_SUGGESTED}, (hour, kinds)


def test_a_model_still_sending_without_units_drifts(tmp_path: Path) -> None:
    """The same floor, but from 07:00 yolo-v8.2 sees the workers and counts no products (its
    product_count events become working ones): rate drift, and retraining once held 60 min."""
    lines = []
    for line in simulated(tmp_path):
        event = json.loads(line)
        late = event["timestamp"] >= "2024-05-01T07:00"
        if (
            late
            and event["model_version"] == "yolo-v8.2"
            and event["event_type"] == "product_count"
        ):
            event["event_type"] = "working"
            event.pop("count", None)
        lines.append(json.dumps(event))
    kinds = {event.kind for event in alerts_at(tmp_path, lines, 7, 30)}
    assert RATE_DRIFT in kinds
    assert RETRAIN_SUGGESTED not in kinds  # held 30 min, not retrain_after_s (60 min)
