"""Building stored events for engine tests, with the same SHA-256 hash the ingest would give."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from itertools import count

from factory_tui.models import EventRecord, to_utc_us

S = 1_000_000
MIN = 60 * S
DAY = to_utc_us(datetime(2024, 5, 1, tzinfo=UTC))
"""Midnight UTC of the day the hand-computed cases happen on."""

_ids = count(1)


def at(clock: str) -> int:
    """Epoch µs of a wall time on DAY, e.g. at("10:40") or at("10:40:30")."""
    parts = [int(part) for part in clock.split(":")]
    hours, minutes = parts[0], parts[1]
    seconds = parts[2] if len(parts) > 2 else 0
    return DAY + ((hours * 60 + minutes) * 60 + seconds) * S


def event_hash(
    ts_us: int,
    worker_id: str,
    workstation_id: str,
    event_type: str,
    confidence: float,
    count_: int,
    model_version: str | None = None,
) -> str:
    """The dedup hash of DESIGN.md over these parsed values (the canonical form of models.py)."""
    canonical = json.dumps(
        [
            ts_us,
            worker_id,
            workstation_id,
            event_type,
            repr(float(confidence)),
            count_,
            model_version,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def ev(
    ts_us: int,
    event_type: str,
    worker_id: str = "W1",
    workstation_id: str = "S1",
    *,
    confidence: float = 0.9,
    units: int = 0,
    row_id: int | None = None,
    model_version: str | None = None,
    camera_id: str | None = None,
) -> EventRecord:
    """One stored event; `units` is the count of a product_count (default 1 for that type).

    The hash covers model_version but not camera_id, as the ingest's does: the same sighting
    reported by two cameras is one event.
    """
    if event_type == "product_count" and units == 0:
        units = 1
    return EventRecord(
        id=next(_ids) if row_id is None else row_id,
        ts_us=ts_us,
        worker_id=worker_id,
        workstation_id=workstation_id,
        event_type=event_type,
        confidence=confidence,
        count=units,
        model_version=model_version,
        camera_id=camera_id,
        received_us=ts_us,
        event_hash=event_hash(
            ts_us, worker_id, workstation_id, event_type, confidence, units, model_version
        ),
    )
