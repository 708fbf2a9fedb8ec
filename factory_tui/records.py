"""Frozen value types that cross the layers: what the storage, the listener and the machine
reading hand up, and what the console's views show.

They live below everything that makes or shows them, so a widget can render an alert or the
listener's counters without importing the storage backend or the TCP server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

HealthLevel = Literal["ok", "warn", "crit"]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One stored alert: raised at `started_us`, cleared at `cleared_us` (None while active)."""

    id: int
    kind: str
    subject: str
    details: str
    started_us: int
    cleared_us: int | None


@dataclass(frozen=True, slots=True)
class SiteRecord:
    """One site as the database describes it: what its box forwarded or its listener wrote."""

    id: str
    name: str
    description: Mapping[str, Any]
    """The site's settings as JSON values: timezone, shifts, max_gap_s, roster."""
    updated_us: int


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """Events of one model_version in a window (None: events that named no model)."""

    model_version: str | None
    events: int
    mean_confidence: float
    min_confidence: float
    units: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected line, kept in memory for the console."""

    time_us: int
    peer: str
    line: str
    """A short excerpt of the line as received."""
    error: str


REJECTION_REASONS: Final = ("invalid", "unknown_id", "too_long", "unfinished", "auth")
"""What `/metrics` counts rejected lines by (`rejection_reason`)."""


def rejection_reason(error: str) -> str:
    """The reason of a rejection message, one of REJECTION_REASONS (`invalid` for any other)."""
    if error.startswith("auth:"):
        return "auth"
    if "is not in the roster" in error:
        return "unknown_id"
    if "longer than" in error:
        return "too_long"
    if "not finished within" in error:
        return "unfinished"
    return "invalid"


class AuditEntry(NamedTuple):
    """Something the audit trail keeps: who connected, was refused or failed to authenticate."""

    at_us: int
    kind: str
    """What happened: one of `AUDIT_KINDS`."""
    peer: str
    """The address it concerns (`host:port`), or who did it."""
    detail: str
    """The rest, in words (auth result, TLS subject, counts, the refusal)."""


class AuditRecord(NamedTuple):
    """An `AuditEntry` as stored, with its id."""

    id: int
    at_us: int
    kind: str
    peer: str
    detail: str


ACTION_FAILED: Final = "action_failed"
"""An alert action that failed (peer: the action, detail: `<alert>: <error>`), stored by the
process that owns the database so its viewers list it too."""

AUDIT_KINDS: Final = (
    "connection_opened",
    "connection_closed",
    "auth_failed",
    "tls_failed",
    "peer_refused",
    ACTION_FAILED,
)
"""The kinds of audit entries: the listener's, and the failed alert actions (`ACTION_FAILED`)."""


@dataclass(frozen=True, slots=True)
class IngestStats:
    """Counters since the listener started, for the console and the `serve` log."""

    accepted: int
    duplicates: int
    rejected: int
    connections: int
    """Connections open now."""
    rate_per_s: float
    """Accepted events per second over the last few seconds."""
    recent_rejections: tuple[Rejection, ...]
    """The last rejected lines, newest last."""
    pending: int = 0
    """Lines received and not answered yet (queued or being committed)."""
    rejected_by_reason: Mapping[str, int] = field(default_factory=dict)
    """`rejected` split by `rejection_reason`."""
    one_way: int = 0
    """Connections found to read none of their replies (log shippers): read on, replies dropped."""
    replies_dropped: int = 0
    """Replies of one-way connections dropped unwritten."""
    dropped_unread: int = 0
    """Lines of connections that vanished mid-stream, dropped before validation (unanswered)."""


@dataclass(frozen=True, slots=True)
class CommitLatency:
    """How long the listener's batch commits took, as histogram buckets (for `/metrics`)."""

    bounds_s: tuple[float, ...]
    """Upper bounds of the buckets, in seconds, ascending."""
    counts: tuple[int, ...]
    """Commits per bucket (not cumulative); one more than `bounds_s`: the last is over all."""
    sum_s: float
    """Seconds spent in every commit together."""


@dataclass(frozen=True, slots=True)
class ForwardState:
    """Where store-and-forward to the central database stands, as of when it was read."""

    target: str
    """The central database, as a message names it (a masked URL or a path)."""
    behind: int | None
    """This site's events not yet committed centrally (None: not counted yet)."""
    down_s: float | None = None
    """How long the central database has been unreachable (None: it is reachable)."""
    error: str = ""
    """The last failure, when forwarding is failing."""

    def describe(self) -> str:
        """A few words for the summary bar and the log: "caught up", "1,204 events behind",
        "central unreachable for 3m"."""
        behind = self.behind
        backlog = ""
        if behind:
            backlog = f"{behind:,} event{'' if behind == 1 else 's'} behind"
        if self.down_s is not None:
            text = f"central unreachable for {_short_duration(self.down_s)}"
            return f"{text} ({backlog})" if backlog else text
        if self.error:
            return f"forwarding failing: {self.error}"
        if behind is None:
            return "starting"
        return backlog or "caught up"


@dataclass(frozen=True, slots=True)
class MqttState:
    """Where the MQTT subscription stands, as of when it was read."""

    broker: str
    """The broker, as a message names it (`mqtt://host:port`, no credentials)."""
    topic: str
    down_s: float | None
    """How long the broker has been unreachable (None: connected)."""
    error: str = ""
    """Why the last connection or subscription failed."""
    messages: int = 0
    """Messages received since start (a redelivered one counts again)."""
    in_flight: int = 0
    """Messages received and not yet acknowledged (queued, committing or dead-lettering)."""

    def describe(self) -> str:
        """A few words for the summary bar and the log: "MQTT up", "MQTT down 2m"."""
        if self.down_s is None:
            return "MQTT up"
        return f"MQTT down {_short_duration(self.down_s)}"


def _short_duration(seconds: float) -> str:
    """`45s`, `3m`, `2h05m`: one unit under an hour."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass(frozen=True, slots=True)
class HealthReading:
    """One sample: machine-wide CPU and RAM use, this process's resident memory, and the free
    share of the database's disk."""

    cpu_percent: float
    ram_percent: float
    rss_bytes: int
    disk_free_percent: float | None = None
    """Free share (0-100) of the disk holding the database (None: not read, e.g. a
    PostgreSQL server's)."""


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """Percentages (of CPU or RAM, whichever is higher) at which the badge turns amber / red,
    and the free share of the database's disk under which it is at least amber."""

    warn_percent: float = 75.0
    crit_percent: float = 90.0
    disk_low_percent: float = 10.0

    def disk_low(self, reading: HealthReading) -> bool:
        """The database's disk has less than `disk_low_percent` free."""
        free = reading.disk_free_percent
        return free is not None and free < self.disk_low_percent

    def level(self, reading: HealthReading) -> HealthLevel:
        """The badge level of a reading: the worse of CPU and RAM decides; a low disk makes
        it at least amber."""
        worst = max(reading.cpu_percent, reading.ram_percent)
        if worst >= self.crit_percent:
            return "crit"
        if worst >= self.warn_percent or self.disk_low(reading):
            return "warn"
        return "ok"
