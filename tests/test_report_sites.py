"""`report` and `export` over a database of several sites (tests/tui/fleet.py: north in UTC,
pune in Kolkata, austin in Chicago, the same worker ids at each), through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from tests.tui.fleet import fill_fleet

runner = CliRunner()
AT = "2025-03-04T10:30:00Z"


@pytest.fixture
def fleet_db(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.db"
    fill_fleet(str(path))
    return path


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_site_is_reported_in_its_own_zone_and_shift(fleet_db: Path) -> None:
    data = json.loads(
        run("report", "--db", str(fleet_db), "--site", "pune", "--at", AT, "--format", "json")
    )
    assert data["window"]["label"] == "B"  # 16:00 in Kolkata
    assert data["window"]["from"] == "2025-03-04T08:30:00Z"  # 14:00 IST
    assert {w["name"] for w in data["workers"]} == {"Ravi Kumar", "Priya Nair"}


def test_all_sites_gives_each_report_and_a_fleet_summary(fleet_db: Path) -> None:
    data = json.loads(
        run("report", "--db", str(fleet_db), "--all-sites", "--at", AT, "--format", "json")
    )
    assert sorted(data["sites"]) == ["austin", "north", "pune"]
    pune = json.loads(
        run("report", "--db", str(fleet_db), "--site", "pune", "--at", AT, "--format", "json")
    )
    assert data["sites"]["pune"] == pune  # the same numbers as the site's own report
    fleet = {row["site_id"]: row for row in data["fleet"]}
    assert fleet["pune"]["units"] == pune["factory"]["units"]
    assert fleet["austin"]["window"] == "C"
    table = run("report", "--db", str(fleet_db), "--all-sites", "--at", AT)
    assert "Site pune (Pune, Asia/Kolkata)" in table
    assert "Fleet" in table
    csv_text = run("report", "--db", str(fleet_db), "--all-sites", "--at", AT, "--format", "csv")
    assert csv_text.splitlines()[0].startswith("site,level,")
    assert {line.split(",")[0] for line in csv_text.splitlines()[1:]} == {
        "austin",
        "north",
        "pune",
    }


def test_an_unknown_site_is_one_sentence(fleet_db: Path) -> None:
    result = runner.invoke(app, ["report", "--db", str(fleet_db), "--site", "nope"])
    assert result.exit_code != 0
    assert "site 'nope' is not in" in result.output
    assert "austin, north, pune" in result.output


def test_export_reads_one_site(fleet_db: Path) -> None:
    lines = run(
        "export", "events", "--db", str(fleet_db), "--site", "austin", "--format", "jsonl"
    ).splitlines()
    assert lines
    assert {json.loads(line)["worker_id"] for line in lines} == {"W1"}
    north = run(
        "export", "events", "--db", str(fleet_db), "--site", "north", "--format", "jsonl"
    ).splitlines()
    assert len(north) > len(lines)
