"""`report` and `export` over a database of several sites (tests/tui/fleet.py: north in UTC,
pune in Kolkata, austin in Chicago, the same worker ids at each), through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.models import parse_event
from factory_tui.storage import SqliteStore
from tests.tui.fleet import fill_fleet, site_lines, site_settings
from tests.tui.floor import AT_US

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


@pytest.mark.parametrize(
    ("command", "way_out"),
    [(["report"], ", or report them all with --all-sites"), (["export", "events"], "")],
)
def test_no_site_named_on_a_fleet_database_is_one_sentence_not_an_empty_floor(
    fleet_db: Path, command: list[str], way_out: str
) -> None:
    # The configured site (main) is not among them: an empty report would read as an idle floor.
    result = runner.invoke(app, [*command, "--db", str(fleet_db)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"factory-tui: {fleet_db} holds sites austin, north, pune and not 'main': "
        f"say which with --site (or [site] id){way_out}"
    )


def test_a_database_of_one_other_site_is_reported_as_that_site(tmp_path: Path) -> None:
    path = tmp_path / "pune.db"
    settings = site_settings(str(path), "pune")
    with SqliteStore.open(path) as base:
        store = base.scoped("pune")
        store.describe_site(settings.site.label, settings.site_description(), AT_US)
        store.upsert_roster(settings.roster_workers(), settings.roster_workstations())
        store.insert_batch([parse_event(line) for line in site_lines("pune")], AT_US)
    data = json.loads(run("report", "--db", str(path), "--at", AT, "--format", "json"))
    assert {w["name"] for w in data["workers"]} == {"Ravi Kumar", "Priya Nair"}


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
