"""What both storage backends do the same way, above their SQL: batch reads built on one
statement each backend provides, the models' first events of a batch, reading the owner and the
sites back. Each backend keeps its own SQL; this keeps the logic around it in one place."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

from factory_tui.models import EventRecord, NewEventRow, WireEvent, now_us, prepare_row
from factory_tui.records import SiteRecord
from factory_tui.storage.base import READ_BATCH, AlertCondition, InsertStatus

_NEVER: Final = 2**63 - 1
_LOWEST: Final = -(2**63)
OWNER_KEYS: Final = ("owner_pid", "owner_host", "owner_port")
"""The meta keys that record which process listens for a database."""


class BackendBase:
    """The parts of `storage.Store` that need no SQL of their own."""

    site_id: str

    def read_since(self, cursor: int, limit: int = READ_BATCH) -> list[EventRecord]:
        raise NotImplementedError

    def insert_rows(self, rows: Sequence[NewEventRow]) -> list[InsertStatus]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _range_batch(self, after: tuple[int, int], high: int, batch: int) -> list[EventRecord]:
        """The next `batch` rows after (ts_us, id) `after` and before `high`, in that order."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scoped(self, site_id: str) -> Self:
        """The same connection, reading and writing another site's data (close the original:
        the copy shares its connection)."""
        other = copy.copy(self)
        other.site_id = site_id
        return other

    def insert_fresh_rows(self, rows: Sequence[NewEventRow]) -> list[InsertStatus]:
        """`insert_rows` for rows that are most likely all new (a backend may do better)."""
        return self.insert_rows(rows)

    def insert_batch(
        self, events: Sequence[WireEvent], received_us: int | None = None
    ) -> list[InsertStatus]:
        """`insert_rows` for validated events, received now unless told otherwise."""
        received = now_us() if received_us is None else received_us
        return self.insert_rows([prepare_row(event, received) for event in events])

    def iter_since(self, cursor: int = 0, batch: int = READ_BATCH) -> Iterator[EventRecord]:
        """Every row with id > cursor, read in batches with no transaction held in between."""
        while True:
            rows = self.read_since(cursor, batch)
            if not rows:
                return
            yield from rows
            cursor = rows[-1].id

    def iter_range(
        self, from_us: int | None = None, to_us: int | None = None, batch: int = READ_BATCH
    ) -> Iterator[EventRecord]:
        """Rows with from_us <= ts_us < to_us in (ts_us, id) order, read in batches."""
        high = _NEVER if to_us is None else to_us
        after = (_LOWEST if from_us is None else from_us, -1)
        while True:
            rows = self._range_batch(after, high, batch)
            if not rows:
                return
            yield from rows
            after = (rows[-1].ts_us, rows[-1].id)


def model_firsts(rows: Iterable[NewEventRow]) -> dict[str, int]:
    """Each model_version's earliest timestamp in a batch ('' for events that named none)."""
    firsts: dict[str, int] = {}
    for row in rows:
        key = row.model_version or ""
        if row.ts_us < firsts.get(key, _NEVER):
            firsts[key] = row.ts_us
    return firsts


def stored_hash(event_hash: str) -> str | bytes:
    """How the events table keeps a hash: a SHA-256 hex digest (what ingest computes) as its 32
    raw bytes, half the size in the row and in the unique index; any other text (hand-made
    rows) as it is. Reads give the text back (`_HASH_TEXT`)."""
    if len(event_hash) == 64:
        try:
            digest = bytes.fromhex(event_hash)
        except ValueError:
            return event_hash
        if digest.hex() == event_hash:  # not upper case, no spaces: it reads back the same
            return digest
    return event_hash


def owner_from(values: Mapping[str, str]) -> tuple[int, str, int] | None:
    """(pid, host, port) from the owner's meta rows, if all three are there."""
    if any(key not in values for key in OWNER_KEYS):
        return None
    return int(values["owner_pid"]), values["owner_host"], int(values["owner_port"])


def owner_rows(pid: int, host: str, port: int) -> list[tuple[str, str]]:
    """The meta rows that record the owner."""
    return list(zip(OWNER_KEYS, (str(pid), host, str(port)), strict=True))


def site_records(rows: Iterable[Sequence[Any]]) -> list[SiteRecord]:
    """Sites from (id, name, description JSON, updated_us) rows."""
    return [SiteRecord(ident, name, json.loads(text), int(at)) for ident, name, text, at in rows]


def description_text(description: Mapping[str, Any]) -> str:
    """A site's description as stored (JSON, keys sorted so equal descriptions compare)."""
    return json.dumps(dict(description), sort_keys=True)


@dataclass(frozen=True, slots=True)
class AlertChanges:
    """What makes the alerts table match the conditions holding now."""

    cleared: list[int]
    """Ids of active alerts whose condition is gone."""
    details: list[tuple[str, int]]
    """(new details, id) of active alerts whose condition holds with other words."""
    raised: list[tuple[str, str, str, int]]
    """(kind, subject, details, started_us) of conditions not yet an active alert."""


def alert_changes(
    active: Iterable[tuple[int, str, str, str]], conditions: Iterable[AlertCondition]
) -> AlertChanges:
    """Compare the active alerts, as (id, kind, subject, details) rows, with the conditions."""
    wanted = {(kind, subject): (details, since) for kind, subject, details, since in conditions}
    held = {(kind, subject): (ident, details) for ident, kind, subject, details in active}
    cleared = [ident for key, (ident, _) in held.items() if key not in wanted]
    details = [
        (wanted[key][0], ident)
        for key, (ident, text) in held.items()
        if key in wanted and wanted[key][0] != text
    ]
    raised = [(k, s, d, since) for (k, s), (d, since) in wanted.items() if (k, s) not in held]
    return AlertChanges(cleared, details, raised)
