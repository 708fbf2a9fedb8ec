"""`report --by model_version` names the models whose retraining is suggested at --at: a drift
held for [alerts] retrain_after_s (with its evidence), or a supervisor's hand-raised one that
was active then; the console's warm start sees the same drift as a tracker fed everything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.engine.drift import DriftSettings, DriftTracker
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore
from factory_tui.warm_start import load_drift_history

CONFIG = """\
[alerts]
drift_window_s = 600
drift_drop = 0.1
drift_sustain_s = 300
baseline_s = 3600
retrain_after_s = 1800

[[workers]]
id = "W1"

[[workstations]]
id = "S1"
"""
START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
runner = CliRunner()


def sightings(first_min: int, last_min: int, confidence: float, model: str) -> list[str]:
    """One event every 30 s from START + first_min to START + last_min."""
    return [
        json.dumps(
            {
                "timestamp": (START + timedelta(seconds=30 * k)).isoformat(),
                "worker_id": "W1",
                "workstation_id": "S1",
                "event_type": "working",
                "confidence": confidence,
                "model_version": model,
            }
        )
        for k in range(first_min * 2, last_min * 2)
    ]


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """v1 steady at 0.9 for 3 h; v2 at 0.9 for an hour, then 0.6 for two."""
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    db = tmp_path / "factory.db"
    lines = sightings(0, 180, 0.9, "v1") + sightings(0, 60, 0.9, "v2")
    lines += sightings(60, 180, 0.6, "v2")
    with SqliteStore.open(db) as store:
        store.insert_batch([parse_event(line) for line in lines])
    return config, db


def report(config: Path, db: Path, at: str, *args: str) -> str:
    result = runner.invoke(
        app,
        ["report", "--config", str(config), "--db", str(db), "--at", at, "--by", "model_version"]
        + list(args),
    )
    assert result.exit_code == 0, result.stderr or result.stdout
    return result.stdout


def retrain_json(config: Path, db: Path, at: str) -> list[dict[str, Any]]:
    data = json.loads(report(config, db, at, "--format", "json"))
    return data["retrain_suggested"]  # type: ignore[no-any-return]


def test_a_drift_held_for_retrain_after_s_is_in_the_report(site: tuple[Path, Path]) -> None:
    # The 10-min window ending at 09:04 holds 4 low minutes: mean 0.78, 0.12 under the
    # baseline; the drift holds from then on, and 30 minutes later retraining is suggested.
    assert retrain_json(*site, "2024-05-01T09:33:59Z") == []
    (item,) = retrain_json(*site, "2024-05-01T09:34:00Z")
    assert item["model_version"] == "v2"
    evidence = item["evidence"]
    assert evidence["baseline_confidence"] == pytest.approx(0.9)
    assert evidence["rolling_confidence"] == pytest.approx(0.6)
    assert evidence["confidence_drift_s"] == 1800
    assert evidence["window_events"] == 20
    assert evidence["baseline_events"] == 120
    assert evidence["by_hand"] is False
    table = report(*site, "2024-05-01T10:30:00Z")
    assert "Retrain suggested:\n  v2: retrain suggested: confidence 0.60 vs baseline 0.90" in table


def test_a_hand_raised_suggestion_active_at_at(site: tuple[Path, Path]) -> None:
    config, db = site
    raised = to_utc_us(datetime(2024, 5, 1, 8, 30, tzinfo=UTC))
    with SqliteStore.open(db) as store:
        store.sync_alerts(
            [("retrain_suggested", "v1", "v1: retrain suggested: raised by hand", raised)], raised
        )
        store.sync_alerts([], raised + 600_000_000)  # withdrawn ten minutes later
    (item,) = retrain_json(config, db, "2024-05-01T08:35:00Z")
    assert (item["model_version"], item["evidence"]["by_hand"]) == ("v1", True)
    assert retrain_json(config, db, "2024-05-01T08:45:00Z") == []
    assert "Retrain suggested: none" in report(config, db, "2024-05-01T08:45:00Z")


def test_the_warm_start_sees_the_drift_a_full_history_gives(site: tuple[Path, Path]) -> None:
    _, db = site
    settings = DriftSettings(baseline_s=3600, retrain_after_s=1800)
    at = to_utc_us(datetime(2024, 5, 1, 10, 50, tzinfo=UTC))
    full, warm = DriftTracker(settings), DriftTracker(settings)
    with SqliteStore.open(db, read_only=True) as store:
        assert full.apply(store.iter_range(None, None)) == 720
        assert load_drift_history(warm, store, at) < 720  # the hours in between are skipped
    v2_full, v2_warm = full.status(at)[1], warm.status(at)[1]
    assert v2_full.retrain_suggested
    assert v2_full.confidence_held_s == 1800
    assert (v2_warm.retrain_suggested, v2_warm.confidence_held_s) == (True, 1800)
