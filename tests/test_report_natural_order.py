"""`report` lists ids in counting order (W2 before W10, S2 before S10, v1.9 before v1.10):
JSON, CSV, the table, `--by model_version`, `--all-sites` and `--html`, on a real SQLite file
through typer's runner. Text order put W10 before W2 and S10 before S2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore

runner = CliRunner()

CONFIG = """\
timezone = "UTC"

[[workers]]
id = "W10"
name = "W10"

[[workers]]
id = "W1"
name = "W1"

[[workstations]]
id = "S10"
name = "S10"
"""


def wire(moment: str, kind: str, worker: str, station: str, **more: Any) -> str:
    return json.dumps(
        {
            "timestamp": f"2024-05-01T{moment}Z",
            "worker_id": worker,
            "workstation_id": station,
            "event_type": kind,
            "confidence": 0.9,
            **more,
        }
    )


EVENTS = [
    wire("10:00:00", "working", "W10", "S1", model_version="v10"),
    wire("10:01:00", "working", "W2", "S1", model_version="v2"),
    wire("10:02:00", "working", "W1", "S1", model_version="v1.10"),
    wire("10:03:00", "idle", "W11", "S2", model_version="v1.9"),
    wire("10:04:00", "product_count", "W1", "S1", count=3),
    wire("10:05:00", "working", "W3", "S10", model_version="v1.9"),
]
WINDOW = ("--from", "2024-05-01T10:00", "--to", "2024-05-01T11:00", "--at", "2024-05-01T10:10")
WORKERS = ["W1", "W2", "W3", "W10", "W11"]  # text order: W1, W10, W11, W2, W3
STATIONS = ["S1", "S2", "S10"]  # text order: S1, S10, S2
MODELS = [None, "v1.9", "v1.10", "v2", "v10"]  # text order: None, v1.10, v1.9, v10, v2


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    db = tmp_path / "factory.db"
    with SqliteStore.open(db) as store:
        store.insert_batch([parse_event(line) for line in EVENTS])
    return config, db


def report(config: Path, db: Path, *args: str) -> str:
    result = runner.invoke(app, ["report", "--config", str(config), "--db", str(db), *args])
    assert result.exit_code == 0, result.stderr or result.stdout
    return result.stdout


def test_json_lists_workers_stations_and_models_in_counting_order(
    site: tuple[Path, Path],
) -> None:
    data = json.loads(report(*site, *WINDOW, "--format", "json", "--by", "model_version"))
    assert [w["worker_id"] for w in data["workers"]] == WORKERS
    assert [s["workstation_id"] for s in data["workstations"]] == STATIONS
    (s1,) = [s for s in data["workstations"] if s["workstation_id"] == "S1"]
    assert s1["workers_present"] == ["W1", "W2", "W10"]
    assert [m["model_version"] for m in data["models"]] == MODELS


def test_csv_and_table_follow_the_same_order(site: tuple[Path, Path]) -> None:
    rows = list(csv.DictReader(io.StringIO(report(*site, *WINDOW, "--format", "csv"))))
    assert [row["id"] for row in rows if row["level"] == "worker"] == WORKERS
    assert [row["id"] for row in rows if row["level"] == "workstation"] == STATIONS
    table = report(*site, *WINDOW)
    positions = [table.index(f" {worker_id} ") for worker_id in WORKERS]
    assert positions == sorted(positions)


def test_html_lists_workers_stations_models_and_alerts_in_counting_order(
    site: tuple[Path, Path],
) -> None:
    config, db = site
    moment = to_utc_us(parse_event(EVENTS[0]).timestamp)
    with SqliteStore.open(db) as store:
        store.sync_alerts(
            [("camera_dark", subject, "no event", moment) for subject in ("W10", "W2", "W1")],
            moment + 60_000_000,
        )
    page = lxml.html.fromstring(report(config, db, *WINDOW, "--html", "-").encode())
    workers = page.xpath('//section[@id="workers"]//tr[@data-worker-id]/@data-worker-id')
    assert workers == WORKERS
    charts = page.xpath('//section[@id="timelines"]//tr[@data-worker-id]/@data-worker-id')
    assert charts == WORKERS
    stations = page.xpath('//section[@id="stations"]//tr[@data-station-id]/@data-station-id')
    assert stations == STATIONS
    models = page.xpath('//section[@id="models"]//tr[@data-model]/@data-model')
    assert [json.loads(model) for model in models] == MODELS
    alerts = page.xpath('//section[@id="alerts"]//tr[@data-alert-id]')
    assert [row.xpath('string(td[@data-field="subject"])') for row in alerts] == ["W1", "W2", "W10"]


def test_all_sites_are_listed_in_counting_order(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    with SqliteStore.open(db) as base:
        for site_id in ("plant10", "plant2", "plant1"):
            store = base.scoped(site_id)
            store.describe_site(site_id.title(), {"timezone": "UTC"}, 0)
            store.insert_batch([parse_event(EVENTS[0])])
    result = runner.invoke(
        app, ["report", "--db", str(db), "--all-sites", *WINDOW[4:], "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr or result.stdout
    data = json.loads(result.stdout)
    assert list(data["sites"]) == ["plant1", "plant2", "plant10"]
    assert [row["site_id"] for row in data["fleet"]] == ["plant1", "plant2", "plant10"]
