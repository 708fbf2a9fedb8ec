"""`factory-tui simulate`: a fleet of simulated cameras against any listener, or into a file."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from factory_tui.commands.common import (
    CafileOption,
    CertOption,
    ConfigOption,
    HostOption,
    KeyOption,
    PortOption,
    TlsOption,
    TokenOption,
    client_tls,
    dotted,
    fail,
    settings_from,
)
from factory_tui.config import Settings
from factory_tui.models import RosterEntry, iso_utc, to_utc_us

if TYPE_CHECKING:
    from factory_tui.ingest.client import IngestClient
    from factory_tui.ingest.simulator import CameraFleet, SimSummary, Submit

DEFAULT_FILE_DURATION_S: Final = 8 * 3600.0
"""`--to-file` without `--duration` writes one 8-hour shift."""
MAX_DEFAULT_CONNECTIONS: Final = 200
DEFAULT_MQTT_TOPIC: Final = "factory/{camera}/events"
"""`--mqtt-topic`: what `[ingest.mqtt] topic` subscribes to by default."""
"""Cameras share connections beyond this (a listener allows 256 by default)."""
DEFAULT_WORKERS: Final = 6
"""Workers simulated when neither --workers nor a roster says how many."""

# A listener bound to every interface is reached on this machine through loopback.
MAX_SITE_PREFIX: Final = 32
SITE_ID: Final = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_SITE_PREFIX}}}")
"""What --site may be: short enough that `<site>-W50000` stays a valid worker id."""
_WILDCARDS: Final = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_S: Final = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `10m`, `8h`, `1h30m`, `2d` or a plain number of seconds."""
    cleaned = text.strip().lower()
    parts: list[tuple[float, str]] = []
    position = 0
    while position < len(cleaned):
        match = _DURATION_PART.match(cleaned, position)
        if match is None or match.end() == position:
            break
        parts.append((float(match.group(1)), match.group(2)))
        position = match.end()
        while position < len(cleaned) and cleaned[position] == " ":
            position += 1
    # A bare number is seconds only on its own: "5m5" is more likely a typo than 305 s.
    unitless = any(not unit for _, unit in parts) and len(parts) > 1
    if not parts or position != len(cleaned) or unitless:
        raise ValueError(f"--duration: expected a time like 90s, 10m, 8h or 1h30m, got {text!r}")
    total = sum(value * _UNIT_S[unit] for value, unit in parts)
    if total <= 0:
        raise ValueError(f"--duration: must be more than 0, got {text!r}")
    return total


def parse_start(text: str, settings: Settings) -> int:
    """Epoch microseconds of an ISO 8601 instant; a naive one is read in the configured zone."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--start: expected an ISO 8601 date-time like 2025-03-04T06:00, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.tz)
    return to_utc_us(moment)


def simulate(
    host: HostOption = None,
    port: PortOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            max=50_000,
            help="Simulated workers (one camera each): the roster's first N, then W1..WN "
            "(default: the roster, else 6).",
        ),
    ] = None,
    stations: Annotated[
        int | None,
        typer.Option(
            "--stations",
            "-s",
            min=1,
            max=10_000,
            help="Workstations: the roster's first M, then S1..SM (default: the roster, else 6).",
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed", min=0.001, help="Simulated seconds per real second (60: an hour a minute)."
        ),
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same floor, same lines.")] = 1,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            "-d",
            help="Simulated time to cover, e.g. 90s, 10m, 8h (default: until Ctrl-C; with "
            "--to-file 8h). With --rate it is the real time the load test runs.",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.001,
            help="Load test: send about this many lines per second, running simulated time "
            "as fast as that needs (ignores --speed).",
        ),
    ] = None,
    to_file: Annotated[
        Path | None,
        typer.Option(
            "--to-file",
            "-o",
            dir_okay=False,
            help="Write the lines to this JSON-lines file as fast as possible instead of "
            "sending them (for `send`, fixtures and benchmarks).",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Simulated start, ISO 8601 (naive: configured zone). Default: now; with "
            "--to-file, the start of the current shift.",
        ),
    ] = None,
    connections: Annotated[
        int | None,
        typer.Option(
            "--connections",
            min=1,
            help=f"TCP connections (default: one per camera, at most {MAX_DEFAULT_CONNECTIONS}; "
            "cameras share them beyond that).",
        ),
    ] = None,
    duplicates: Annotated[
        float | None,
        typer.Option(
            "--duplicates", min=0.0, max=1.0, help="Share of lines re-sent later (default 0.01)."
        ),
    ] = None,
    late: Annotated[
        float | None,
        typer.Option(
            "--late",
            min=0.0,
            max=1.0,
            help="Share of lines sent late, out of order (default 0.02).",
        ),
    ] = None,
    dark: Annotated[
        float | None,
        typer.Option(
            "--dark",
            min=0.0,
            help="Dark periods per camera per hour: 20-45 min with nothing sent (default 0.05).",
        ),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(
            "--site",
            help="Name the workers and stations beyond the roster after this site (pune-W1, "
            "pune-S1) so simulated sites stay apart in one central database. Lines carry no "
            "site: the listener they reach stamps its own.",
        ),
    ] = None,
    tls: TlsOption = False,
    cafile: CafileOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    mqtt: Annotated[
        str | None,
        typer.Option(
            "--mqtt",
            metavar="URL",
            help="Publish to this MQTT broker (mqtt://host:1883, mqtts:// for TLS) instead of a "
            "TCP listener: each camera's lines of a tick as one JSON-lines message, QoS 1.",
        ),
    ] = None,
    mqtt_topic: Annotated[
        str,
        typer.Option(
            "--mqtt-topic",
            help="Topic to publish to; {camera} becomes the camera id (cam-W1, ...).",
        ),
    ] = DEFAULT_MQTT_TOPIC,
) -> None:
    """Simulate a floor of cameras: send to a listener over TCP or an MQTT broker, or write a
    JSON-lines file.

    Each worker has a camera that reports working / idle / absent with believable dwell times,
    breaks and station changes, repeats its state every minute, counts products while the
    worker works, and now and then re-sends a line, sends one late, or goes dark. The same
    --seed gives the same lines. Sending uses one connection per camera and prints a summary
    (sent, accepted, duplicate, rejected, elapsed) at the end or on Ctrl-C.
    """
    from factory_tui.ingest.simulator import CameraFleet, extend_roster, fleet_config_for
    from factory_tui.models import now_us

    settings = settings_from(
        config, **dotted(ingest__host=host, ingest__port=port, ingest__token=token)
    )
    try:
        span_s = parse_duration(duration) if duration is not None else None
        start_us = parse_start(start, settings) if start is not None else None
    except ValueError as error:
        fail(str(error))
    if rate is not None and to_file is not None:
        fail("--rate paces sending; it cannot be combined with --to-file (which is unpaced)")
    if mqtt is not None and to_file is not None:
        fail("--mqtt publishes to a broker; it cannot be combined with --to-file")
    worker_roster = settings.roster_workers()
    station_roster = settings.roster_workstations()
    worker_count = workers or len(worker_roster) or DEFAULT_WORKERS
    station_count = stations or len(station_roster) or DEFAULT_WORKERS
    if site is not None and not SITE_ID.fullmatch(site):
        fail(f"--site {site!r}: use 1-{MAX_SITE_PREFIX} letters, digits, '_' or '-'")
    prefix = f"{site}-" if site else ""
    fleet_workers = extend_roster(worker_roster, worker_count, f"{prefix}W")
    fleet_stations = extend_roster(station_roster, station_count, f"{prefix}S")
    overrides: dict[str, Any] = {}
    if duplicates is not None:
        overrides["duplicate_rate"] = duplicates
    if late is not None:
        overrides["late_rate"] = late
    if dark is not None:
        overrides["dark_per_hour"] = dark
    anchor_us = start_us if start_us is not None else now_us()
    try:
        fleet = CameraFleet(
            fleet_workers,
            fleet_stations,
            seed=seed,
            config=fleet_config_for(settings, anchor_us, **overrides),
        )
    except ValueError as error:
        fail(f"cannot simulate this floor: {error}")
    if to_file is not None:
        begin = start_us if start_us is not None else fleet.shift_start(anchor_us)
        _write_file(fleet, to_file, begin, span_s or DEFAULT_FILE_DURATION_S)
        return
    _warn_unrostered(fleet_workers, worker_roster, fleet_stations, station_roster, settings)
    if mqtt is not None:
        _publish_mqtt(
            fleet, mqtt, mqtt_topic, begin_us=start_us, speed=speed, rate=rate, span_s=span_s
        )
        return
    ingest = settings.ingest
    target = _WILDCARDS.get(ingest.host, ingest.host)
    context = client_tls(tls, cafile, cert, key)
    count = connections or min(len(fleet.cameras), MAX_DEFAULT_CONNECTIONS)
    count = min(count, len(fleet.cameras))
    begin = start_us if start_us is not None else now_us()
    pace = f"about {rate:g} lines/s" if rate is not None else f"speed {speed:g}"
    typer.echo(
        f"simulating {len(fleet.cameras)} cameras ({len(fleet.workstations)} stations, seed "
        f"{seed}) from {iso_utc(begin)} at {pace} -> {target}:{ingest.port} over "
        f"{count} connection{'s' if count != 1 else ''}; Ctrl-C stops",
        err=True,
    )
    summary = asyncio.run(
        _run(
            fleet,
            target,
            ingest.port,
            ingest.token or None,
            count,
            tls=context,
            begin_us=begin,
            speed=speed,
            rate=rate,
            span_s=span_s,
        )
    )
    for line in summary.lines():
        typer.echo(line)
    if summary.rejected and any("not in the roster" in error for error in summary.errors):
        typer.echo(
            "hint: the listener rejects ids it does not know; add them to its roster or set "
            "ingest.auto_register = true",
            err=True,
        )
    if summary.failure is not None:
        raise typer.Exit(1)


def _warn_unrostered(
    workers: Sequence[RosterEntry],
    worker_roster: Sequence[RosterEntry],
    stations: Sequence[RosterEntry],
    station_roster: Sequence[RosterEntry],
    settings: Settings,
) -> None:
    if settings.ingest.auto_register:
        return
    known = {entry.id for entry in worker_roster} | {entry.id for entry in station_roster}
    extra = [entry.id for entry in (*workers, *stations) if entry.id not in known]
    if extra:
        shown = ", ".join(extra[:4]) + (f" and {len(extra) - 4} more" if len(extra) > 4 else "")
        typer.echo(
            f"note: {shown} {'is' if len(extra) == 1 else 'are'} not in this config's roster; "
            "a listener rejects unknown ids unless ingest.auto_register is on",
            err=True,
        )


def _write_file(fleet: CameraFleet, path: Path, begin_us: int, span_s: float) -> None:
    from factory_tui.ingest.simulator import write_jsonl

    end_us = begin_us + int(span_s * 1_000_000)
    written = 0

    def note(lines: int, _done_us: int) -> None:
        nonlocal written
        written = lines

    started = time.perf_counter()
    try:
        total = write_jsonl(fleet, path, begin_us, end_us, progress=note)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: {path} holds the first {written} lines only", err=True)
        raise typer.Exit(130) from None
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}")
    elapsed = time.perf_counter() - started
    typer.echo(
        f"wrote {total} lines ({len(fleet.cameras)} cameras, {iso_utc(begin_us)} to "
        f"{iso_utc(end_us)}) to {path} in {elapsed:.2f} s ({total / max(elapsed, 1e-9):,.0f} "
        "lines/s)"
    )


class _Connections:
    """The fleet's TCP connections; cameras share them round-robin when there are fewer."""

    def __init__(
        self, host: str, port: int, token: str | None, count: int, tls: ssl.SSLContext | None
    ) -> None:
        from factory_tui.ingest.client import IngestClient

        self._clients: list[IngestClient] = [
            IngestClient(host, port, token, tls=tls) for _ in range(count)
        ]
        self._locks = [asyncio.Lock() for _ in range(count)]
        self._assigned: dict[str, int] = {}

    async def open(self) -> None:
        """Connect every client, failing with the first error (then closing them all)."""
        results = await asyncio.gather(
            *(client.connect() for client in self._clients), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                await self.close()
                raise result

    def for_camera(self, camera_id: str) -> Submit:
        """The submit of the connection this camera uses."""
        slot = self._assigned.setdefault(camera_id, len(self._assigned) % len(self._clients))
        client, lock = self._clients[slot], self._locks[slot]

        async def submit(lines: Sequence[bytes]) -> list[dict[str, Any]]:
            # A connection answers in order: one send at a time keeps replies with their lines.
            async with lock:
                return await client.send(lines)

        return submit

    async def close(self) -> None:
        """Close every connection."""
        await asyncio.gather(*(client.close() for client in self._clients))


async def _run(
    fleet: CameraFleet,
    host: str,
    port: int,
    token: str | None,
    connections: int,
    *,
    tls: ssl.SSLContext | None,
    begin_us: int,
    speed: float,
    rate: float | None,
    span_s: float | None,
) -> SimSummary:
    from factory_tui.ingest.client import ClientError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    interrupted = _install_interrupt(loop, stop)
    pool = _Connections(host, port, token, connections, tls)
    try:
        try:
            await pool.open()
        except ClientError as error:
            fail(str(error), code=1)
        return await _drive(fleet, pool.for_camera, stop, begin_us, speed, rate, span_s)
    finally:
        await pool.close()
        if interrupted:
            loop.remove_signal_handler(signal.SIGINT)


def _publish_mqtt(
    fleet: CameraFleet,
    url: str,
    topic: str,
    *,
    begin_us: int | None,
    speed: float,
    rate: float | None,
    span_s: float | None,
) -> None:
    """`simulate --mqtt`: the fleet published to a broker; prints what the broker took."""
    from factory_tui.ingest.mqtt_client import MqttError, mask, parse_broker_url
    from factory_tui.models import now_us

    try:
        parse_broker_url(url)
    except MqttError as error:
        fail(str(error))
    if any(char in topic for char in "+#"):
        fail(f"--mqtt-topic {topic!r}: wildcards (+ #) are for subscribing, not publishing")
    begin = begin_us if begin_us is not None else now_us()
    pace = f"about {rate:g} lines/s" if rate is not None else f"speed {speed:g}"
    typer.echo(
        f"simulating {len(fleet.cameras)} cameras ({len(fleet.workstations)} stations) from "
        f"{iso_utc(begin)} at {pace} -> MQTT {mask(url)} on {topic}; Ctrl-C stops",
        err=True,
    )
    summary = asyncio.run(_run_mqtt(fleet, url, topic, begin, speed, rate, span_s))
    first, _replies, deliberate, *rest = summary.lines()
    typer.echo(first.replace("sent", "published", 1))
    typer.echo(
        "each message was acknowledged by the broker (QoS 1); the subscriber's counters say "
        "what it stored"
    )
    typer.echo(deliberate)
    for line in rest:
        typer.echo(line)
    if summary.failure is not None:
        raise typer.Exit(1)


async def _run_mqtt(
    fleet: CameraFleet,
    url: str,
    topic: str,
    begin_us: int,
    speed: float,
    rate: float | None,
    span_s: float | None,
) -> SimSummary:
    import os

    from factory_tui.ingest.mqtt_client import MqttError, MqttPublisher

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    interrupted = _install_interrupt(loop, stop)
    publisher = MqttPublisher(url, f"factory-tui-simulate-{os.getpid()}")
    try:
        await publisher.connect()
    except MqttError as error:
        fail(str(error), code=1)

    def submit_for(camera_id: str) -> Submit:
        camera_topic = topic.replace("{camera}", camera_id)

        async def submit(lines: Sequence[bytes]) -> list[dict[str, Any]]:
            try:
                await publisher.publish(camera_topic, b"\n".join(lines))
            except MqttError as error:
                raise OSError(str(error)) from None
            return []  # the subscriber's replies do not come back over MQTT

        return submit

    try:
        return await _drive(fleet, submit_for, stop, begin_us, speed, rate, span_s)
    finally:
        await publisher.close()
        if interrupted:
            loop.remove_signal_handler(signal.SIGINT)


async def _drive(
    fleet: CameraFleet,
    submit_for: Callable[[str], Submit],
    stop: asyncio.Event,
    begin_us: int,
    speed: float,
    rate: float | None,
    span_s: float | None,
) -> SimSummary:
    """Run the fleet into `submit_for` (TCP connections or MQTT topics) until its span is
    covered or `stop` is set; with --rate, --duration is how long the load test runs in real
    time."""
    from factory_tui.ingest.simulator import SimClock, run_fleet

    loop = asyncio.get_running_loop()
    timer = loop.call_later(span_s, stop.set) if rate is not None and span_s is not None else None
    try:
        return await run_fleet(
            fleet,
            SimClock(begin_us, speed),
            None,
            submit_for=submit_for,
            stop=stop,
            rate=rate,
            duration_s=None if rate is not None else span_s,
        )
    finally:
        if timer is not None:
            timer.cancel()


def _install_interrupt(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> bool:
    """First Ctrl-C: stop after the lines in flight are answered. A second one: abort."""

    def on_interrupt() -> None:
        typer.echo("stopping: waiting for the last replies (Ctrl-C again to abort)", err=True)
        stop.set()
        # Back to the default handler, so a second Ctrl-C raises KeyboardInterrupt.
        loop.remove_signal_handler(signal.SIGINT)

    if sys.platform == "win32":
        return False
    try:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    except (NotImplementedError, RuntimeError, ValueError):
        # Not the main thread (e.g. a test runner): Ctrl-C keeps its default behaviour.
        return False
    return True


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command()(simulate)
