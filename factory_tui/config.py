"""Settings: one TOML file, `FACTORY_TUI_*` environment variables and command-line flags.

Precedence: flag > environment > file > default. Every mistake a user can make in the file is
reported as a `ConfigError` naming the key, never a traceback.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from factory_tui.models import MAX_ID_LENGTH, RosterEntry
from factory_tui.records import SiteRecord

CONFIG_ENV = "FACTORY_TUI_CONFIG"
ENV_PREFIX = "FACTORY_TUI_"
ALERT_ENV_PREFIX = ENV_PREFIX + "ALERT_"
ALERT_ENV_FIELDS = ("event", "kind", "subject", "details", "site", "started_at", "cleared_at", "at")
"""The alert's fields a command action gets as FACTORY_TUI_ALERT_<FIELD> variables: set by
factory-tui itself, so they are no misspelled settings (a command may run factory-tui)."""
DEFAULT_CONFIG_NAME = "factory.toml"


class ConfigError(Exception):
    """A configuration the program cannot run with; the message says what to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class IngestHttpSettings(_Section):
    """`[ingest.http]`: cameras and video platforms POST events to `/api/events`."""

    host: str = "127.0.0.1"
    """Address to bind; anything but loopback needs a token (`token` or `[ingest] token`)."""
    port: int | None = Field(default=None, ge=0, le=65535)
    """HTTP port (None: off; 0 picks a free one)."""
    token: str = ""
    """Bearer token every POST must carry (`Authorization: Bearer <token>`); empty: the
    `[ingest] token`, when one is set."""
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    """A larger request body is refused with 413."""
    timeout_s: float = Field(default=30.0, gt=0)
    """A request not wholly received this long after its first byte gets 408 and the
    connection is closed (slow clients); an idle keep-alive connection is closed after it."""
    max_connections: int = Field(default=64, ge=1)
    """One more connection is answered 503 and closed."""


MQTT_SCHEMES = ("mqtt://", "mqtts://")


class IngestMqttSettings(_Section):
    """`[ingest.mqtt]`: events subscribed from an MQTT broker, through the same batches as TCP
    lines; each message is acknowledged only once its events are stored."""

    url: str | None = None
    """`mqtt://host:1883`, or `mqtts://host:8883` for TLS; `user:password@` may go before the
    host (None: off)."""
    topic: str = Field(default="factory/+/events", min_length=1)
    """Topic filter to subscribe to (QoS 1); `+` and `#` wildcards allowed."""
    client_id: str = ""
    """Stable id the broker keeps our session under (default: factory-tui-<site id>-<host>-<6 hex
    of the database>, unique per box and database)."""
    username: str = ""
    password: str = ""
    ca_file: Path | None = None
    """TLS: CA certificates to trust (default: the system's)."""
    cert_file: Path | None = None
    """TLS: a client certificate, for brokers that ask for one."""
    key_file: Path | None = None
    """TLS: the private key of `cert_file`."""
    dead_letter_topic: str = ""
    """When set, a message with rejected events is republished here with the errors."""
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT version: 5 (session expiry, receive maximum) or 3.1.1."""
    session_expiry_s: int = Field(default=7 * 86400, ge=60)
    """MQTT 5: how long the broker keeps our session (and queues messages) while we are away."""
    max_in_flight: int = Field(default=256, ge=1, le=65535)
    """MQTT 5: messages the broker may send before we acknowledge (our backpressure)."""
    max_message_bytes: int = Field(default=256 << 10, ge=256)
    """A larger message is rejected whole. Memory held for MQTT is at most max_in_flight times
    this (64 MiB at the defaults)."""
    keepalive_s: int = Field(default=30, ge=5, le=65535)
    """Seconds between pings while nothing else is said; a dead broker is noticed in 1.5x."""
    retry_max_s: float = Field(default=60.0, ge=1)
    """Longest wait between two connection attempts while the broker is unreachable."""

    @field_validator("url")
    @classmethod
    def _mqtt_only(cls, url: str | None) -> str | None:
        if url is not None and not url.lower().startswith(MQTT_SCHEMES):
            raise ValueError("must start with mqtt:// or mqtts://")
        return url

    @model_validator(mode="after")
    def _key_with_cert(self) -> IngestMqttSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file (a client certificate and its key)")
        return self


def is_loopback(host: str) -> bool:
    """True when a listener bound to `host` is reachable from this machine only (a public
    bind needs a token: ingest, HTTP ingest, the web console and /metrics all ask this)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_allow(value: Any) -> Any:
    """An allow-list given as one string (an environment variable): comma-separated."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def check_networks(entries: list[str]) -> list[str]:
    """The entries, each an IP address or a CIDR network, or ValueError naming the first bad."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return entries


AllowList = Annotated[list[str], BeforeValidator(split_allow), AfterValidator(check_networks)]
"""`[ingest] allow` and `[web] allow`: addresses and CIDR networks, or one comma-separated
string (an environment variable), each checked."""


class IngestSettings(_Section):
    """The TCP listener cameras send to."""

    host: str = "127.0.0.1"
    """Address to bind; anything but loopback needs `token` or `tls_client_ca`."""
    port: int = Field(default=7878, ge=0, le=65535)
    """TCP port (0 picks a free one)."""
    token: str = ""
    """When set, a connection's first line must be {"auth": "<token>"}."""
    max_line_bytes: int = Field(default=65536, ge=256)
    """A longer line is discarded as it streams in and rejected."""
    max_connections: int = Field(default=256, ge=1)
    """One more connection gets one rejected line, then is closed."""
    idle_timeout_s: float = Field(default=60.0, gt=0)
    """A connection holding a half-sent line this long is closed (slowloris)."""
    one_way_port: int | None = Field(default=None, ge=0, le=65535)
    """A second port for log shippers that never read replies (rsyslog, fluent-bit, `socat -u`):
    lines are stored as on `port` and nothing is written back (0 picks a free one; unset: off)."""
    auto_register: bool = False
    """Accept unknown worker / workstation ids and add them to the roster."""
    http: IngestHttpSettings = Field(default_factory=IngestHttpSettings)
    """`[ingest.http]`: events POSTed over HTTP, through the same batches as TCP lines."""
    mqtt: IngestMqttSettings = Field(default_factory=IngestMqttSettings)
    """`[ingest.mqtt]`: events subscribed from an MQTT broker, through the same batches."""
    tls_cert: Path | None = None
    """PEM certificate (chain) the listener presents; set with `tls_key`, cameras must use TLS."""
    tls_key: Path | None = None
    """PEM private key of `tls_cert`."""
    tls_client_ca: Path | None = None
    """PEM CA certificates: a camera must present a certificate one of them signed (mTLS). On
    a non-loopback host this may stand in for `token`."""
    allow: AllowList = Field(default_factory=list)
    """Addresses and networks (CIDR) allowed to connect, e.g. ["10.0.0.0/8", "192.168.4.17"];
    others get one rejected line and are closed. Empty: any address."""
    max_connections_per_ip: int | None = Field(default=None, ge=1)
    """One more connection from the same address gets one rejected line (None: no limit)."""
    max_events_per_s: float | None = Field(default=None, gt=0)
    """Lines read per second per connection; a faster peer is read more slowly, nothing is
    dropped (None: no limit)."""

    @model_validator(mode="after")
    def _tls_pairs(self) -> IngestSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError(
                "tls_client_ca needs tls_cert and tls_key (client certificates "
                "are checked in the TLS handshake)"
            )
        return self

    @property
    def tls(self) -> bool:
        """True when the listener speaks TLS."""
        return self.tls_cert is not None

    @property
    def is_loopback(self) -> bool:
        """True when `host` only listens on this machine."""
        return is_loopback(self.host)


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_SITE_ID = "main"


class StoreSettings(_Section):
    """The database: a SQLite file, or a PostgreSQL server (`url`)."""

    path: Path = Path("factory.db")
    """SQLite database file, created on first use (used when `url` is not set)."""
    url: str | None = None
    """A `postgresql://user@host:port/dbname` URL: the database lives on that server. A URL
    given as `path` (`--db`, `FACTORY_TUI_DB`) lands here."""
    durability: Literal["crash", "power"] = "crash"
    """SQLite: crash: an acked event survives a process crash (WAL, synchronous=NORMAL);
    power: it also survives a power cut (synchronous=FULL, slower)."""
    keep_days: float | None = Field(default=None, gt=0)
    """Delete events older than this many days while `serve` or the console owning the
    listener runs (None: keep everything). With `[forward] url` set, an event is only deleted
    once it has been forwarded."""

    @model_validator(mode="before")
    @classmethod
    def _url_given_as_path(cls, data: Any) -> Any:
        if isinstance(data, dict):
            path = data.get("path")
            if isinstance(path, str) and path.startswith(POSTGRES_SCHEMES):
                data = {**data, "url": path}
                del data["path"]
        return data

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(POSTGRES_SCHEMES):
            raise ValueError("must start with postgresql:// (a file path goes in store.path)")
        return url

    @property
    def location(self) -> Path | str:
        """Where the database is: the URL when one is set, else the file path."""
        return self.url if self.url is not None else self.path


class ForwardSettings(_Section):
    """Store-and-forward: this site's events shipped to a central database while it runs."""

    url: str | None = None
    """The central database: a `postgresql://` URL or a SQLite path (None: no forwarding)."""
    batch_size: int = Field(default=20_000, ge=1, le=100_000)
    """Events per central transaction (a backlog drains in batches this large; the central
    database's event lock is held for one batch)."""
    interval_s: float = Field(default=1.0, gt=0)
    """Once caught up, how often to look for new events."""
    retry_max_s: float = Field(default=60.0, gt=0)
    """Longest wait between two attempts while the central database is unreachable."""


class MetricsSettings(_Section):
    """The metrics engine and the console tick."""

    max_gap_s: float = Field(default=900.0, gt=0)
    """No gap between two sightings of a worker counts for more than this."""
    tick_s: float = Field(default=1.0, gt=0)
    """How often the console folds in new events and redraws."""


ALERT_ACTION_KINDS = (
    "camera_dark",
    "idle_too_long",
    "confidence_drift",
    "rate_drift",
    "retrain_suggested",
)
"""Alert kinds an action can be `on` (engine.alerts.ALERT_KINDS; a test keeps them equal)."""


class AlertAction(_Section):
    """One `[[alerts.actions]]` entry: a command or a webhook, for some alert kinds."""

    on: list[str] = Field(min_length=1)
    """Alert kinds that fire it, when raised and when cleared."""
    command: list[str] | None = Field(default=None, min_length=1)
    """Program and arguments, run without a shell; the alert as JSON on stdin and in
    FACTORY_TUI_ALERT_* environment variables."""
    webhook: str | None = None
    """An http(s) URL the alert is POSTed to as JSON."""
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    """A command still running, or a request unanswered, after this is stopped and failed."""
    retries: int = Field(default=3, ge=0, le=10)
    """Webhook: tries after the first one failed (network error, timeout, HTTP 5xx or 429)."""
    retry_delay_s: float = Field(default=2.0, ge=0, le=300)
    """Webhook: wait before the first retry, doubled before each next one."""

    @field_validator("on")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        for kind in kinds:
            if kind not in ALERT_ACTION_KINDS:
                raise ValueError(
                    f"unknown alert kind {kind!r} (one of {', '.join(ALERT_ACTION_KINDS)})"
                )
        return kinds

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook must be an http:// or https:// URL, got {url!r}")
        return url

    @model_validator(mode="after")
    def _one_target(self) -> AlertAction:
        if (self.command is None) == (self.webhook is None):
            raise ValueError('an action has either command = [...] or webhook = "https://..."')
        return self

    def describe(self) -> str:
        """The action in a few words, for logs and the alerts view."""
        if self.command is not None:
            return f"command {self.command[0]}"
        return f"webhook {self.webhook}"


class AlertSettings(_Section):
    """When the console raises alerts (dark cameras use metrics.max_gap_s)."""

    idle_s: float = Field(default=900.0, gt=0)
    """A worker idle longer than this raises an alert."""
    drift_window_s: float = Field(default=600.0, ge=60)
    """Rolling window of a model's mean confidence."""
    drift_drop: float = Field(default=0.10, gt=0, le=1)
    """Alert when the rolling mean confidence is this far below its baseline..."""
    drift_sustain_s: float = Field(default=300.0, ge=0)
    """...for at least this long."""
    baseline_s: float = Field(default=3600.0, ge=60)
    """A model's baseline is its first this-many seconds of events, unless configured below."""
    baseline_confidence: dict[str, float] = Field(default_factory=dict)
    """Fixed baseline mean confidence per model_version (overrides the first hour)."""
    rate_window_s: float = Field(default=1800.0, ge=60)
    """Rolling window of a model's production rate (units per hour)."""
    rate_change: float = Field(default=0.5, gt=0)
    """Alert when the rolling rate departs from its baseline by more than this fraction."""
    retrain_after_s: float = Field(default=3600.0, ge=60)
    """A confidence or rate drift held this long raises `retrain_suggested` for the model."""
    webhook_token: str = ""
    """Sent as `Authorization: Bearer <token>` by every webhook action."""
    actions: list[AlertAction] = Field(default_factory=list)
    """`[[alerts.actions]]`: what to run or call when an alert is raised and when it clears."""
    in_serve: bool = True
    """`serve` evaluates the alerts, keeps the alerts table and runs the actions, as the console
    owning the listener does (false: a site box's alerts wait for a console owning it)."""

    def token_in_clear(self) -> list[str]:
        """A warning for each webhook action that would send `webhook_token` unencrypted: an
        http:// URL to a host other than loopback, where anyone on the way can read it."""
        if not self.webhook_token:
            return []
        warnings = []
        for action in self.actions:
            if action.webhook is None or not action.webhook.startswith("http://"):
                continue
            host = urlsplit(action.webhook).hostname or ""
            if not is_loopback(host):
                warnings.append(
                    f"alert action {action.describe()} sends [alerts] webhook_token in clear "
                    f"text to {host}; use an https:// URL"
                )
        return warnings


class WebSettings(_Section):
    """`factory-tui web`: the console served to browsers."""

    host: str = "127.0.0.1"
    """Address to bind; anything but loopback needs `token`."""
    port: int = Field(default=8000, ge=0, le=65535)
    """HTTP port (0 picks a free one)."""
    token: str = ""
    """When set, a browser must open the address once with `?token=<token>` (then a cookie)."""
    allow: AllowList = Field(default_factory=list)
    """Addresses and networks (CIDR) allowed to connect; others get 403. Empty: any address."""


class MetricsHttpSettings(_Section):
    """`/metrics` for Prometheus, served by `serve` and by the console that owns the listener."""

    host: str = "127.0.0.1"
    """Address to bind (loopback by default: the figures name workers)."""
    port: int | None = Field(default=None, ge=0, le=65535)
    """HTTP port (None: off; 0 picks a free one)."""
    token: str = ""
    """When set, a scrape must send `Authorization: Bearer <token>`; required off loopback."""


class AuditSettings(_Section):
    """The audit trail: connections, refusals and auth failures in the `audit` table."""

    keep_days: float | None = Field(default=None, gt=0)
    """Delete audit rows older than this many days while `serve` or the console owning the
    listener runs (None: keep everything)."""


class Shift(_Section):
    """A named shift; `end` before `start` means it runs past midnight."""

    name: str = Field(min_length=1)
    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_clock(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return time.fromisoformat(value)
            except ValueError:
                raise ValueError(f'must be a time like "06:00", got {value!r}') from None
        return value

    def window_at(self, moment: datetime, zone: tzinfo) -> tuple[datetime, datetime] | None:
        """The [start, end) of this shift that contains `moment`, or None when it is off shift."""
        local = moment.astimezone(zone)
        for day in (local.date() - timedelta(days=1), local.date()):
            start = datetime.combine(day, self.start, zone)
            end_day = day if self.end > self.start else day + timedelta(days=1)
            end = datetime.combine(end_day, self.end, zone)
            if start <= local < end:
                return start, end
        return None


class RosterItem(_Section):
    """A worker or workstation in the roster."""

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    name: str = ""

    def entry(self) -> RosterEntry:
        """The frozen roster entry (the id stands in for a missing name)."""
        return RosterEntry(self.id, self.name or self.id)


DEMO_WORKERS: tuple[tuple[str, str], ...] = (
    ("W1", "Ana Silva"),
    ("W2", "Bilal Khan"),
    ("W3", "Chen Wei"),
    ("W4", "Dana Novak"),
    ("W5", "Emeka Obi"),
    ("W6", "Freya Lind"),
)
DEMO_WORKSTATIONS: tuple[tuple[str, str], ...] = (
    ("S1", "Assembly 1"),
    ("S2", "Assembly 2"),
    ("S3", "Soldering"),
    ("S4", "Inspection"),
    ("S5", "Packing"),
    ("S6", "Rework"),
)


DEMO_SHIFTS: tuple[tuple[str, str, str], ...] = (
    ("A", "06:00", "14:00"),
    ("B", "14:00", "22:00"),
    ("C", "22:00", "06:00"),
)


def demo_data() -> dict[str, Any]:
    """The demo's roster and three 8-hour shifts (`factory-tui demo`; never a default)."""
    return {
        "shifts": [{"name": n, "start": s, "end": e} for n, s, e in DEMO_SHIFTS],
        "workers": [{"id": i, "name": n} for i, n in DEMO_WORKERS],
        "workstations": [{"id": i, "name": n} for i, n in DEMO_WORKSTATIONS],
    }


class SiteSettings(_Section):
    """Which site this box is: its listener stamps every event it accepts with `id`."""

    id: str = Field(default=DEFAULT_SITE_ID, min_length=1, max_length=MAX_ID_LENGTH)
    """Short, stable id (e.g. "pune"); worker and station ids are per site."""
    name: str = ""
    """Display name (default: the id)."""

    @field_validator("id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        if value.strip() != value or not value.isprintable():
            raise ValueError(f"must be printable, with no surrounding spaces, got {value!r}")
        return value

    @property
    def label(self) -> str:
        """The name to show (the id when no name is set)."""
        return self.name or self.id


class Settings(_Section):
    """Everything factory-tui reads from its config file."""

    timezone: str = "UTC"
    """IANA zone naive timestamps and shift times are read in."""
    site: SiteSettings = Field(default_factory=SiteSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    forward: ForwardSettings = Field(default_factory=ForwardSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    metrics_http: MetricsHttpSettings = Field(default_factory=MetricsHttpSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    shifts: list[Shift] = Field(default_factory=list)
    workers: list[RosterItem] = Field(default_factory=list)
    workstations: list[RosterItem] = Field(default_factory=list)
    source: Path | None = Field(default=None, exclude=True)
    """The file these settings came from (None: defaults, no roster, no shifts)."""
    described_in: str | None = Field(default=None, exclude=True)
    """The database whose stored description of the site gave its time zone, shifts,
    max_gap_s and roster (None: they are this config's; see `commands.common.for_site`)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'unknown time zone {value!r} (use an IANA name like "Europe/Lisbon")'
            ) from None
        return value

    @field_validator("workers", "workstations")
    @classmethod
    def _unique_ids(cls, items: list[RosterItem]) -> list[RosterItem]:
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ValueError(f"id {item.id!r} appears twice")
            seen.add(item.id)
        return items

    @property
    def tz(self) -> tzinfo:
        """The configured zone."""
        return UTC if self.timezone == "UTC" else ZoneInfo(self.timezone)

    def site_description(self) -> dict[str, Any]:
        """What a site tells the database about itself (and forwards to a central one): the
        settings its figures depend on, so the central side needs no per-site config."""
        return {
            "timezone": self.timezone,
            "shifts": [
                {
                    "name": shift.name,
                    "start": shift.start.isoformat("minutes"),
                    "end": shift.end.isoformat("minutes"),
                }
                for shift in self.shifts
            ],
            "max_gap_s": self.metrics.max_gap_s,
            "workers": [{"id": item.id, "name": item.name} for item in self.workers],
            "workstations": [{"id": item.id, "name": item.name} for item in self.workstations],
        }

    def for_site(self, site_id: str, name: str, description: Mapping[str, Any]) -> Settings:
        """These settings as another site sees them: its id, name, time zone, shifts,
        max_gap_s and roster from its description (what it forwarded)."""
        data = self.model_dump(exclude={"source"})
        data["site"] = {"id": site_id, "name": name}
        for key in ("timezone", "shifts", "workers", "workstations"):
            if key in description:
                data[key] = description[key]
        if "max_gap_s" in description:
            data["metrics"] = {**data["metrics"], "max_gap_s": description["max_gap_s"]}
        return Settings.model_validate(data)

    def as_read(self, site: SiteRecord, database: str) -> Settings:
        """Site `site` of `database` (its location, password masked) as a reader sees it:
        `report`, `export` and the console (a viewer, the fleet). Our own site (`[site] id`)
        read with a config file is what that file says: the user passed it (or keeps it in
        ./factory.toml), and the description our listener stored is only what the file said
        when `serve` last started; only its name comes from the database when the file gives
        none. Any other site, or ours with no config file, is what its box stored: that is
        all there is of it here."""
        if site.id == self.site.id and self.source is not None:
            if self.site.name or not site.name:
                return self
            return self.model_copy(
                update={"site": self.site.model_copy(update={"name": site.name})}
            )
        described = self.for_site(site.id, site.name, site.description)
        described.described_in = database
        return described

    def roster_workers(self) -> tuple[RosterEntry, ...]:
        """The worker roster."""
        return tuple(item.entry() for item in self.workers)

    def roster_workstations(self) -> tuple[RosterEntry, ...]:
        """The workstation roster."""
        return tuple(item.entry() for item in self.workstations)

    def current_window(self, now: datetime) -> tuple[datetime, datetime, str]:
        """The window the console shows at `now`: the running shift, else local midnight to now.

        Returns (from, to, label) as aware datetimes.
        """
        for shift in self.shifts:
            bounds = shift.window_at(now, self.tz)
            if bounds is not None:
                return bounds[0], bounds[1], shift.name
        local = now.astimezone(self.tz)
        midnight = datetime.combine(local.date(), time(0), self.tz)
        return (
            midnight,
            datetime.combine(local.date() + timedelta(days=1), time(0), self.tz),
            _day_label(local.date()),
        )


def _day_label(day: date) -> str:
    return day.isoformat()


def find_config(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file: --config, else $FACTORY_TUI_CONFIG, else ./factory.toml if present."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read settings with precedence flag (`overrides`) > environment > file > default.

    `path` is the --config flag (None to look in the environment, then ./factory.toml).
    `overrides` maps dotted keys (`"ingest.port"`, `"store.path"`) to values; None values are
    skipped so unset typer options can be passed straight through.
    """
    env = os.environ if environ is None else environ
    source = find_config(path, env)
    data: dict[str, Any] = {}
    if source is not None:
        data = _read_toml(source)
    # Where each key that did not come from the file was set, so an error names it there.
    origin: dict[str, str] = {}
    for key, (name, value) in _env_overrides(env).items():
        _set_dotted(data, key, value)
        secret = key.endswith(("token", "url", "path", "password"))  # may hold a password
        origin[key] = name if secret else f"{name}={value}"
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
            origin[key] = "command line"
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        location, message = _describe(error)
        where = next(
            (origin[key] for key in origin if location == key or location.startswith(key + ".")),
            str(source) if source is not None else "settings",
        )
        raise ConfigError(f"{where}: {location}: {message}") from None
    settings.source = source
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist (create one with `factory-tui init`)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"config file {path} cannot be read (permission denied)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


# Environment variable -> dotted key. Everything in a section is reachable as
# FACTORY_TUI_<SECTION>_<KEY>; the common ones also have a short name.
_ENV_SHORT = {
    "DB": "store.path",
    "HOST": "ingest.host",
    "PORT": "ingest.port",
    "TOKEN": "ingest.token",
    "TIMEZONE": "timezone",
}


_ENV_SECTIONS: dict[str, type[_Section]] = {
    "site": SiteSettings,
    "ingest": IngestSettings,
    "store": StoreSettings,
    "forward": ForwardSettings,
    "metrics": MetricsSettings,
    "alerts": AlertSettings,
    "web": WebSettings,
    "metrics_http": MetricsHttpSettings,
    "audit": AuditSettings,
}


def _env_names() -> dict[str, str]:
    """Every FACTORY_TUI_* variable that sets something, to the dotted key it sets."""
    names = {ENV_PREFIX + short: key for short, key in _ENV_SHORT.items()}
    for section, model in _ENV_SECTIONS.items():
        for key, field in model.model_fields.items():
            nested = field.annotation
            if isinstance(nested, type) and issubclass(nested, _Section):
                # A table inside a section ([ingest.http]): FACTORY_TUI_INGEST_HTTP_PORT.
                for inner in nested.model_fields:
                    name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}_{inner.upper()}"
                    names[name] = f"{section}.{key}.{inner}"
                continue
            names[f"{ENV_PREFIX}{section.upper()}_{key.upper()}"] = f"{section}.{key}"
    return names


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Dotted key -> (variable, value) for every FACTORY_TUI_* variable that sets one."""
    names = _env_names()
    return {names[name]: (name, value) for name, value in env.items() if name in names}


def unknown_env_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each FACTORY_TUI_* variable that sets nothing (a misspelled name)."""
    env = os.environ if environ is None else environ
    known = [*_env_names(), CONFIG_ENV]
    ours = {ALERT_ENV_PREFIX + field.upper() for field in ALERT_ENV_FIELDS}
    warnings = []
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known and name not in ours:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"{name} is not a factory-tui setting and is ignored{hint}")
    return warnings


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{part}: must be a table ([{part}]), got {child!r}")
        node = child
    node[leaf] = value


def _describe(error: ValidationError) -> tuple[str, str]:
    """The first error as (dotted location, message)."""
    first = error.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return location, "unknown key"
    if first["type"] == "missing":
        return location, "is required"
    return location, message


EXAMPLE_CONFIG = """\
# factory-tui configuration. Every key is optional: the values shown are the defaults, except
# the shifts, workers and workstations at the end, which are examples to replace with your own
# (by default there are none). Precedence: command-line flag > FACTORY_TUI_* environment
# variable > this file > default.

# Zone used for naive event timestamps and for shift times (IANA name).
timezone = "UTC"

[site]
# Which site this box is. The listener stamps every event it accepts with this id; worker and
# station ids are per site, so several sites can share one (central) database.
id = "main"
name = ""

[ingest]
# Cameras connect here. A non-loopback host requires a token (or tls_client_ca, below).
host = "127.0.0.1"
port = 7878
# When set, every connection must first send {"auth": "<token>"}.
token = ""
# Longest accepted line in bytes; longer lines are rejected without being buffered.
max_line_bytes = 65536
max_connections = 256
# Close a connection that holds a half-sent line for this long.
idle_timeout_s = 60.0
# A port for log shippers that never read replies (rsyslog, fluent-bit, socat -u): lines
# are stored as on `port`, nothing is written back (unset: off).
# one_way_port = 7880
# Accept ids that are not in the roster below (and add them to it).
auto_register = false
# TLS: the listener's PEM certificate and key; cameras then connect with TLS
# (`factory-tui send --tls --cafile ingest.pem`).
# tls_cert = "ingest.pem"
# tls_key = "ingest.key"
# Client certificates (mTLS): cameras must present a certificate this CA signed; on a
# non-loopback host this may stand in for the token.
# tls_client_ca = "cameras-ca.pem"
# Only these addresses and networks may connect (empty: any); others get one rejected line.
allow = []                        # e.g. ["10.0.0.0/8", "192.168.4.17"]
# One more connection from the same address is refused (unset: no limit).
# max_connections_per_ip = 16
# Lines read per second per connection; a faster camera is read more slowly, nothing is
# dropped (unset: no limit).
# max_events_per_s = 1000

[store]
path = "factory.db"
# A PostgreSQL server instead of the file (the password may also come from PGPASSWORD or
# ~/.pgpass):
# url = "postgresql://factory@db.example:5432/factory"
# "crash": an acked event survives a crash of the process (fast).
# "power": it also survives a power cut (slower writes).
durability = "crash"
# Delete events older than this many days, 500 at a time, every few minutes while
# `serve` or the console runs (unset: keep everything). With [forward] url set, an event is
# only deleted once it has been forwarded. The file does not shrink: new events reuse the space.
# keep_days = 90

[forward]
# Ship this site's events to a central database (a postgresql:// URL or a SQLite path) while
# `serve` or the console runs; `factory-tui forward` does the same on its own. Events wait on
# this box's disk while the central database is unreachable, and go oldest first when it is back.
# url = "postgresql://factory@central.example:5432/factory"
batch_size = 20000
# Once caught up, look for new events this often (seconds).
interval_s = 1.0
# While the central database is unreachable, retry with a growing wait of at most this (seconds).
retry_max_s = 60.0

[metrics]
# No gap between two sightings of a worker counts for more than this (seconds).
# Cameras should repeat the current state at least this often. Sites whose cameras only
# report changes set it high, e.g. 86400.
max_gap_s = 900
# Console refresh interval, and how often `serve` evaluates the alerts (seconds).
tick_s = 1.0

[alerts]
# Alert when a worker has been idle longer than this (seconds). A camera is "dark" when its
# worker has not been seen for more than metrics.max_gap_s during the shift.
idle_s = 900
# Model drift: alert when a model's mean confidence over the last drift_window_s is more than
# drift_drop below its baseline for at least drift_sustain_s.
drift_window_s = 600
drift_drop = 0.10
drift_sustain_s = 300
# A model's baseline is its first baseline_s of events, unless fixed here per model_version.
baseline_s = 3600
baseline_confidence = {}          # e.g. { "yolo-v8.2" = 0.91 }
# Alert when a model's units per hour over rate_window_s departs from its baseline by more
# than this fraction.
rate_window_s = 1800
rate_change = 0.5
# A confidence or rate drift held this long raises retrain_suggested for the model (its
# evidence, as JSON, is what an action hands a retraining pipeline).
retrain_after_s = 3600
# Sent as "Authorization: Bearer <token>" by webhook actions.
webhook_token = ""
# `serve` evaluates the alerts every [metrics] tick_s and runs the actions, as a console that
# owns the listener does (false: only such a console does).
in_serve = true
# Actions, run when an alert of a listed kind is raised and again when it clears (by `serve`
# or the console that owns the listener). Either a command (no shell; the alert as JSON on
# stdin and in FACTORY_TUI_ALERT_* variables) or a webhook (POST of the alert as JSON, with
# retries).
# [[alerts.actions]]
# on = ["camera_dark", "retrain_suggested"]
# webhook = "https://hooks.example/factory"
# [[alerts.actions]]
# on = ["retrain_suggested"]
# command = ["/usr/local/bin/start-retraining"]
# timeout_s = 30

[web]
# `factory-tui web`: the console served to browsers. A non-loopback host requires a token.
host = "127.0.0.1"
port = 8000                       # 0 picks a free port
# When set, a browser opens the address once with ?token=<token> (then a cookie keeps it).
token = ""
# Only these addresses and networks may connect (empty: any); others get 403.
allow = []                        # e.g. ["10.0.0.0/8"]

[audit]
# Connections opened and closed, refused peers, TLS and auth failures go to the audit table
# (and the log); delete entries older than this many days (unset: keep everything).
# keep_days = 365

[metrics_http]
# Serve /metrics for Prometheus (OpenMetrics text) from `serve` and the console that owns the
# listener: per worker and station, factory totals, ingest counters, alerts, CPU and memory.
# port = 9464
host = "127.0.0.1"
# Required when host is not loopback: Prometheus sends it as a bearer token
# (authorization: { credentials: "..." } in its scrape config).
token = ""

[ingest.http]
# Accept events POSTed to http://HOST:PORT/api/events (one event object, a JSON array of them,
# or JSON lines), stored through the same batches as the TCP port; GET /healthz for load
# balancers. Off unless a port is set. A non-loopback host requires a token (this one, else
# [ingest] token), which every POST sends as "Authorization: Bearer <token>".
# port = 8080
host = "127.0.0.1"
token = ""
# A larger request body is refused (413).
max_body_bytes = 1048576
# A request not wholly received this many seconds after its first byte gets 408 (slow clients).
timeout_s = 30.0
max_connections = 64

[ingest.mqtt]
# Subscribe to an MQTT broker beside the TCP port (off unless a url is set): each message is
# one event, a JSON array of events, or JSON lines, stored through the same batches, and
# acknowledged to the broker only once stored (QoS 1, a persistent session under client_id).
# url = "mqtt://broker.example:1883"      # mqtts://...:8883 for TLS
topic = "factory/+/events"
# client_id = "factory-tui-main-box1"     # default: factory-tui-<site>-<host>-<db hash>; stable
username = ""
password = ""
# Messages with rejected events are republished here with the errors (empty: not at all).
dead_letter_topic = ""
# ca_file = "/etc/ssl/broker-ca.pem"      # TLS: CA to trust (default: the system's)
# cert_file = "/etc/factory-tui/client.pem"   # TLS: a client certificate, if the broker asks
# key_file = "/etc/factory-tui/client.key"
protocol = "5"
session_expiry_s = 604800
max_in_flight = 256
max_message_bytes = 262144
keepalive_s = 30
retry_max_s = 60.0

# EXAMPLES from here on: replace them with your own floor (default: none of them).
# Shifts: the console shows the running shift; off shift (or with no shifts), the local day.
[[shifts]]
name = "A"
start = "06:00"
end = "14:00"

[[shifts]]
name = "B"
start = "14:00"
end = "22:00"

# The roster: cameras' events must name these ids, unless [ingest] auto_register is on.
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
