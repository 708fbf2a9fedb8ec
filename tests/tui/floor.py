"""A fixed morning on the demo floor: hand-written event timelines for the console tests.

Shift A runs 06:00-14:00 UTC on 2025-03-04 and the console looks at 10:30. Every worker has a
story that puts it in a different state at 10:30 (max_gap 15 min, cameras heartbeat every 5):

- W1 Ana Silva: working at S1 since 06:05, 6 units an hour.
- W2 Bilal Khan: working at S2 06:10-09:00, idle since.
- W3 Chen Wei: working at S3 06:00-10:00, absent since.
- W4 Dana Novak: working at S4 06:20-09:40, then her camera went dark: unobserved.
- W5 Emeka Obi: working at S5 since 07:00, 12 units an hour, one low-confidence sighting.
- W6 Freya Lind: not seen at all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from factory_tui.config import Settings, demo_data
from factory_tui.models import parse_event, to_utc_us
from factory_tui.storage import SqliteStore

DAY = datetime(2025, 3, 4, tzinfo=UTC)
AT = DAY + timedelta(hours=10, minutes=30)
AT_US = to_utc_us(AT)
HEARTBEAT = timedelta(minutes=5)


def at(hours: int, minutes: int = 0) -> datetime:
    """A time of day on the fixture's date."""
    return DAY + timedelta(hours=hours, minutes=minutes)


def line(
    when: datetime,
    worker: str,
    station: str,
    kind: str,
    *,
    count: int = 0,
    confidence: float = 0.9,
) -> bytes:
    """One wire line."""
    event: dict[str, object] = {
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "worker_id": worker,
        "workstation_id": station,
        "event_type": kind,
        "confidence": confidence,
        "model_version": "yolo-v8.2",
    }
    if count:
        event["count"] = count
    return json.dumps(event).encode()


def spell(
    worker: str, station: str, kind: str, start: datetime, end: datetime, *, confidence: float = 0.9
) -> list[bytes]:
    """A state held from `start` to `end` (exclusive), repeated every heartbeat."""
    lines = []
    moment = start
    while moment < end:
        lines.append(line(moment, worker, station, kind, confidence=confidence))
        moment += HEARTBEAT
    return lines


def units(
    worker: str, station: str, start: datetime, end: datetime, every: timedelta
) -> list[bytes]:
    """One unit every `every` from `start + every` up to `end`."""
    lines = []
    moment = start + every
    while moment < end:
        lines.append(line(moment, worker, station, "product_count", count=1))
        moment += every
    return lines


def floor_lines() -> list[bytes]:
    """Every event of the fixture morning up to 10:30, in timestamp order per worker."""
    return [
        *spell("W1", "S1", "working", at(6, 5), AT),
        *units("W1", "S1", at(6, 5), AT, timedelta(minutes=10)),
        *spell("W2", "S2", "working", at(6, 10), at(9)),
        *units("W2", "S2", at(6, 10), at(9), timedelta(minutes=15)),
        *spell("W2", "S2", "idle", at(9), AT),
        *spell("W3", "S3", "working", at(6), at(10)),
        *units("W3", "S3", at(6), at(10), timedelta(minutes=12)),
        *spell("W3", "S3", "absent", at(10), AT),
        *spell("W4", "S4", "working", at(6, 20), at(9, 40)),
        *units("W4", "S4", at(6, 20), at(9, 40), timedelta(minutes=20)),
        *spell("W5", "S5", "working", at(7), AT, confidence=0.95),
        *units("W5", "S5", at(7), AT, timedelta(minutes=5)),
        line(at(10, 2), "W5", "S5", "working", confidence=0.41),
    ]


def floor_settings(tmp_path_db: str, *, port: int = 0, tick_s: float = 1.0) -> Settings:
    """The demo roster and shifts, this database, a free port."""
    data = demo_data()
    data["store"] = {"path": tmp_path_db}
    data["ingest"] = {"port": port}
    data["metrics"] = {"tick_s": tick_s}
    return Settings.model_validate(data)


def fill(path: str, lines: list[bytes] | None = None) -> int:
    """Create the database at `path` with the fixture's events; returns how many were stored."""
    settings = floor_settings(path)
    events = [parse_event(raw) for raw in (floor_lines() if lines is None else lines)]
    with SqliteStore.open(path) as store:
        store.upsert_roster(settings.roster_workers(), settings.roster_workstations())
        statuses = store.insert_batch(events, received_us=AT_US)
    return statuses.count("accepted")
