"""`report --by model_version --at PAST` reads the drift history up to --at, not up to the
newest stored event: a report of last month does not fold every event since into its drift
tracker, and says what it said before those events were stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.engine.drift import DriftSettings
from factory_tui.models import EventRecord, parse_event, to_utc_us
from factory_tui.reports.retrain import retrain_suggestions
from factory_tui.storage import SqliteStore

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
AT = "2024-05-01T09:40:00Z"
"""The report's instant: v2's drift (from 09:04) has held past retrain_after_s."""
AT_US = to_utc_us(datetime.fromisoformat(AT))
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


def history(*, later_days: bool) -> list[str]:
    """v1 steady at 0.9; v2 at 0.9 for an hour, then 0.6 up to --at; with `later_days`, two
    more days of both after --at (v2 back at 0.9)."""
    lines = sightings(0, 100, 0.9, "v1") + sightings(0, 60, 0.9, "v2")
    lines += sightings(60, 100, 0.6, "v2")
    if later_days:
        lines += sightings(101, 101 + 2 * 24 * 60, 0.9, "v1")
        lines += sightings(101, 101 + 2 * 24 * 60, 0.9, "v2")
    return lines


def database(path: Path, lines: list[str]) -> Path:
    with SqliteStore.open(path) as store:
        store.insert_batch([parse_event(line) for line in lines])
    return path


def test_the_drift_read_stops_at_the_reports_instant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = database(tmp_path / "factory.db", history(later_days=True))
    settings = DriftSettings(
        window_s=600, drop=0.1, sustain_s=300, baseline_s=3600, retrain_after_s=1800
    )
    with SqliteStore.open(db, read_only=True) as store:
        read: list[EventRecord] = []
        iter_range = store.iter_range

        def recorded(*args: Any, **kwargs: Any) -> Iterator[EventRecord]:
            for row in iter_range(*args, **kwargs):
                read.append(row)
                yield row

        monkeypatch.setattr(store, "iter_range", recorded)
        (item,) = retrain_suggestions(store, settings, AT_US)
    assert item.subject == "v2"
    assert read, "the drift history was read through iter_range"
    assert max(row.ts_us for row in read) <= AT_US


def report_json(config: Path, db: Path) -> dict[str, Any]:
    args = ["report", "--config", str(config), "--db", str(db), "--at", AT]
    result = runner.invoke(app, [*args, "--by", "model_version", "--format", "json"])
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_later_events_change_nothing_in_a_past_report(tmp_path: Path) -> None:
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    then = database(tmp_path / "then.db", history(later_days=False))
    now = database(tmp_path / "now.db", history(later_days=True))
    past = report_json(config, then)
    assert [item["model_version"] for item in past["retrain_suggested"]] == ["v2"]
    assert report_json(config, now) == past
