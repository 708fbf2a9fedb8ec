"""Wire and domain models: the camera event as it arrives, and as it is stored.

Pydantic lives here, at the edge; inside the program events travel as frozen dataclasses.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Final, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

EventType = Literal["working", "idle", "absent", "product_count"]
EVENT_TYPES: Final = ("working", "idle", "absent", "product_count")
STATE_TYPES: Final = frozenset({"working", "idle", "absent"})
MAX_ID_LENGTH: Final = 64

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class EventError(ValueError):
    """A line that is not a valid event; the message is one human sentence naming the field."""


def to_utc_us(moment: datetime) -> int:
    """Integer microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_us() -> int:
    """The wall clock as UTC epoch microseconds (for received times and the console's "now")."""
    return time.time_ns() // 1_000


def from_utc_us(us: int) -> datetime:
    """The aware UTC datetime of integer epoch microseconds."""
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def iso_utc(us: int) -> str:
    """Epoch microseconds as an ISO 8601 string with a `Z`, microseconds only when non-zero."""
    text = from_utc_us(us).isoformat()
    return text.removesuffix("+00:00") + "Z"


def canonical_form(
    ts_us: int,
    worker_id: str,
    workstation_id: str,
    event_type: str,
    confidence: float,
    count: int,
    model_version: str | None,
) -> str:
    """The canonical text of an event's parsed values, which its dedup hash is taken over.

    Exactly `json.dumps([ts_us, worker_id, workstation_id, event_type,
    repr(float(confidence)), count, model_version], separators=(",", ":"),
    ensure_ascii=True)`, built by hand with the same C string encoder because the ingest runs
    it once per event and json.dumps costs three times as much.
    """
    quote = json.encoder.encode_basestring_ascii
    model = "null" if model_version is None else quote(model_version)
    # repr of the parsed float: 0.9 and 0.90 are the same number, so the same text.
    return (
        f"[{int(ts_us)},{quote(worker_id)},{quote(workstation_id)},{quote(event_type)},"
        f"{quote(repr(float(confidence)))},{int(count)},{model}]"
    )


class WireEvent(BaseModel):
    """One camera event, exactly as the wire format (README, "Wire format") allows it.

    Validate with `WireEvent.model_validate_json(line, context={"tz": tz})`; `tz` is the zone a
    naive timestamp is read in (UTC when absent).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    timestamp: datetime
    worker_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    workstation_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    event_type: EventType
    confidence: float = Field(strict=True)
    count: int = Field(default=0, strict=True)
    model_version: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    camera_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp_is_text(cls, value: Any) -> Any:
        # Numbers would be read as epoch seconds by pydantic; the wire format says ISO 8601 only.
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 string")
        return value

    @field_validator("timestamp")
    @classmethod
    def _timestamp_to_utc(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value.tzinfo is None:
            context = info.context or {}
            zone: tzinfo = context.get("tz") or UTC
            value = value.replace(tzinfo=zone)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            # 0001-01-01T00:15+02:00 is before year 1 in UTC: not a time we can store.
            raise ValueError("is outside the years 1 to 9999 in UTC") from None

    @field_validator("confidence")
    @classmethod
    def _confidence_in_range(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"must be between 0 and 1, got {value:g}")
        return value

    @field_validator("count")
    @classmethod
    def _count_not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"must be 0 or more, got {value}")
        return value

    @model_validator(mode="after")
    def _count_matches_type(self) -> WireEvent:
        if self.event_type == "product_count" and self.count < 1:
            raise ValueError(f"count: product_count needs count >= 1, got {self.count}")
        if self.event_type != "product_count" and self.count != 0:
            raise ValueError(f"count: must be 0 or absent for {self.event_type}, got {self.count}")
        return self

    @property
    def ts_us(self) -> int:
        """The timestamp as UTC integer microseconds."""
        return to_utc_us(self.timestamp)

    def canonical(self) -> str:
        """The canonical text of the parsed values that the dedup hash is taken over."""
        return canonical_form(
            self.ts_us,
            self.worker_id,
            self.workstation_id,
            self.event_type,
            self.confidence,
            self.count,
            self.model_version,
        )

    def event_hash(self) -> str:
        """SHA-256 (hex) of the canonical form: one event, one hash, however it was spelled."""
        return hashlib.sha256(self.canonical().encode("ascii")).hexdigest()

    def to_wire(self) -> dict[str, Any]:
        """The event as a wire-format JSON object (UTC timestamp with `Z`)."""
        return _wire_object(self)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the field and the problem, e.g. `confidence: must be between 0 and 1`."""
    errors = error.errors(include_url=False)
    # An unknown field is usually a typo of a required one: name the typo, not the "missing" twin.
    first = min(errors, key=lambda item: item["type"] != "extra_forbidden")
    location = ".".join(str(part) for part in first["loc"])
    kind = first["type"]
    message = first["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return f"{location}: is required"
    if kind == "extra_forbidden":
        return f"{location}: unknown field (allowed: {', '.join(WireEvent.model_fields)})"
    if kind == "literal_error" and location == "event_type":
        return f"event_type: must be one of {', '.join(EVENT_TYPES)}, got {first['input']!r}"
    if kind == "json_invalid":
        return f"invalid JSON: {first.get('ctx', {}).get('error', message)}"
    if kind == "model_type" or (kind == "model_attributes_type" and not location):
        return "line must be a JSON object"
    if kind.startswith("datetime") and location == "timestamp":
        return f"timestamp: must be an ISO 8601 date-time, got {first['input']!r}"
    if not location:
        # Model-level validators put the field name at the front of their message already.
        return message
    if "input" in first and kind not in {"value_error"}:
        return f"{location}: {message.lower()}, got {_short(first['input'])}"
    return f"{location}: {message}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_event(line: bytes | str, tz: tzinfo | None = None) -> WireEvent:
    """Parse and validate one wire line; raise EventError with a one-line message."""
    try:
        return WireEvent.model_validate_json(line, context={"tz": tz or UTC})
    except ValidationError as error:
        message = describe_validation_error(error)
        if message.startswith("invalid JSON") and isinstance(line, bytes):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                message = f"invalid UTF-8 at byte {bad.start}"
        raise EventError(message) from None


class NewEventRow(NamedTuple):
    """A validated event as the storage inserts it (the columns of a new row, in order)."""

    ts_us: int
    worker_id: str
    workstation_id: str
    event_type: str
    confidence: float
    unit_count: int
    """The event's `count` (`count` would shadow `tuple.count`)."""
    model_version: str | None
    camera_id: str | None
    received_us: int
    event_hash: str


def prepare_row(event: WireEvent, received_us: int) -> NewEventRow:
    """The row stored for a validated event."""
    return NewEventRow(
        event.ts_us,
        event.worker_id,
        event.workstation_id,
        event.event_type,
        event.confidence,
        event.count,
        event.model_version,
        event.camera_id,
        received_us,
        event.event_hash(),
    )


class EngineRow(NamedTuple):
    """The columns of a stored event that the engine folds in, in the order it reads them.

    Bulk reads may hand over the database driver's plain tuples in this order instead (the
    engine reads rows by position): building a million NamedTuples would cost the warm start
    about a tenth of its time.
    """

    worker_id: str
    ts_us: int
    event_hash: str | bytes
    """The hash as text, or a SHA-256 digest as its 32 raw bytes (as the SQLite store keeps it)."""
    event_type: str
    workstation_id: str
    unit_count: int
    """The event's `count` (`count` would shadow `tuple.count`)."""
    confidence: float
    id: int


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event row, as the engine and the views read it."""

    id: int
    ts_us: int
    worker_id: str
    workstation_id: str
    event_type: str
    confidence: float
    count: int
    model_version: str | None
    camera_id: str | None
    received_us: int
    event_hash: str

    @property
    def is_state(self) -> bool:
        """True for working / idle / absent, which set the worker's state."""
        return self.event_type in STATE_TYPES

    def to_wire(self) -> dict[str, Any]:
        """The row as a wire-format object, so exported history can be re-sent."""
        return _wire_object(self)

    def as_new_row(self) -> NewEventRow:
        """The row as another database inserts it (all but the id, which is each database's
        own): what store-and-forward ships."""
        return NewEventRow(
            self.ts_us,
            self.worker_id,
            self.workstation_id,
            self.event_type,
            self.confidence,
            self.count,
            self.model_version,
            self.camera_id,
            self.received_us,
            self.event_hash,
        )


def _wire_object(event: WireEvent | EventRecord) -> dict[str, Any]:
    data: dict[str, Any] = {
        "timestamp": iso_utc(event.ts_us),
        "worker_id": event.worker_id,
        "workstation_id": event.workstation_id,
        "event_type": event.event_type,
        "confidence": event.confidence,
        "count": event.count,
    }
    if event.model_version is not None:
        data["model_version"] = event.model_version
    if event.camera_id is not None:
        data["camera_id"] = event.camera_id
    return data


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """A worker or workstation id with its display name."""

    id: str
    name: str
