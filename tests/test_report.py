"""`factory-tui report`: the JSON/CSV/table output on a real database, and the windowed read.

The store is a real SQLite file filled through the same parse-and-insert path as the ingest;
the command runs through typer's runner, exactly as from a shell.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.config import load_settings
from factory_tui.engine import Engine, Window
from factory_tui.models import parse_event
from factory_tui.storage import SqliteStore
from factory_tui.warm_start import load_engine

runner = CliRunner()
S = 1_000_000

CONFIG = """\
timezone = "Europe/Lisbon"

[metrics]
max_gap_s = 900

[[shifts]]
name = "Day"
start = "08:00"
end = "16:00"

[[workers]]
id = "W1"
name = "Ana Silva"

[[workers]]
id = "W2"
name = "Bilal Khan"

[[workstations]]
id = "S1"
name = "Assembly 1"

[[workstations]]
id = "S2"
name = "Assembly 2"
"""


def wire(moment: str, event_type: str, worker: str = "W1", station: str = "S1", **more: Any) -> str:
    return json.dumps(
        {
            "timestamp": f"2024-05-01T{moment}Z",
            "worker_id": worker,
            "workstation_id": station,
            "event_type": event_type,
            "confidence": more.pop("confidence", 0.9),
            **more,
        }
    )


# DESIGN.md's worked example for W1 (10:00-11:00 UTC is 11:00-12:00 in Lisbon in May), and a
# worker who is not in the roster, seen once at a station that is not either.
EXAMPLE = [
    wire("10:00:00", "working"),
    wire("10:10:00", "product_count", count=4),
    wire("10:40:00", "idle"),
    wire("10:05:00", "product_count", "W9", "S7", count=2, confidence=0.5),
]


def fill(path: Path, lines: list[str]) -> None:
    with SqliteStore.open(path) as store:
        store.insert_batch([parse_event(line) for line in lines])


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """(config file, database) holding the worked example."""
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    db = tmp_path / "factory.db"
    fill(db, EXAMPLE)
    return config, db


def run(config: Path, db: Path, *args: str) -> Any:
    result = runner.invoke(app, ["report", "--config", str(config), "--db", str(db), *args])
    assert result.exit_code == 0, result.stderr or result.stdout
    return result


def report_json(config: Path, db: Path, *args: str) -> dict[str, Any]:
    return json.loads(run(config, db, "--format", "json", *args).stdout)  # type: ignore[no-any-return]


HOUR = ("--from", "2024-05-01T11:00", "--to", "2024-05-01T12:00", "--at", "2024-05-01T12:00")


def test_json_is_the_worked_example_with_design_field_names(site: tuple[Path, Path]) -> None:
    data = report_json(*site, *HOUR)
    assert data["window"] == {
        "from": "2024-05-01T10:00:00Z",  # naive times are read in the configured zone
        "to": "2024-05-01T11:00:00Z",
        "at": "2024-05-01T11:00:00Z",
        "label": "custom",
    }
    assert data["workers"] == [
        {
            "worker_id": "W1",
            "name": "Ana Silva",
            "active_s": 1500.0,
            "idle_s": 900.0,
            "absent_s": 0.0,
            "utilization": 0.625,
            "units": 4,
            "uph": pytest.approx(9.6),
            "state": "unobserved",
            "station_id": "S1",
            "last_seen": "2024-05-01T10:40:00Z",
            "mean_confidence": 0.9,
            "events": 3,
        },
        {
            "worker_id": "W2",
            "name": "Bilal Khan",
            "active_s": 0.0,
            "idle_s": 0.0,
            "absent_s": 0.0,
            "utilization": None,
            "units": 0,
            "uph": None,
            "state": "unobserved",
            "station_id": None,
            "last_seen": None,
            "mean_confidence": None,
            "events": 0,
        },
        {
            "worker_id": "W9",
            "name": "W9",
            "active_s": 0.0,
            "idle_s": 0.0,
            "absent_s": 0.0,
            "utilization": None,
            "units": 2,
            "uph": None,
            "state": "unobserved",
            "station_id": None,
            "last_seen": "2024-05-01T10:05:00Z",
            "mean_confidence": 0.5,
            "events": 1,
        },
    ]
    assert data["workstations"] == [
        {
            "workstation_id": "S1",
            "name": "Assembly 1",
            "occupancy_s": 1500.0,
            "utilization": pytest.approx(1500 / 3600),
            "units": 4,
            "throughput_uph": 4.0,
            "workers_present": [],
        },
        {
            "workstation_id": "S2",
            "name": "Assembly 2",
            "occupancy_s": 0.0,
            "utilization": 0.0,
            "units": 0,
            "throughput_uph": 0.0,
            "workers_present": [],
        },
        {
            "workstation_id": "S7",
            "name": "S7",
            "occupancy_s": 0.0,
            "utilization": 0.0,
            "units": 2,
            "throughput_uph": 2.0,
            "workers_present": [],
        },
    ]
    assert data["factory"] == {
        "active_s": 1500.0,
        "idle_s": 900.0,
        "absent_s": 0.0,
        "units": 6,
        "avg_utilization": 0.625,
        "avg_uph": pytest.approx(9.6),
        "throughput_uph": 6.0,
        "workers_by_state": {"working": 0, "idle": 0, "absent": 0, "unobserved": 3},
    }


def test_nulls_are_json_null(site: tuple[Path, Path]) -> None:
    text = run(*site, "--format", "json", *HOUR).stdout
    assert '"utilization": null' in text
    assert "NaN" not in text


def test_default_window_is_the_shift_running_at_at_so_far(site: tuple[Path, Path]) -> None:
    data = report_json(*site, "--at", "2024-05-01T12:00:00+01:00")
    # The Day shift (08:00-16:00 Lisbon) up to `at`, as the console shows it.
    assert data["window"] == {
        "from": "2024-05-01T07:00:00Z",
        "to": "2024-05-01T11:00:00Z",
        "at": "2024-05-01T11:00:00Z",
        "label": "Day",
    }
    assert data["workers"][0]["active_s"] == 1500.0
    # Station utilization and throughput are over the window: the 4 hours of shift so far.
    assert data["workstations"][0]["utilization"] == pytest.approx(1500 / (4 * 3600))
    assert data["factory"]["throughput_uph"] == pytest.approx(6 / 4)


def test_an_explicit_window_is_taken_whole(site: tuple[Path, Path]) -> None:
    data = report_json(
        *site, "--from", "2024-05-01T08:00", "--to", "2024-05-01T16:00", "--at", "2024-05-01T12:00"
    )
    assert data["window"]["to"] == "2024-05-01T15:00:00Z"
    assert data["workstations"][0]["utilization"] == pytest.approx(1500 / (8 * 3600))
    assert data["factory"]["throughput_uph"] == pytest.approx(6 / 8)


def test_off_shift_the_window_is_the_local_day_so_far(site: tuple[Path, Path]) -> None:
    data = report_json(*site, "--at", "2024-05-01T20:00")
    assert data["window"]["from"] == "2024-04-30T23:00:00Z"  # local midnight
    assert data["window"]["to"] == "2024-05-01T19:00:00Z"
    assert data["window"]["label"] == "2024-05-01"


def test_a_whole_day_window_names_its_date_once(site: tuple[Path, Path]) -> None:
    text = run(*site, "--at", "2024-05-01T20:00").stdout
    assert "Window 2024-05-01 00:00:00 → 2024-05-01 20:00:00, at" in text
    assert text.count("2024-05-01") == 3  # the start, the end, "at"; the label adds none


def test_from_alone_runs_to_at_and_at_hides_later_events(site: tuple[Path, Path]) -> None:
    data = report_json(*site, "--from", "2024-05-01T10:00:00Z", "--at", "2024-05-01T10:20:00Z")
    assert data["window"]["to"] == "2024-05-01T10:20:00Z"
    ana = data["workers"][0]
    assert (ana["active_s"], ana["idle_s"], ana["units"], ana["state"]) == (
        1200.0,
        0.0,
        4,
        "working",
    )
    assert data["workstations"][0]["workers_present"] == ["W1"]


def test_csv_has_one_row_per_worker_station_and_the_factory(site: tuple[Path, Path]) -> None:
    text = run(*site, "--format", "csv", *HOUR).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(row["level"], row["id"]) for row in rows] == [
        ("worker", "W1"),
        ("worker", "W2"),
        ("worker", "W9"),
        ("workstation", "S1"),
        ("workstation", "S2"),
        ("workstation", "S7"),
        ("factory", ""),
    ]
    ana, bilal = rows[0], rows[1]
    assert (ana["name"], ana["active_s"], ana["utilization"], ana["units"]) == (
        "Ana Silva",
        "1500.0",
        "0.625",
        "4",
    )
    assert bilal["utilization"] == ""  # null
    assert rows[3]["occupancy_s"] == "1500.0"
    assert rows[6]["units"] == "6"
    assert rows[6]["avg_utilization"] == "0.625"


def test_table_is_for_people(site: tuple[Path, Path]) -> None:
    text = run(*site, *HOUR).stdout
    assert "Window custom 2024-05-01 11:00:00 → 2024-05-01 12:00:00" in text
    assert "Europe/Lisbon" in text
    for expected in ("Ana Silva", "0:25:00", "62.5%", "Assembly 1", "unobserved", "—"):
        assert expected in text
    assert "Factory: active 0:25:00, idle 0:15:00" in text


def test_table_fits_an_80_column_terminal(
    site: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = run(*site, *HOUR).stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "Seen" in text
    assert "0:25 " in text  # minutes, not seconds, when narrow
    assert "Conf" not in text


def test_report_reads_beside_a_writer_holding_the_lock(site: tuple[Path, Path]) -> None:
    config, db = site
    writer = SqliteStore.open(db)
    try:
        writer._db.conn.execute("BEGIN IMMEDIATE")
        writer._db.conn.execute(
            "INSERT INTO events (site_id, ts_us, worker_id, workstation_id, event_type, "
            "confidence, count, received_us, event_hash) "
            "VALUES ('main', ?, 'W2', 'S2', 'working', 1.0, 0, 0, 'x')",
            (parse_event(wire("10:30:00", "working")).ts_us,),
        )
        during = report_json(config, db, *HOUR)
        writer._db.conn.execute("COMMIT")
    finally:
        writer.close()
    assert during["workers"][1]["events"] == 0  # the uncommitted row is not seen
    assert report_json(config, db, *HOUR)["workers"][1]["events"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--at", "yesterday"), "--at: 'yesterday' is not an ISO 8601 date-time"),
        (("--to", "2024-05-01T12:00"), "--to needs --from"),
        (("--from", "2024-05-01T12:00", "--to", "2024-05-01T11:00"), "ends"),
        (("--format", "xml"), "xml"),
    ],
)
def test_mistakes_are_one_clear_sentence(
    site: tuple[Path, Path], args: tuple[str, ...], message: str
) -> None:
    config, db = site
    result = runner.invoke(app, ["report", "--config", str(config), "--db", str(db), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = runner.invoke(app, ["report", "--db", str(missing)])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert not missing.exists()


# --- the windowed read gives what the whole history gives ------------------------------------


def history(seed: int) -> list[str]:
    """Three days of five workers: heartbeats, state changes, moves, products, dark spells,
    ties, a worker who stops after the first day and a station used only on the first day."""
    rng = random.Random(seed)
    lines = []
    for worker in ("W1", "W2", "W3", "W4", "W5"):
        moment = rng.randrange(600) * S
        stop = (24 if worker == "W5" else 72) * 3600 * S
        state, station = "working", "S1"
        while moment < stop:
            roll = rng.random()
            if roll < 0.25:
                kind = "product_count"
            else:
                if roll > 0.9:
                    state = rng.choice(["working", "idle", "absent"])
                    station = "S9" if moment < 20 * 3600 * S else rng.choice(["S1", "S2", "S3"])
                kind = state
            seconds, micros = divmod(moment, S)
            day, rest = divmod(seconds, 86400)
            clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}.{micros:06d}"
            lines.append(
                json.dumps(
                    {
                        "timestamp": f"2024-05-0{1 + day}T{clock}Z",
                        "worker_id": worker,
                        "workstation_id": station,
                        "event_type": kind,
                        "confidence": rng.choice([0.61, 0.8, 0.93, 0.99]),
                        "count": rng.randrange(1, 4) if kind == "product_count" else 0,
                    }
                )
            )
            # Mostly a minute apart, sometimes the same instant, sometimes a dark spell.
            moment += rng.choice([0, 60, 60, 60, 90, 300, 1200, 4000]) * S
    return lines


def test_the_windowed_read_equals_an_engine_fed_everything(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    fill(db, history(11))
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    settings = load_settings(config, environ={}, overrides={"store.path": db})
    rng = random.Random(5)
    base = parse_event(wire("00:00:00", "idle")).ts_us
    with SqliteStore.open(db, read_only=True) as store:
        everything = Engine(
            settings.metrics.max_gap_s,
            {**{e.id: e.name for e in settings.roster_workers()}, **store.workers()},
            {**{e.id: e.name for e in settings.roster_workstations()}, **store.workstations()},
        )
        everything.apply(store.iter_since(0))
        for turn in range(16):
            at_us = base + rng.randrange(80 * 3600) * S
            # Mostly windows that started before `at`; also one that starts minutes before it
            # (the hour of activity reaches further back) and one that starts after it.
            before = {6: 600, 7: -3600}.get(turn % 8, rng.randrange(30 * 3600))
            start = at_us - before * S
            window = Window(start, start + rng.choice([1, 8, 24, 40]) * 3600 * S)
            loaded = load_engine(store, settings, window, at_us, until_us=at_us, every_station=True)
            assert loaded.events < everything.events or start < base + 3600 * S
            mine, theirs = loaded.snapshot(window, at_us), everything.snapshot(window, at_us)
            assert (mine.workers, mine.stations, mine.factory) == (
                theirs.workers,
                theirs.stations,
                theirs.factory,
            )


def test_an_empty_database_reports_the_roster(tmp_path: Path) -> None:
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    db = tmp_path / "empty.db"
    SqliteStore.open(db).close()
    data = report_json(config, db, *HOUR)
    assert [w["worker_id"] for w in data["workers"]] == ["W1", "W2"]
    assert [s["workstation_id"] for s in data["workstations"]] == ["S1", "S2"]
    assert data["factory"]["avg_utilization"] is None
    assert data["factory"]["workers_by_state"]["unobserved"] == 2


# --- --by model_version ----------------------------------------------------------------------

# 10:00-11:00 UTC: v1 twice, v2 three times, once no model; one event just before the window
# and one at its (exclusive) end, each of which would change every figure if it were counted.
# Confidences are binary fractions, so the means are exact.
MODELS = [
    wire("09:59:59", "working", model_version="v1", confidence=0.125),
    wire("10:00:00", "working", model_version="v1", confidence=0.75),
    wire("10:05:00", "product_count", "W9", "S7", count=2, confidence=0.5),
    wire("10:10:00", "product_count", count=4, model_version="v1", confidence=0.5),
    wire("10:20:00", "working", "W2", "S2", model_version="v2", confidence=1.0),
    wire("10:30:00", "product_count", "W2", "S2", count=3, model_version="v2", confidence=0.25),
    wire("10:40:00", "idle", model_version="v2", confidence=1.0),
    wire("11:00:00", "product_count", "W2", "S2", count=5, model_version="v2", confidence=0.0),
]
BY_MODEL = ("--by", "model_version")


@pytest.fixture
def models_site(tmp_path: Path) -> tuple[Path, Path]:
    """(config file, database) with events of two model versions and of none."""
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    db = tmp_path / "models.db"
    fill(db, MODELS)
    return config, db


def test_json_models_are_exact_and_only_the_window(models_site: tuple[Path, Path]) -> None:
    data = report_json(*models_site, *HOUR, *BY_MODEL)
    assert data["models"] == [
        {
            "model_version": None,
            "events": 1,
            "mean_confidence": 0.5,
            "min_confidence": 0.5,
            "units": 2,
        },
        {
            "model_version": "v1",
            "events": 2,
            "mean_confidence": 0.625,
            "min_confidence": 0.5,
            "units": 4,
        },
        {
            "model_version": "v2",
            "events": 3,
            "mean_confidence": 0.75,
            "min_confidence": 0.25,
            "units": 3,
        },
    ]
    # The rest of the report is what it is without --by.
    without = report_json(*models_site, *HOUR)
    assert "models" not in without
    assert data["retrain_suggested"] == []  # two hours of events: no baseline yet
    assert {
        key: value for key, value in data.items() if key not in ("models", "retrain_suggested")
    } == without


def test_model_events_are_the_workers_events_up_to_at(models_site: tuple[Path, Path]) -> None:
    # The window runs to 11:00 but `at` is 10:20: the event at 10:20 is seen, later ones not.
    data = report_json(
        *models_site,
        "--from",
        "2024-05-01T10:00:00Z",
        "--to",
        "2024-05-01T11:00:00Z",
        "--at",
        "2024-05-01T10:20:00Z",
        *BY_MODEL,
    )
    assert [(m["model_version"], m["events"], m["units"]) for m in data["models"]] == [
        (None, 1, 2),
        ("v1", 2, 4),
        ("v2", 1, 0),
    ]
    assert sum(m["events"] for m in data["models"]) == sum(w["events"] for w in data["workers"])
    assert sum(m["units"] for m in data["models"]) == data["factory"]["units"]


def test_csv_adds_a_row_per_model_and_a_last_column(models_site: tuple[Path, Path]) -> None:
    text = run(*models_site, "--format", "csv", *HOUR, *BY_MODEL).stdout
    plain = run(*models_site, "--format", "csv", *HOUR).stdout
    header, plain_header = text.splitlines()[0].split(","), plain.splitlines()[0].split(",")
    assert header == [*plain_header, "min_confidence"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(row["level"], row["id"]) for row in rows][-4:] == [
        ("factory", ""),
        ("model", ""),  # no model_version: null, so empty
        ("model", "v1"),
        ("model", "v2"),
    ]
    v2 = rows[-1]
    assert (v2["events"], v2["mean_confidence"], v2["min_confidence"], v2["units"]) == (
        "3",
        "0.75",
        "0.25",
        "3",
    )
    assert (v2["name"], v2["active_s"], v2["utilization"]) == ("", "", "")
    assert all(row["min_confidence"] == "" for row in rows if row["level"] != "model")


def test_table_has_a_models_section(
    models_site: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = run(*models_site, *HOUR, *BY_MODEL).stdout
    models = text[text.index("Models") :]
    rows = [line.split() for line in models.splitlines()]
    lines = {row[0]: row[1:] for row in rows if row and row[0] in ("(none)", "v1", "v2")}
    assert "Lowest conf" in models
    assert lines == {
        "(none)": ["1", "16.7%", "0.50", "0.50", "2"],
        "v1": ["2", "33.3%", "0.62", "0.50", "4"],
        "v2": ["3", "50.0%", "0.75", "0.25", "3"],
    }
    assert "Models" not in run(*models_site, *HOUR).stdout
    monkeypatch.setenv("COLUMNS", "80")
    narrow = run(*models_site, *HOUR, *BY_MODEL).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "Lowest conf" in narrow


def test_no_events_no_models(tmp_path: Path) -> None:
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    db = tmp_path / "empty.db"
    SqliteStore.open(db).close()
    assert report_json(config, db, *HOUR, *BY_MODEL)["models"] == []
    assert "Models: no events in the window" in run(config, db, *HOUR, *BY_MODEL).stdout
    text = run(config, db, "--format", "csv", *HOUR, *BY_MODEL).stdout
    assert [row["level"] for row in csv.DictReader(io.StringIO(text))] == ["worker", "worker"] + [
        "workstation",
        "workstation",
        "factory",
    ]


def test_an_unknown_breakdown_names_the_choices(site: tuple[Path, Path]) -> None:
    config, db = site
    result = runner.invoke(
        app, ["report", "--config", str(config), "--db", str(db), "--by", "camera"]
    )
    assert result.exit_code == 2
    assert "'camera' is not" in result.stderr
    assert "model_version" in result.stderr
    assert "Traceback" not in result.stderr


# --- a night shift across a daylight-saving change ------------------------------------------

NIGHT_CONFIG = """\
timezone = "Europe/Berlin"

[metrics]
max_gap_s = 900

[[shifts]]
name = "Night"
start = "22:00"
end = "06:00"

[[workers]]
id = "W1"
name = "Ana Silva"

[[workers]]
id = "W2"
name = "Bilal Khan"

[[workstations]]
id = "S1"
name = "Assembly 1"

[[workstations]]
id = "S2"
name = "Assembly 2"
"""


def night_lines(start_utc: str, hours: int) -> list[str]:
    """W1 working at S1 from `start_utc` for `hours` (heartbeat every 10 min, a unit at :15 and
    :45 of every hour), W2 idle at S2 over the same span (heartbeat every 10 min)."""
    start = datetime.fromisoformat(start_utc)
    lines = []
    for minute in range(0, hours * 60, 5):
        moment = (start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        base = {"timestamp": moment, "confidence": 0.9}
        if minute % 10 == 0:
            lines.append(
                json.dumps(
                    {**base, "worker_id": "W1", "workstation_id": "S1", "event_type": "working"}
                )
            )
            lines.append(
                json.dumps(
                    {**base, "worker_id": "W2", "workstation_id": "S2", "event_type": "idle"}
                )
            )
        if minute % 60 in (15, 45):
            lines.append(
                json.dumps(
                    {
                        **base,
                        "worker_id": "W1",
                        "workstation_id": "S1",
                        "event_type": "product_count",
                        "count": 1,
                    }
                )
            )
    return lines


@pytest.fixture
def night_site(tmp_path: Path) -> tuple[Path, Path]:
    """A Berlin site with a 22:00-06:00 night shift; both DST nights of 2026 recorded whole."""
    config = tmp_path / "factory.toml"
    config.write_text(NIGHT_CONFIG)
    db = tmp_path / "factory.db"
    # 2026-03-28 22:00 CET is 21:00Z; the clocks jump 02:00 -> 03:00; 06:00 CEST is 04:00Z.
    # 2026-10-24 22:00 CEST is 20:00Z; the clocks fall 03:00 -> 02:00; 06:00 CET is 05:00Z.
    fill(
        db,
        night_lines("2026-03-28T21:00:00+00:00", 7) + night_lines("2026-10-24T20:00:00+00:00", 9),
    )
    return config, db


@pytest.mark.parametrize(
    ("at", "window_from", "window_to", "hours"),
    [
        # Spring: 05:00 CEST is 03:00Z, 6 real hours after 22:00 CET (the wall clock says 7).
        ("2026-03-29T05:00", "2026-03-28T21:00:00Z", "2026-03-29T03:00:00Z", 6),
        # Autumn: 05:00 CET is 04:00Z, 8 real hours after 22:00 CEST (the wall clock says 7).
        ("2026-10-25T05:00", "2026-10-24T20:00:00Z", "2026-10-25T04:00:00Z", 8),
        # The repeated hour, its second pass: 02:30 CET is 01:30Z, 5.5 h into the shift.
        ("2026-10-25T02:30+01:00", "2026-10-24T20:00:00Z", "2026-10-25T01:30:00Z", 5.5),
        # ...and its first pass, 02:30 CEST: an hour earlier.
        ("2026-10-25T02:30+02:00", "2026-10-24T20:00:00Z", "2026-10-25T00:30:00Z", 4.5),
    ],
)
def test_night_shift_across_a_dst_change_counts_real_hours(
    night_site: tuple[Path, Path], at: str, window_from: str, window_to: str, hours: float
) -> None:
    data = report_json(*night_site, "--at", at)
    assert data["window"] == {
        "from": window_from,
        "to": window_to,
        "at": window_to,
        "label": "Night",
    }
    seconds = hours * 3600
    units = int(hours * 2)  # one at :15 and one at :45 of every hour
    ana, bilal = data["workers"]
    assert (ana["active_s"], ana["idle_s"], ana["units"]) == (seconds, 0.0, units)
    assert ana["uph"] == pytest.approx(2.0)
    assert (bilal["active_s"], bilal["idle_s"], bilal["utilization"]) == (0.0, seconds, 0.0)
    assembly = data["workstations"][0]
    assert assembly["occupancy_s"] == seconds
    assert assembly["utilization"] == pytest.approx(1.0)  # busy the whole window, no more
    assert assembly["throughput_uph"] == pytest.approx(2.0)
    assert data["factory"]["throughput_uph"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("night", "day", "window_to", "hours"),
    [
        ("2026-03-28", "2026-03-29", "2026-03-29T04:00:00Z", 7),
        ("2026-10-24", "2026-10-25", "2026-10-25T05:00:00Z", 9),
    ],
)
def test_a_whole_dst_night_is_seven_or_nine_hours(
    night_site: tuple[Path, Path], night: str, day: str, window_to: str, hours: int
) -> None:
    data = report_json(
        *night_site, "--from", f"{night}T22:00", "--to", f"{day}T06:00", "--at", f"{day}T06:00"
    )
    assert data["window"]["to"] == window_to
    ana = data["workers"][0]
    assert (ana["active_s"], ana["units"]) == (hours * 3600, hours * 2)
    assert data["workstations"][0]["utilization"] == pytest.approx(1.0)
    assert data["factory"]["throughput_uph"] == pytest.approx(2.0)


def test_the_table_shows_a_dst_night_in_local_time(night_site: tuple[Path, Path]) -> None:
    text = run(*night_site, "--at", "2026-03-29T05:00").stdout
    assert "Window Night 2026-03-28 22:00:00 → 2026-03-29 05:00:00" in text
    assert "Europe/Berlin" in text
    assert "6:00:00" in text  # Ana's active time: six hours, not seven
    assert "7:00:00" not in text
