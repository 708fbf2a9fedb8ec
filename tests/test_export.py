"""`factory-tui export events`: CSV for spreadsheets, JSON lines that replay into another store."""

from __future__ import annotations

import csv
import io
import json
import signal
from pathlib import Path

from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.config import load_settings
from factory_tui.ingest.client import IngestClient
from factory_tui.ingest.listener import Listener
from factory_tui.models import parse_event
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import ServeProcess, run_cli
from tests.test_report import CONFIG, EXAMPLE, fill, wire

runner = CliRunner()

LATE = [
    # Stored after the example but earlier in time: export is in time order, not arrival.
    wire("09:59:30", "absent", "W2", "S2", model_version="yolo-8", camera_id="cam-2"),
    wire("12:00:00", "working", "W2", "S2", confidence=0.75),
]


def make_site(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG + "\n[ingest]\nport = 0\nauto_register = true\n")
    db = tmp_path / "factory.db"
    fill(db, EXAMPLE)
    fill(db, LATE)
    return config, db


def export(config: Path, db: Path, *args: str) -> str:
    result = runner.invoke(
        app, ["export", "events", "--config", str(config), "--db", str(db), *args]
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_csv_lists_every_event_in_time_order(tmp_path: Path) -> None:
    config, db = make_site(tmp_path)
    rows = list(csv.DictReader(io.StringIO(export(config, db))))
    assert [row["timestamp"] for row in rows] == [
        "2024-05-01T09:59:30Z",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:05:00Z",
        "2024-05-01T10:10:00Z",
        "2024-05-01T10:40:00Z",
        "2024-05-01T12:00:00Z",
    ]
    first = rows[0]
    assert (first["worker_id"], first["workstation_id"], first["event_type"]) == (
        "W2",
        "S2",
        "absent",
    )
    assert (first["model_version"], first["camera_id"], first["count"]) == ("yolo-8", "cam-2", "0")
    assert rows[3]["count"] == "4"
    assert rows[1]["model_version"] == ""
    with SqliteStore.open(db, read_only=True) as store:
        stored = {record.event_hash for record in store.iter_since(0)}
    assert {row["event_hash"] for row in rows} == stored


def test_from_and_to_select_a_half_open_range_in_local_time(tmp_path: Path) -> None:
    config, db = make_site(tmp_path)
    # Lisbon is UTC+1 in May: 11:00-11:40 local is 10:00-10:40 UTC, the end excluded.
    text = export(config, db, "--from", "2024-05-01T11:00", "--to", "2024-05-01T11:40")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["timestamp"] for row in rows] == [
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:05:00Z",
        "2024-05-01T10:10:00Z",
    ]


def test_jsonl_lines_are_wire_events_with_the_same_hashes(tmp_path: Path) -> None:
    config, db = make_site(tmp_path)
    lines = export(config, db, "--format", "jsonl").splitlines()
    assert len(lines) == 6
    with SqliteStore.open(db, read_only=True) as store:
        stored = {record.event_hash for record in store.iter_since(0)}
    assert {parse_event(line).event_hash() for line in lines} == stored
    assert json.loads(lines[0]) == {
        "timestamp": "2024-05-01T09:59:30Z",
        "worker_id": "W2",
        "workstation_id": "S2",
        "event_type": "absent",
        "confidence": 0.9,
        "count": 0,
        "model_version": "yolo-8",
        "camera_id": "cam-2",
    }


async def test_jsonl_replays_through_a_listener_into_an_identical_store(tmp_path: Path) -> None:
    config, db = make_site(tmp_path)
    lines = [line.encode() for line in export(config, db, "--format", "jsonl").splitlines()]
    copy = tmp_path / "copy.db"
    settings = load_settings(config, environ={}, overrides={"store.path": copy})
    listener = Listener(settings)
    await listener.start()
    client = IngestClient("127.0.0.1", listener.port)
    try:
        await client.connect()
        replies = await client.send(lines)
        again = await client.send(lines)
    finally:
        await client.close()
        await listener.stop()
    assert [reply["status"] for reply in replies] == ["accepted"] * len(lines)
    assert [reply["status"] for reply in again] == ["duplicate"] * len(lines)
    assert export(config, copy, "--format", "jsonl") == export(config, db, "--format", "jsonl")
    window = ("--from", "2024-05-01T10:00", "--to", "2024-05-01T14:00")
    reports = [
        runner.invoke(
            app,
            ["report", "--config", str(config), "--db", str(path), "--format", "json"]
            + [*window, "--at", "2024-05-01T14:00"],
        )
        for path in (db, copy)
    ]
    assert reports[0].exit_code == 0, reports[0].stderr
    assert reports[0].stdout == reports[1].stdout


async def test_export_then_send_replays_into_a_fresh_served_database(tmp_path: Path) -> None:
    """The commands a user runs: `export events --format jsonl` to a file, then `send` that
    file to `serve` on a new database: the same events (hashes and all), and a second send of
    the file changes nothing."""
    config, db = make_site(tmp_path)
    dump = tmp_path / "events.jsonl"
    code, out, err = await run_cli(
        "export", "events", "--format", "jsonl", "--config", str(config), "--db", str(db)
    )
    assert code == 0, err
    dump.write_text(out)
    copy = tmp_path / "copy.db"
    server = await ServeProcess.start("--config", str(config), "--db", str(copy))
    try:
        first = await run_cli("send", str(dump), "--port", str(server.port))
        again = await run_cli("send", str(dump), "--port", str(server.port))
    finally:
        server.process.send_signal(signal.SIGTERM)
        rest = await server.stderr_rest()
        await server.kill()
    assert first[0] == 0, first[2]
    assert first[1].splitlines() == ["accepted 6, duplicate 0, rejected 0"]
    assert again[1].splitlines() == ["accepted 0, duplicate 6, rejected 0"]
    assert "stopped: accepted 6, duplicate 6, rejected 0" in rest
    with (
        SqliteStore.open(db, read_only=True) as original,
        SqliteStore.open(copy, read_only=True) as replayed,
    ):
        assert {e.event_hash for e in replayed.iter_since(0)} == {
            e.event_hash for e in original.iter_since(0)
        }
    assert export(config, copy, "--format", "jsonl") == out


def test_an_empty_store_exports_a_header_or_nothing(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    SqliteStore.open(db).close()
    config = tmp_path / "factory.toml"
    config.write_text(CONFIG)
    assert export(config, db).splitlines() == [
        "id,timestamp,worker_id,workstation_id,event_type,confidence,count,model_version,"
        "camera_id,received,event_hash"
    ]
    assert export(config, db, "--format", "jsonl") == ""


def test_mistakes_are_one_clear_sentence(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "events", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    config, db = make_site(tmp_path)
    result = runner.invoke(
        app, ["export", "events", "--config", str(config), "--db", str(db), "--from", "soon"]
    )
    assert result.exit_code == 2
    assert "--from: 'soon' is not an ISO 8601 date-time" in result.stderr
