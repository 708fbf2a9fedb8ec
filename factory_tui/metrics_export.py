"""`/metrics` for Prometheus: the floor's figures, the listener's counters and this process's cost,
in the Prometheus / OpenMetrics text format (`[metrics_http] port`).

One `FloorCollector` per server, in a `CollectorRegistry` of its own (nothing lands in
prometheus-client's global registry), reads the latest values when scraped: the floor from a
`FloorSource` (the console's last tick, or `StoreFloor` for `serve`), the ingest counters through
an `IngestSource` that asks the event loop owning the listener. The HTTP server is
prometheus-client's WSGI app on a thread, bound to the configured host and port; with
`[metrics_http] token` a scrape must send it as a bearer token, and a bind beyond loopback
without one is refused (the figures name workers).

Figures are those of the current shift so far, the same Snapshot `report --format json` gives
for the same instant; names follow Prometheus conventions (units in names, `_total` counters).
"""

from __future__ import annotations

import asyncio
import heapq
import hmac
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, make_server

import psutil
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import ThreadingWSGIServer

from factory_tui.config import Settings, is_loopback
from factory_tui.engine import Engine, Snapshot, Window
from factory_tui.models import EventRecord, now_us
from factory_tui.records import (
    REJECTION_REASONS,
    AlertRecord,
    CommitLatency,
    ForwardState,
    IngestStats,
    ModelSummary,
    MqttState,
)
from factory_tui.storage import READ_BATCH, Store, StoreError, open_store
from factory_tui.warm_start import load_engine, roster_names, shift_window

PREFIX: Final = "factory_tui"
WORKER_STATES: Final = ("working", "idle", "absent", "unobserved")
INGEST_WAIT_S: Final = 2.0
"""How long a scrape waits for the event loop to hand over the listener's counters."""
NO_MODEL: Final = ""
"""The `model` label of events that named no model_version."""


class MetricsHttpError(Exception):
    """The metrics endpoint cannot start; the message is one sentence saying why."""


@dataclass(frozen=True, slots=True)
class FloorFigures:
    """What a scrape reports about the floor: the shift so far, its active alerts and models."""

    snapshot: Snapshot
    active_alerts: tuple[AlertRecord, ...] = ()
    models: tuple[ModelSummary, ...] = ()


@dataclass(frozen=True, slots=True)
class IngestFigures:
    """The listener's counters and where forwarding stands, as of one scrape."""

    stats: IngestStats
    commit_latency: CommitLatency
    forward: ForwardState | None = None
    mqtt: MqttState | None = None


FloorSource = Callable[[], FloorFigures | None]
IngestSource = Callable[[], IngestFigures | None]


def on_loop(loop: asyncio.AbstractEventLoop, read: Callable[[], IngestFigures]) -> IngestSource:
    """An `IngestSource` that runs `read` on `loop` (the listener's thread) and waits for it.

    The listener's counters belong to its event loop; a scrape thread asks for them rather
    than reading them mid-update. None when the loop does not answer in time (or has stopped).
    """

    async def call() -> IngestFigures:
        return read()

    def source() -> IngestFigures | None:
        if loop.is_closed():
            return None
        try:
            return asyncio.run_coroutine_threadsafe(call(), loop).result(INGEST_WAIT_S)
        except (FutureTimeout, RuntimeError):
            return None

    return source


class FloorCollector:
    """A prometheus-client collector that reads its figures when scraped."""

    def __init__(
        self,
        site: str,
        floor: FloorSource,
        ingest: IngestSource | None = None,
        *,
        process: psutil.Process | None = None,
    ) -> None:
        self.site = site
        self._floor = floor
        self._ingest = ingest
        self._process = process if process is not None else psutil.Process()

    def collect(self) -> Iterator[Metric]:
        """Every family, read now."""
        figures = self._floor()
        if figures is not None:
            yield from floor_families(self.site, figures)
        if self._ingest is not None:
            ingest = self._ingest()
            if ingest is not None:
                yield from ingest_families(self.site, ingest)
        yield from process_families(self._process)


def _gauge(name: str, doc: str, labels: Iterable[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels), unit=unit)


def floor_families(site: str, figures: FloorFigures) -> list[Metric]:
    """The shift so far: per worker, per station, the factory, models and active alerts."""
    snapshot = figures.snapshot
    window = snapshot.window
    shift = window.label
    families: list[Metric] = []
    info = _gauge(
        "window_start_timestamp_seconds", "Start of the current shift (or day).", ["site", "shift"]
    )
    info.add_metric([site, shift], window.from_us / 1e6)
    families.append(info)
    at = _gauge("snapshot_timestamp_seconds", "The instant the figures are computed at.", ["site"])
    at.add_metric([site], snapshot.at_us / 1e6)
    families.append(at)

    worker_labels = ["site", "worker", "station"]
    state = _gauge(
        "worker_state",
        "1 for the worker's current state (working, idle, absent, unobserved), else 0.",
        [*worker_labels, "state"],
    )
    utilization = _gauge(
        "worker_utilization_ratio", "Active time over observed time, this shift.", worker_labels
    )
    units = _gauge("worker_units", "Units completed this shift so far.", worker_labels)
    uph = _gauge("worker_units_per_hour", "Units per active hour, this shift.", worker_labels)
    active = _gauge("worker_active_seconds", "Time working this shift.", worker_labels)
    idle = _gauge("worker_idle_seconds", "Time idle this shift.", worker_labels)
    absent = _gauge("worker_absent_seconds", "Time absent this shift.", worker_labels)
    events = _gauge("worker_events", "Events of the worker this shift.", worker_labels)
    for w in snapshot.workers:
        labels = [site, w.worker_id, w.station_id or ""]
        for name in WORKER_STATES:
            state.add_metric([*labels, name], 1.0 if w.state == name else 0.0)
        if w.utilization is not None:
            utilization.add_metric(labels, w.utilization)
        units.add_metric(labels, w.units)
        if w.uph is not None:
            uph.add_metric(labels, w.uph)
        active.add_metric(labels, w.active_s)
        idle.add_metric(labels, w.idle_s)
        absent.add_metric(labels, w.absent_s)
        events.add_metric(labels, w.events)
    families += [state, utilization, units, uph, active, idle, absent, events]

    station_labels = ["site", "station"]
    s_util = _gauge(
        "station_utilization_ratio", "Occupied time over elapsed shift time.", station_labels
    )
    s_units = _gauge("station_units", "Units completed at the station this shift.", station_labels)
    s_uph = _gauge(
        "station_throughput_units_per_hour", "Units per elapsed hour, this shift.", station_labels
    )
    s_occupancy = _gauge("station_occupancy_seconds", "Time occupied this shift.", station_labels)
    s_present = _gauge("station_workers_present", "Workers at the station now.", station_labels)
    for s in snapshot.stations:
        labels = [site, s.workstation_id]
        if s.utilization is not None:
            s_util.add_metric(labels, s.utilization)
        s_units.add_metric(labels, s.units)
        if s.throughput_uph is not None:
            s_uph.add_metric(labels, s.throughput_uph)
        s_occupancy.add_metric(labels, s.occupancy_s)
        s_present.add_metric(labels, len(s.workers_present))
    families += [s_util, s_units, s_uph, s_occupancy, s_present]

    f = snapshot.factory
    factory = [
        ("factory_units", "Units completed this shift so far.", f.units),
        ("factory_active_seconds", "Workers' time working this shift, summed.", f.active_s),
        ("factory_idle_seconds", "Workers' time idle this shift, summed.", f.idle_s),
        ("factory_absent_seconds", "Workers' time absent this shift, summed.", f.absent_s),
        ("factory_utilization_ratio", "Mean of the workers' utilization.", f.avg_utilization),
        ("factory_worker_units_per_hour", "Mean of the workers' units per hour.", f.avg_uph),
        ("factory_throughput_units_per_hour", "Units per elapsed hour.", f.throughput_uph),
    ]
    for name, doc, value in factory:
        family = _gauge(name, doc, ["site"])
        if value is not None:
            family.add_metric([site], value)
        families.append(family)
    by_state = _gauge("factory_workers", "Workers in each state now.", ["site", "state"])
    for name, count in zip(WORKER_STATES, (f.working, f.idle, f.absent, f.unobserved), strict=True):
        by_state.add_metric([site, name], count)
    families.append(by_state)

    model_labels = ["site", "model"]
    m_events = _gauge("model_events", "Events of the model this shift.", model_labels)
    m_units = _gauge("model_units", "Units the model counted this shift.", model_labels)
    m_conf = _gauge(
        "model_mean_confidence_ratio", "Mean confidence of the model this shift.", model_labels
    )
    for m in figures.models:
        labels = [site, NO_MODEL if m.model_version is None else m.model_version]
        m_events.add_metric(labels, m.events)
        m_units.add_metric(labels, m.units)
        if m.events:
            m_conf.add_metric(labels, m.mean_confidence)
    families += [m_events, m_units, m_conf]

    alerts = _gauge("alerts_active", "Alerts raised and not cleared, by kind.", ["site", "kind"])
    counts: dict[str, int] = {}
    for alert in figures.active_alerts:
        counts[alert.kind] = counts.get(alert.kind, 0) + 1
    for kind, count in sorted(counts.items()):
        alerts.add_metric([site, kind], count)
    families.append(alerts)
    return families


def ingest_families(site: str, figures: IngestFigures) -> list[Metric]:
    """The listener's counters since it started, its commit latency, and forwarding's lag."""
    stats = figures.stats
    families: list[Metric] = []
    for name, doc, value in (
        ("ingest_events_accepted", "Events accepted and stored.", stats.accepted),
        ("ingest_events_duplicate", "Events already stored, acknowledged again.", stats.duplicates),
        (
            "ingest_one_way_connections",
            "Connections found to read none of their replies (log shippers): read on.",
            stats.one_way,
        ),
        (
            "ingest_replies_dropped",
            "Replies to one-way connections dropped unwritten (their lines were stored).",
            stats.replies_dropped,
        ),
        (
            "ingest_lines_dropped_unread",
            "Lines of connections that vanished mid-stream, dropped unvalidated and unanswered.",
            stats.dropped_unread,
        ),
    ):
        counter = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["site"])
        counter.add_metric([site], value)
        families.append(counter)
    rejected = CounterMetricFamily(
        f"{PREFIX}_ingest_events_rejected",
        "Lines rejected, by reason: invalid, unknown_id (not in the roster), too_long, "
        "unfinished (a half-sent line timed out), auth.",
        labels=["site", "reason"],
    )
    by_reason = dict(stats.rejected_by_reason)
    # Every reason, zeros too (rate() needs the series before the first rejection); a total
    # the reasons do not cover (a listener that does not count them) goes to "invalid".
    by_reason["invalid"] = by_reason.get("invalid", 0) + max(
        0, stats.rejected - sum(by_reason.values())
    )
    for reason in (*REJECTION_REASONS, *sorted(set(by_reason) - set(REJECTION_REASONS))):
        rejected.add_metric([site, reason], by_reason.get(reason, 0))
    families.append(rejected)
    connections = _gauge("ingest_connections", "Camera connections open now.", ["site"])
    connections.add_metric([site], stats.connections)
    pending = _gauge("ingest_pending_lines", "Lines received, not answered yet.", ["site"])
    pending.add_metric([site], stats.pending)
    families += [connections, pending]
    latency = figures.commit_latency
    histogram = HistogramMetricFamily(
        f"{PREFIX}_ingest_batch_commit_seconds",
        "Time to validate, store and commit one batch.",
        labels=["site"],
        unit="seconds",
    )
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*latency.bounds_s, float("inf")), latency.counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    histogram.add_metric([site], buckets, latency.sum_s)
    families.append(histogram)
    forward = figures.forward
    if forward is not None:
        behind = _gauge(
            "forward_behind_events", "Events not yet committed centrally.", ["site", "target"]
        )
        if forward.behind is not None:
            behind.add_metric([site, forward.target], forward.behind)
        up = _gauge("forward_up", "1 while the central database is reachable.", ["site", "target"])
        up.add_metric([site, forward.target], 0.0 if forward.down_s is not None else 1.0)
        families += [behind, up]
    mqtt = figures.mqtt
    if mqtt is not None:
        labels = [site, mqtt.broker, mqtt.topic]
        connected = _gauge(
            "mqtt_up", "1 while subscribed to the broker.", ["site", "broker", "topic"]
        )
        connected.add_metric(labels, 0.0 if mqtt.down_s is not None else 1.0)
        received = CounterMetricFamily(
            f"{PREFIX}_mqtt_messages_received",
            "MQTT messages received (one the broker sends again counts again).",
            labels=["site", "broker", "topic"],
        )
        received.add_metric(labels, mqtt.messages)
        in_flight = _gauge(
            "mqtt_messages_in_flight",
            "MQTT messages received and not yet acknowledged (not yet stored).",
            ["site", "broker", "topic"],
        )
        in_flight.add_metric(labels, mqtt.in_flight)
        families += [connected, received, in_flight]
    return families


def process_families(process: psutil.Process) -> list[Metric]:
    """This process's CPU time and resident memory, under the names Prometheus clients use."""
    try:
        with process.oneshot():
            times = process.cpu_times()
            rss = process.memory_info().rss
    except psutil.Error:
        return []
    cpu = CounterMetricFamily(
        "process_cpu_seconds", "User and system CPU time of this process.", unit="seconds"
    )
    cpu.add_metric([], times.user + times.system)
    memory = GaugeMetricFamily(
        "process_resident_memory_bytes", "Resident memory of this process.", unit="bytes"
    )
    memory.add_metric([], rss)
    return [cpu, memory]


class StoreFloor:
    """`serve`'s `FloorSource`: a small engine kept current by a cursor read on each scrape.

    The first scrape loads what the running shift needs (`warm_start.load_engine`); later ones
    fold in only the rows stored since. A new shift, or a roster change, is taken as it comes,
    as the console does. `clock` is injectable so tests fix the instant.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], int] = now_us) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._engine: Engine | None = None
        self._cursor = 0
        self._roster: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self._models: ModelTally | None = None
        self._closed = False

    def __call__(self) -> FloorFigures | None:
        """The figures now; None when the database cannot be read (the scrape goes on)."""
        with self._lock:
            if self._closed:
                return None
            try:
                return self._read()
            except StoreError:
                self._drop()
                return None

    def close(self) -> None:
        """Close the store (after a scrape in progress)."""
        with self._lock:
            self._closed = True
            self._drop()

    def _read(self) -> FloorFigures:
        at_us = self._clock()
        window = shift_window(self.settings, at_us).so_far
        if self._store is None:
            self._store = open_store(
                self.settings.store.location, read_only=True, site=self.settings.site.id
            )
        store = self._store
        if self._engine is None:
            ceiling = store.max_event_id()
            self._engine = load_engine(store, self.settings, window, at_us, every_station=True)
            self._cursor = ceiling
            self._roster = roster_names(self.settings, store)
        else:
            roster = roster_names(self.settings, store)
            if roster != self._roster:
                self._engine.set_roster(*roster)
                self._roster = roster
            while rows := store.read_since(self._cursor):
                self._engine.apply(rows)
                if self._models is not None:
                    self._models.add(rows)
                self._cursor = rows[-1].id
                if len(rows) < READ_BATCH:
                    break
        end = window.instants_end(at_us)
        if self._models is None or self._models.from_us != window.from_us:
            # Once per shift, one query over the rows the cursor has passed (and the few
            # stamped ahead of `at`); later rows are folded in as the cursor reads them, so a
            # scrape needs no per-model query.
            self._models = ModelTally(window)
            self._models.seed(store.model_summary(window.from_us, end, max_id=self._cursor))
            self._models.add(row for row in store.iter_range(end, None) if row.id <= self._cursor)
        snapshot = self._engine.snapshot(window, at_us)
        models = self._models.summary(end)
        alerts = store.alerts(active_only=True)
        return FloorFigures(snapshot, tuple(alerts), models)

    def _drop(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = None
        self._engine = None
        self._models = None


@dataclass(slots=True)
class _ModelTotals:
    events: int = 0
    confidence: float = 0.0
    min_confidence: float = 1.0
    units: int = 0


class ModelTally:
    """Per model_version: events, confidence and units of a window's rows, as
    `Store.model_summary` gives them, folded from the rows `serve`'s cursor reads anyway.

    A row is counted once the instant it carries is reached (`summary(end)`: ts < end); rows
    stamped later wait in a heap. Rows before the window's start are not its own.
    """

    def __init__(self, window: Window) -> None:
        self.from_us = window.from_us
        self._totals: dict[str | None, _ModelTotals] = {}
        self._new: list[EventRecord] = []
        self._waiting: list[tuple[int, int, EventRecord]] = []

    def seed(self, summaries: Iterable[ModelSummary]) -> None:
        """Start from `Store.model_summary` of rows already read (not to be `add`ed again)."""
        for m in summaries:
            self._totals[m.model_version] = _ModelTotals(
                m.events, m.mean_confidence * m.events, m.min_confidence, m.units
            )

    def add(self, rows: Iterable[EventRecord]) -> None:
        """Take in stored rows (each once: the caller reads by id)."""
        self._new.extend(row for row in rows if row.ts_us >= self.from_us)

    def summary(self, end_us: int) -> tuple[ModelSummary, ...]:
        """The figures of the rows with ts < `end_us` (a non-decreasing instant), events that
        named no model first, then by model_version."""
        new, self._new = self._new, []
        waiting = self._waiting
        for row in new:
            if row.ts_us < end_us:
                self._count(row)
            else:
                heapq.heappush(waiting, (row.ts_us, row.id, row))
        while waiting and waiting[0][0] < end_us:
            self._count(heapq.heappop(waiting)[2])
        return tuple(
            ModelSummary(model, t.events, t.confidence / t.events, t.min_confidence, t.units)
            for model, t in sorted(
                self._totals.items(), key=lambda item: (item[0] is not None, item[0] or "")
            )
        )

    def _count(self, row: EventRecord) -> None:
        totals = self._totals.get(row.model_version)
        if totals is None:
            totals = self._totals[row.model_version] = _ModelTotals(min_confidence=row.confidence)
        totals.events += 1
        totals.confidence += row.confidence
        totals.min_confidence = min(totals.min_confidence, row.confidence)
        if row.event_type == "product_count":
            totals.units += row.count


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_bearer_token(app: WsgiApp, token: str) -> WsgiApp:
    """`app` behind `Authorization: Bearer <token>` (401 otherwise; compared in constant time)."""
    expected = f"Bearer {token}".encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [("WWW-Authenticate", 'Bearer realm="factory-tui"'), ("Content-Type", "text/plain")],
        )
        return [b"401: /metrics needs Authorization: Bearer <[metrics_http] token>\n"]

    return guarded


def only_metrics_path(app: WsgiApp) -> WsgiApp:
    """`app` at `/metrics` alone: another path is 404, not the figures (a typo in a scrape
    config should fail loudly, and nothing else answers here)."""

    def routed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == "/metrics":
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"404: the figures are at /metrics\n"]

    return routed


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Scrapes every 15 s are not worth a log line each."""


class MetricsServer:
    """`/metrics` served by prometheus-client's WSGI app on a thread of its own."""

    def __init__(self, collector: FloorCollector, host: str, port: int, token: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.host = host
        self.token = token
        self._requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0
        """The bound port (useful with port 0)."""

    def start(self) -> None:
        """Bind and serve; raises MetricsHttpError with one sentence when the port is unusable
        or the address is reachable from the network without a token."""
        if not self.token and not is_loopback(self.host):
            raise MetricsHttpError(
                f"serving /metrics on {self.host} lets anyone on the network read the floor: "
                "set [metrics_http] token (or FACTORY_TUI_METRICS_HTTP_TOKEN) and give it to "
                "Prometheus as a bearer token, or bind 127.0.0.1"
            )
        host = "127.0.0.1" if self.host == "localhost" else self.host
        app: WsgiApp = make_wsgi_app(self.registry)
        if self.token:
            app = with_bearer_token(app, self.token)
        app = only_metrics_path(app)
        try:
            family = socket.getaddrinfo(host, self._requested_port, type=socket.SOCK_STREAM)[0][0]

            class Server(ThreadingWSGIServer):
                address_family = family

            server = make_server(
                host, self._requested_port, app, Server, handler_class=_QuietHandler
            )
        except OSError as error:
            raise MetricsHttpError(
                f"cannot serve /metrics on {self.host}:{self._requested_port}: "
                f"{error.strerror or error}; choose another [metrics_http] port"
            ) from None
        thread = threading.Thread(
            target=server.serve_forever, name="factory-tui metrics", daemon=True
        )
        thread.start()
        self._server = server
        self._thread = thread
        self.port = server.server_address[1]

    def stop(self) -> None:
        """Stop serving and release the port (waits for the server thread)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
