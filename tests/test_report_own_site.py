"""`report` of our own site reads the config file's time zone, shifts and roster, not the
description our listener stored when `serve` last started; another site of the database, or
ours with no config file, is read as its box described it. Through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.config import load_settings
from factory_tui.models import parse_event
from factory_tui.storage import SqliteStore

runner = CliRunner()
AT = "2026-03-02T10:00:00Z"  # 15:30 in Kolkata

# What `serve` stored for site main, and for a second site, when it last started.
STORED = """\
timezone = "UTC"

[site]
id = "{site}"

[[shifts]]
name = "Day"
start = "08:00"
end = "16:00"

[[workers]]
id = "W1"
name = "Ana Silva"
"""

# The config the user edited since (serve not restarted): another zone, another shift.
EDITED = """\
timezone = "Asia/Kolkata"

[[shifts]]
name = "Early"
start = "14:00"
end = "22:00"

[[workers]]
id = "W1"
name = "Ana Silva"
"""


@pytest.fixture
def described(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(edited config, database) where sites main and north are described the old way."""
    monkeypatch.chdir(tmp_path)  # no ./factory.toml
    monkeypatch.delenv("FACTORY_TUI_CONFIG", raising=False)
    db = tmp_path / "k.db"
    with SqliteStore.open(db) as base:
        for site in ("main", "north"):
            stored = tmp_path / f"{site}-then.toml"
            stored.write_text(STORED.format(site=site))
            settings = load_settings(stored, environ={})
            store = base.scoped(site)
            store.describe_site(settings.site.label, settings.site_description(), 0)
            store.upsert_roster(settings.roster_workers(), settings.roster_workstations())
            line = json.dumps(
                {
                    "timestamp": "2026-03-02T09:00:00Z",
                    "worker_id": "W1",
                    "workstation_id": "S1",
                    "event_type": "working",
                    "confidence": 0.9,
                }
            )
            store.insert_batch([parse_event(line)], 0)
    config = tmp_path / "shifts.toml"
    config.write_text(EDITED)
    return config, db


def report(*args: str) -> Any:
    return runner.invoke(app, ["report", *args, "--at", AT])


def window(*args: str) -> dict[str, Any]:
    result = report(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["window"]  # type: ignore[no-any-return]


def test_our_site_is_read_with_the_config_passed(described: tuple[Path, Path]) -> None:
    config, db = described
    early = window("-c", str(config), "--db", str(db), "--shift", "Early")
    assert early["label"] == "Early"
    assert early["from"] == "2026-03-02T08:30:00Z"  # 14:00 in Kolkata, not in UTC
    running = window("-c", str(config), "--db", str(db))
    assert running["from"] == "2026-03-02T08:30:00Z"  # the running shift, in the config's zone


def test_a_shift_the_config_lacks_names_the_config_file(described: tuple[Path, Path]) -> None:
    config, db = described
    result = report("-c", str(config), "--db", str(db), "--shift", "Day")
    assert result.exit_code == 2
    assert f"{config}: no shift named 'Day' (configured: Early)" in result.stderr


def test_without_a_config_file_our_site_is_its_stored_description(
    described: tuple[Path, Path],
) -> None:
    _, db = described
    day = window("--db", str(db), "--shift", "Day")
    assert day["from"] == "2026-03-02T08:00:00Z"  # 08:00 UTC, as the box described it
    result = report("--db", str(db), "--shift", "Early")
    assert result.exit_code == 2
    assert (
        f"site 'main' as its box described it in {db}: no shift named 'Early' (configured: Day)"
        in result.stderr
    )


def test_another_site_is_its_stored_description_even_with_a_config(
    described: tuple[Path, Path],
) -> None:
    config, db = described
    day = window("-c", str(config), "--db", str(db), "--site", "north", "--shift", "Day")
    assert day["from"] == "2026-03-02T08:00:00Z"
    result = report("-c", str(config), "--db", str(db), "--site", "north", "--shift", "Early")
    assert result.exit_code == 2
    assert "site 'north' as its box described it in" in result.stderr


def test_all_sites_reads_ours_with_the_config_and_the_others_as_described(
    described: tuple[Path, Path],
) -> None:
    config, db = described
    result = report("-c", str(config), "--db", str(db), "--all-sites", "--format", "json")
    assert result.exit_code == 0, result.output
    sites = json.loads(result.stdout)["sites"]
    assert sites["main"]["window"]["label"] == "Early"
    assert sites["north"]["window"]["label"] == "Day"
