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
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from factory_tui.models import MAX_ID_LENGTH, RosterEntry

CONFIG_ENV = "FACTORY_TUI_CONFIG"
ENV_PREFIX = "FACTORY_TUI_"
DEFAULT_CONFIG_NAME = "factory.toml"


class ConfigError(Exception):
    """A configuration the program cannot run with; the message says what to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class IngestSettings(_Section):
    """The TCP listener cameras send to."""

    host: str = "127.0.0.1"
    """Address to bind; anything but loopback needs `token`."""
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
    auto_register: bool = False
    """Accept unknown worker / workstation ids and add them to the roster."""

    @property
    def is_loopback(self) -> bool:
        """True when `host` only listens on this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


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


class WebSettings(_Section):
    """`factory-tui web`: the console served to browsers."""

    host: str = "127.0.0.1"
    """Address to bind; anything but loopback needs `token`."""
    port: int = Field(default=8000, ge=0, le=65535)
    """HTTP port (0 picks a free one)."""
    token: str = ""
    """When set, a browser must open the address once with `?token=<token>` (then a cookie)."""


class MetricsHttpSettings(_Section):
    """`/metrics` for Prometheus, served by `serve` and by the console that owns the listener."""

    host: str = "127.0.0.1"
    """Address to bind (loopback by default: the figures name workers)."""
    port: int | None = Field(default=None, ge=0, le=65535)
    """HTTP port (None: off; 0 picks a free one)."""


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
    shifts: list[Shift] = Field(default_factory=list)
    workers: list[RosterItem] = Field(default_factory=list)
    workstations: list[RosterItem] = Field(default_factory=list)
    source: Path | None = Field(default=None, exclude=True)
    """The file these settings came from (None: defaults, no roster, no shifts)."""

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
        secret = key.endswith(("token", "url", "path"))  # may hold a password
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
}


def _env_names() -> dict[str, str]:
    """Every FACTORY_TUI_* variable that sets something, to the dotted key it sets."""
    names = {ENV_PREFIX + short: key for short, key in _ENV_SHORT.items()}
    for section, model in _ENV_SECTIONS.items():
        for key in model.model_fields:
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
    warnings = []
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known:
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
# Cameras connect here. A non-loopback host requires a token.
host = "127.0.0.1"
port = 7878
# When set, every connection must first send {"auth": "<token>"}.
token = ""
# Longest accepted line in bytes; longer lines are rejected without being buffered.
max_line_bytes = 65536
max_connections = 256
# Close a connection that holds a half-sent line for this long.
idle_timeout_s = 60.0
# Accept ids that are not in the roster below (and add them to it).
auto_register = false

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
# Console refresh interval (seconds).
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

[metrics_http]
# Serve /metrics for Prometheus (OpenMetrics text) from `serve` and the console that owns the
# listener: per worker and station, factory totals, ingest counters, alerts, CPU and memory.
# port = 9464
host = "127.0.0.1"

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
