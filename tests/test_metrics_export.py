"""`[metrics_http]`: `/metrics` scraped over real HTTP on loopback and parsed with
prometheus-client's parser, from `serve`'s wiring and from a console owning the listener.

Events go in through a real `Listener` (so the ingest counters are real), the floor's figures
are computed at a fixed instant, and they must equal `factory-tui report --format json` at the
same `--at`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.commands.serve import metrics_server
from factory_tui.config import load_settings
from factory_tui.console.fleet import FleetPipeline
from factory_tui.console.services import ConsoleServices, StartError
from factory_tui.engine import Window
from factory_tui.ingest.listener import Listener
from factory_tui.metrics_export import (
    FloorCollector,
    IngestFigures,
    MetricsHttpError,
    MetricsServer,
    ModelTally,
    StoreFloor,
    ingest_families,
)
from factory_tui.models import EventRecord, to_utc_us
from factory_tui.records import (
    CommitLatency,
    HealthReading,
    IngestStats,
    ModelSummary,
    MqttState,
    rejection_reason,
)
from factory_tui.storage import open_store

runner = CliRunner()
AT = "2024-05-01T11:00:00Z"
"""12:00 in Lisbon: inside the Day shift (08:00-16:00 local)."""

CONFIG = """\
timezone = "Europe/Lisbon"

[site]
id = "porto"

[metrics_http]
port = 0

[[shifts]]
name = "Day"
start = "08:00"
end = "16:00"

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


def wire(
    moment: str, event_type: str, worker: str = "W1", station: str = "S1", **more: Any
) -> bytes:
    event = {
        "timestamp": f"2024-05-01T{moment}Z",
        "worker_id": worker,
        "workstation_id": station,
        "event_type": event_type,
        "confidence": more.pop("confidence", 0.9),
        **more,
    }
    return json.dumps(event).encode()


EVENTS = [
    wire("10:00:00", "working", model_version="yolo-a"),
    wire("10:10:00", "product_count", count=4, model_version="yolo-a"),
    wire("10:40:00", "idle", model_version="yolo-a"),
    wire("10:05:00", "working", "W2", "S2", confidence=0.7, model_version="yolo-b"),
    wire("10:30:00", "product_count", "W2", "S2", count=3, model_version="yolo-b"),
    wire("10:50:00", "absent", "W2", "S2"),
]
UNKNOWN = wire("10:20:00", "working", "W9", "S7")
"""Not in the roster (and no auto-register): rejected."""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "factory.toml"
    path.write_text(CONFIG + f'\n[store]\npath = "{tmp_path / "factory.db"}"\n'.replace("\\", "/"))
    return path


def at_us() -> int:
    return to_utc_us(datetime.fromisoformat(AT))


def fill(listener: Listener) -> Any:
    """Known events, one duplicate and one rejected line, through the listener."""
    return listener.submit([*EVENTS, EVENTS[0], UNKNOWN])


def scrape(
    port: int, *, openmetrics: bool = False
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """GET /metrics and parse it: sample name -> {sorted labels: value}.

    With `openmetrics`, ask for the OpenMetrics format as Prometheus does, and parse it with
    the strict OpenMetrics parser.
    """
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if openmetrics:
        request.add_header("Accept", "application/openmetrics-text; version=1.0.0")
    with urllib.request.urlopen(request, timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    parse = text_string_to_metric_families
    if openmetrics:
        assert content_type.startswith("application/openmetrics-text")
        parse = openmetrics_families
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in parse(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float | None:
    return samples.get(name, {}).get(tuple(sorted(labels.items())))


def report_json(config: Path, *more: str) -> dict[str, Any]:
    result = runner.invoke(
        app, ["report", "--config", str(config), "--format", "json", "--at", AT, *more]
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def assert_floor_equals_report(samples: dict[str, Any], report: dict[str, Any]) -> None:
    """Every per-worker, per-station and factory figure of the report, read from /metrics."""
    site = "porto"
    assert value(samples, "factory_tui_snapshot_timestamp_seconds", site=site) == at_us() / 1e6
    assert report["workers"], "the report must have workers to compare"
    for w in report["workers"]:
        labels = {"site": site, "worker": w["worker_id"], "station": w["station_id"] or ""}
        assert value(samples, "factory_tui_worker_units", **labels) == w["units"]
        assert value(samples, "factory_tui_worker_utilization_ratio", **labels) == pytest.approx(
            w["utilization"]
        )
        assert value(samples, "factory_tui_worker_units_per_hour", **labels) == pytest.approx(
            w["uph"]
        )
        assert value(samples, "factory_tui_worker_active_seconds", **labels) == pytest.approx(
            w["active_s"]
        )
        assert value(samples, "factory_tui_worker_idle_seconds", **labels) == pytest.approx(
            w["idle_s"]
        )
        assert value(samples, "factory_tui_worker_absent_seconds", **labels) == pytest.approx(
            w["absent_s"]
        )
        assert value(samples, "factory_tui_worker_events", **labels) == w["events"]
        assert value(samples, "factory_tui_worker_state", **labels, state=w["state"]) == 1
    assert report["workstations"]
    for s in report["workstations"]:
        labels = {"site": site, "station": s["workstation_id"]}
        assert value(samples, "factory_tui_station_units", **labels) == s["units"]
        assert value(samples, "factory_tui_station_utilization_ratio", **labels) == pytest.approx(
            s["utilization"]
        )
        assert value(
            samples, "factory_tui_station_throughput_units_per_hour", **labels
        ) == pytest.approx(s["throughput_uph"])
        assert value(samples, "factory_tui_station_occupancy_seconds", **labels) == pytest.approx(
            s["occupancy_s"]
        )
        assert value(samples, "factory_tui_station_workers_present", **labels) == len(
            s["workers_present"]
        )
    f = report["factory"]
    assert value(samples, "factory_tui_factory_units", site=site) == f["units"]
    assert value(samples, "factory_tui_factory_utilization_ratio", site=site) == pytest.approx(
        f["avg_utilization"]
    )
    assert value(
        samples, "factory_tui_factory_throughput_units_per_hour", site=site
    ) == pytest.approx(f["throughput_uph"])
    assert value(samples, "factory_tui_factory_worker_units_per_hour", site=site) == pytest.approx(
        f["avg_uph"]
    )
    for state, count in f["workers_by_state"].items():
        assert value(samples, "factory_tui_factory_workers", site=site, state=state) == count


def assert_ingest_and_process(samples: dict[str, Any]) -> None:
    site = "porto"
    assert value(samples, "factory_tui_ingest_events_accepted_total", site=site) == len(EVENTS)
    assert value(samples, "factory_tui_ingest_events_duplicate_total", site=site) == 1
    rejected = {
        reason: value(samples, "factory_tui_ingest_events_rejected_total", site=site, reason=reason)
        for reason in ("invalid", "unknown_id", "too_long", "unfinished", "auth")
    }
    assert rejected == {"invalid": 0, "unknown_id": 1, "too_long": 0, "unfinished": 0, "auth": 0}
    assert value(samples, "factory_tui_ingest_connections", site=site) == 0
    commits = value(samples, "factory_tui_ingest_batch_commit_seconds_count", site=site)
    assert commits is not None
    assert commits >= 1
    assert value(
        samples, "factory_tui_ingest_batch_commit_seconds_bucket", site=site, le="+Inf"
    ) == (commits)
    assert value(samples, "factory_tui_model_units", site=site, model="yolo-a") == 4
    assert value(samples, "factory_tui_model_units", site=site, model="yolo-b") == 3
    assert value(samples, "factory_tui_model_events", site=site, model="") == 1
    cpu = value(samples, "process_cpu_seconds_total")
    rss = value(samples, "process_resident_memory_bytes")
    assert cpu is not None
    assert cpu > 0
    assert rss is not None
    assert rss > 1 << 20


async def test_serve_metrics_equal_the_report_for_the_same_instant(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(config, environ={}, overrides={"ingest.port": 0})
    listener = Listener(settings)
    await listener.start()
    floor = StoreFloor(settings, clock=at_us)
    server = metrics_server(settings, listener, None, floor)
    try:
        await fill(listener)
        server.start()
        assert server.port != 0
        samples = await asyncio.to_thread(scrape, server.port)
        # A second scrape reads by cursor: the same figures, plus what came in since.
        await listener.submit(
            [wire("10:55:00", "product_count", "W1", count=2, model_version="yolo-b"), b"{oops"]
        )
        again = await asyncio.to_thread(scrape, server.port)
    finally:
        await asyncio.to_thread(server.stop)
        floor.close()
        await listener.stop()
    assert_ingest_and_process(samples)
    assert value(samples, "factory_tui_worker_units", site="porto", worker="W1", station="S1") == 4
    assert value(again, "factory_tui_ingest_events_accepted_total", site="porto") == 7
    assert (
        value(again, "factory_tui_ingest_events_rejected_total", site="porto", reason="invalid")
        == 1
    )
    assert_floor_equals_report(again, report_json(config))
    # Per model, folded from the rows the cursor read (no per-model query): the report's.
    models = report_json(config, "--by", "model_version")["models"]
    assert len(models) == 3
    for m in models:
        labels = {"site": "porto", "model": m["model_version"] or ""}
        assert value(again, "factory_tui_model_events", **labels) == m["events"]
        assert value(again, "factory_tui_model_units", **labels) == m["units"]
        assert value(again, "factory_tui_model_mean_confidence_ratio", **labels) == pytest.approx(
            m["mean_confidence"]
        )


async def test_a_console_owning_the_listener_serves_its_last_tick(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(config, environ={}, overrides={"ingest.port": 0})
    services = ConsoleServices(settings, role="console", feeder=None)
    reading = HealthReading(cpu_percent=1.0, ram_percent=2.0, rss_bytes=3)
    pipeline = await services.start(at_us, lambda: reading)
    try:
        assert services.listener is not None
        assert services.metrics_http is not None
        await fill(services.listener)
        # Before the first tick there is no floor yet; the counters are there already.
        early = await asyncio.to_thread(scrape, services.metrics_http.port)
        assert "factory_tui_worker_units" not in early
        assert value(early, "factory_tui_ingest_events_accepted_total", site="porto") == 6
        await asyncio.to_thread(pipeline.tick)
        samples = await asyncio.to_thread(scrape, services.metrics_http.port)
        port = services.metrics_http.port
        openmetrics = await asyncio.to_thread(lambda: scrape(port, openmetrics=True))
    finally:
        await services.stop()
    assert_ingest_and_process(samples)
    report = report_json(config)
    assert_floor_equals_report(samples, report)
    assert_floor_equals_report(openmetrics, report)
    with pytest.raises(urllib.error.URLError, match="refused"):  # stopped with the console
        await asyncio.to_thread(scrape, port)


async def test_a_taken_metrics_port_is_one_sentence(tmp_path: Path) -> None:
    import socket

    config = write_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(
            config, environ={}, overrides={"ingest.port": 0, "metrics_http.port": port}
        )
        services = ConsoleServices(settings, role="console", feeder=None)
        with pytest.raises(StartError, match=r"cannot serve /metrics on 127\.0\.0\.1:\d+: .*"):
            await services.start(at_us, None)
        await services.stop()


def test_serve_process_serves_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The real command: `serve` logs where /metrics is, answers a scrape, releases the port."""
    config = write_config(tmp_path)
    env = {**os.environ, "FACTORY_TUI_PORT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "factory_tui", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        port = 0
        deadline = time.monotonic() + 30
        while not port and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if "serving /metrics on" in line:
                port = int(line.rsplit(":", 1)[1])
        assert port, "serve did not say where /metrics is"
        samples = scrape(port)
        assert value(samples, "factory_tui_ingest_events_accepted_total", site="porto") == 0
        assert value(samples, "factory_tui_factory_units", site="porto") == 0
        assert value(samples, "process_resident_memory_bytes") is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_metrics_http_is_off_by_default_on_loopback_and_set_from_the_environment() -> None:
    default = load_settings(None, environ={})
    assert default.metrics_http.port is None
    assert default.metrics_http.host == "127.0.0.1"
    env = {"FACTORY_TUI_METRICS_HTTP_PORT": "9464", "FACTORY_TUI_METRICS_MAX_GAP_S": "60"}
    settings = load_settings(None, environ=env)
    assert settings.metrics_http.port == 9464
    assert settings.metrics.max_gap_s == 60


async def test_a_fleet_console_serves_its_counters_but_no_floor(tmp_path: Path) -> None:
    """A database of several sites has no single floor to label `site`: counters only."""
    config = write_config(tmp_path)
    settings = load_settings(config, environ={}, overrides={"ingest.port": 0})
    with open_store(tmp_path / "factory.db", site="lisbon") as other:
        other.describe_site("Lisbon", {"timezone": "Europe/Lisbon"}, at_us())
    services = ConsoleServices(settings, role="console", feeder=None)
    pipeline = await services.start(at_us, None)
    try:
        assert isinstance(pipeline, FleetPipeline)
        assert services.listener is not None
        assert services.metrics_http is not None
        await fill(services.listener)
        await asyncio.to_thread(pipeline.tick)
        samples = await asyncio.to_thread(scrape, services.metrics_http.port)
    finally:
        await services.stop()
    assert "factory_tui_worker_units" not in samples
    assert value(samples, "factory_tui_ingest_events_accepted_total", site="porto") == 6
    assert value(samples, "process_resident_memory_bytes") is not None


def test_model_tally_counts_a_row_once_its_instant_is_reached() -> None:
    window = Window(to_utc_us(datetime.fromisoformat("2024-05-01T10:00:00Z")), at_us(), "Day")

    def row(i: int, minute: int, model: str | None, confidence: float, units: int = 0) -> Any:
        ts = window.from_us + minute * 60_000_000
        kind = "product_count" if units else "working"
        return EventRecord(i, ts, "W1", "S1", kind, confidence, units, model, None, 0, str(i))

    tally = ModelTally(window)
    tally.add([row(1, -1, "a", 0.1), row(2, 0, "a", 0.5, units=2), row(3, 5, None, 0.25)])
    tally.add([row(4, 90, "a", 1.0, units=7)])  # stamped ahead of the clock
    end = window.from_us + 60 * 60_000_000
    assert tally.summary(end) == (
        ModelSummary(None, 1, 0.25, 0.25, 0),
        ModelSummary("a", 1, 0.5, 0.5, 2),  # the row before the window is not its own
    )
    assert tally.summary(end + 31 * 60_000_000)[1] == ModelSummary("a", 2, 0.75, 0.5, 9)


def test_a_token_guards_metrics_and_is_required_off_loopback() -> None:
    collector = FloorCollector("porto", lambda: None)
    with pytest.raises(MetricsHttpError, match=r"set \[metrics_http\] token"):
        MetricsServer(collector, "0.0.0.0", 0).start()
    server = MetricsServer(collector, "127.0.0.1", 0, token="s3cret")
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        for header in (None, "Bearer wrong", "s3cret"):
            request = urllib.request.Request(url)
            if header is not None:
                request.add_header("Authorization", header)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 401
            assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        request = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
    finally:
        server.stop()
    assert "process_resident_memory_bytes" in text


def test_one_way_peers_and_dropped_lines_are_counted() -> None:
    stats = IngestStats(10, 0, 0, 1, 0.0, (), one_way=2, replies_dropped=7, dropped_unread=3)
    families = ingest_families("porto", IngestFigures(stats, CommitLatency((0.1,), (0, 0), 0.0)))
    totals = {
        sample.name: sample.value
        for family in families
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert totals["factory_tui_ingest_one_way_connections_total"] == 2
    assert totals["factory_tui_ingest_replies_dropped_total"] == 7
    assert totals["factory_tui_ingest_lines_dropped_unread_total"] == 3


def test_the_mqtt_subscription_is_exported() -> None:
    stats = IngestStats(0, 0, 0, 0, 0.0, ())
    latency = CommitLatency((0.1,), (0, 0), 0.0)
    samples = {}
    for up, state in ((1.0, None), (0.0, 120.0)):
        mqtt = MqttState("mqtt://broker:1883", "factory/+/events", state, "", 9, 2)
        families = ingest_families("porto", IngestFigures(stats, latency, None, mqtt))
        samples = {s.name: s for family in families for s in family.samples}
        assert samples["factory_tui_mqtt_up"].value == up
    assert samples["factory_tui_mqtt_messages_received_total"].value == 9
    assert samples["factory_tui_mqtt_messages_in_flight"].value == 2
    assert samples["factory_tui_mqtt_up"].labels["broker"] == "mqtt://broker:1883"
    without = ingest_families("porto", IngestFigures(stats, latency))
    assert not any(family.name.startswith("factory_tui_mqtt") for family in without)


def test_only_the_metrics_path_answers() -> None:
    server = MetricsServer(FloorCollector("porto", lambda: None), "127.0.0.1", 0)
    server.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metricz", timeout=10)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as ok:
            assert ok.status == 200
    finally:
        server.stop()
    assert missing.value.code == 404


def test_rejection_reasons() -> None:
    assert rejection_reason('auth: first line must be {"auth":"<token>"}') == "auth"
    assert rejection_reason("worker_id: 'W9' is not in the roster") == "unknown_id"
    assert rejection_reason("line: longer than 65536 bytes (discarded)") == "too_long"
    assert rejection_reason("line: not finished within 60 s; closing the connection") == (
        "unfinished"
    )
    assert rejection_reason("confidence: must be between 0 and 1") == "invalid"


def test_model_summary_up_to_a_cursor(any_store: Any) -> None:
    """The first scrape's one per-model query counts only the rows the cursor has passed."""
    from factory_tui.models import parse_event

    any_store.insert_batch([parse_event(line) for line in (*EVENTS[:3], EVENTS[3], EVENTS[4])])
    ids = [row.id for row in any_store.iter_range(None, None)]
    lo, hi = to_utc_us(datetime.fromisoformat("2024-05-01T10:00:00Z")), at_us()
    everything = any_store.model_summary(lo, hi)
    assert [(m.model_version, m.events) for m in everything] == [("yolo-a", 3), ("yolo-b", 2)]
    cursor = sorted(ids)[2]  # the first three stored: yolo-a's
    assert [
        (m.model_version, m.events, m.units) for m in any_store.model_summary(lo, hi, max_id=cursor)
    ] == [("yolo-a", 3, 4)]
    tally = ModelTally(Window(lo, hi, "Day"))
    tally.seed(any_store.model_summary(lo, hi, max_id=cursor))
    tally.add(row for row in any_store.iter_range(None, None) if row.id > cursor)
    assert tally.summary(hi) == tuple(everything)
