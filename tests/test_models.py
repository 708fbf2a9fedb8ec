"""The wire event: validation messages, timestamps, canonical form and the dedup hash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from factory_tui.models import EventError, iso_utc, parse_event, to_utc_us

BASE = {
    "timestamp": "2026-03-02T10:00:00Z",
    "worker_id": "W1",
    "workstation_id": "S1",
    "event_type": "working",
    "confidence": 0.9,
}


def line(**changes: object) -> str:
    data = {**BASE, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def test_valid_event_is_parsed_to_utc_microseconds() -> None:
    event = parse_event(line(timestamp="2026-03-02T11:00:00.123456+01:00"))
    assert event.ts_us == to_utc_us(datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC))
    assert event.timestamp.tzinfo is UTC
    assert event.count == 0
    assert event.model_version is None


def test_naive_timestamp_is_read_in_the_configured_zone() -> None:
    naive = line(timestamp="2026-07-01T08:00:00")
    assert parse_event(naive).ts_us == to_utc_us(datetime(2026, 7, 1, 8, tzinfo=UTC))
    lisbon = parse_event(naive, ZoneInfo("Europe/Lisbon"))  # UTC+1 in summer
    assert lisbon.ts_us == to_utc_us(datetime(2026, 7, 1, 7, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (line(confidence=1.7), "confidence: must be between 0 and 1, got 1.7"),
        (line(confidence=-0.1), "confidence: must be between 0 and 1, got -0.1"),
        (line(confidence="0.5"), "confidence: input should be a valid number, got '0.5'"),
        (line(confidence=True), "confidence: input should be a valid number, got True"),
        (
            line(event_type="workin"),
            "event_type: must be one of working, idle, absent, product_count, got 'workin'",
        ),
        (line(event_type="product_count"), "count: product_count needs count >= 1, got 0"),
        (line(event_type="product_count", count=-2), "count: must be 0 or more, got -2"),
        (line(event_type="idle", count=3), "count: must be 0 or absent for idle, got 3"),
        (line(count=1.5), "count: input should be a valid integer, got 1.5"),
        (line(timestamp=1767261600), "timestamp: must be an ISO 8601 string"),
        (line(timestamp="yesterday"), "timestamp: must be an ISO 8601 date-time, got 'yesterday'"),
        (line(worker_id=...), "worker_id: is required"),
        (line(worker_id=""), "worker_id: string should have at least 1 character, got ''"),
        (line(worker_id=7), "worker_id: input should be a valid string, got 7"),
        ('{"wroker_id": "W1"}', "wroker_id: unknown field"),
        ("[1, 2]", "line must be a JSON object"),
        ('"text"', "line must be a JSON object"),
        ("{not json", "invalid JSON: key must be a string at line 1 column 2"),
        ("", "invalid JSON: EOF while parsing a value at line 1 column 0"),
    ],
)
def test_invalid_events_name_the_field(text: str, message: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_typo_in_a_required_field_is_reported_as_unknown_field() -> None:
    data = json.loads(line())
    data["workr_id"] = data.pop("worker_id")
    with pytest.raises(EventError, match="^workr_id: unknown field"):
        parse_event(json.dumps(data))


def test_invalid_utf8_is_named() -> None:
    with pytest.raises(EventError, match="invalid UTF-8 at byte 0"):
        parse_event(b"\xff" + line().encode())


@pytest.mark.parametrize(
    "spelling",
    [
        line(timestamp="2026-03-02T10:00:00+00:00"),
        line(timestamp="2026-03-02T11:00:00+01:00"),
        line(timestamp="2026-03-02T10:00:00.000Z"),
        line(confidence=0.90),
        '{"confidence":0.90,"event_type":"working","workstation_id":"S1",'
        '"worker_id":"W1","timestamp":"2026-03-02T10:00:00Z","count":0}',
        '  { "timestamp" : "2026-03-02T10:00:00Z", "worker_id": "W1", "workstation_id":'
        ' "S1", "event_type": "working", "confidence": 9e-1 }  ',
        line(camera_id="CAM-7"),  # which camera saw it does not make it another event
    ],
)
def test_spellings_of_one_event_hash_the_same(spelling: str) -> None:
    assert parse_event(spelling).event_hash() == parse_event(line()).event_hash()


@pytest.mark.parametrize(
    "other",
    [
        line(timestamp="2026-03-02T10:00:00.000001Z"),
        line(worker_id="W2"),
        line(workstation_id="S2"),
        line(event_type="idle"),
        line(confidence=0.91),
        line(model_version="yolo-v8"),
        line(event_type="product_count", count=1),
    ],
)
def test_different_events_hash_differently(other: str) -> None:
    assert parse_event(other).event_hash() != parse_event(line()).event_hash()


def test_hash_is_sha256_hex() -> None:
    digest = parse_event(line()).event_hash()
    assert len(digest) == 64
    int(digest, 16)


def test_to_wire_round_trips() -> None:
    event = parse_event(
        line(model_version="m1", camera_id="C1", timestamp="2026-03-02T10:00:00.5Z")
    )
    again = parse_event(json.dumps(event.to_wire()))
    assert again == event
    assert event.to_wire()["timestamp"] == "2026-03-02T10:00:00.500000Z"


def test_iso_utc_formats_whole_seconds_without_fraction() -> None:
    assert iso_utc(to_utc_us(datetime(2026, 1, 1, tzinfo=UTC))) == "2026-01-01T00:00:00Z"


def test_ids_are_stripped_of_surrounding_whitespace() -> None:
    assert parse_event(line(worker_id=" W1 ")).event_hash() == parse_event(line()).event_hash()


def test_long_bad_values_are_cut_in_messages() -> None:
    with pytest.raises(EventError) as caught:
        parse_event(line(worker_id=[1] * 20))
    assert str(caught.value) == (
        "worker_id: input should be a valid string, got [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, ..."
    )
    with pytest.raises(EventError) as caught:
        parse_event(line(worker_id=[10] * 10))  # its repr is 40 characters: shown whole
    assert str(caught.value).endswith(", got " + repr([10] * 10))
    with pytest.raises(EventError) as caught:
        parse_event(line(worker_id=[100] + [10] * 9))  # 41 characters: cut to 37 and "..."
    assert str(caught.value).endswith(", got [100, 10, 10, 10, 10, 10, 10, 10, 10,...")


def test_an_unknown_field_lists_the_allowed_ones() -> None:
    with pytest.raises(EventError) as caught:
        parse_event(line(wroker=1))
    assert str(caught.value) == (
        "wroker: unknown field (allowed: timestamp, worker_id, workstation_id, event_type,"
        " confidence, count, model_version, camera_id)"
    )
