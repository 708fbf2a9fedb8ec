"""HTTP ingest (`[ingest.http]`): POST /api/events and GET /healthz, with curl and http.client.

The endpoint runs with a real listener in an event loop thread of its own, so the tests use the
real clients (/usr/bin/curl, http.client, raw sockets) as a camera would; the kill -9 test runs
`serve` as a child process.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from factory_tui.config import ConfigError, load_settings, unknown_env_names
from factory_tui.console.services import ConsoleServices, StartError
from factory_tui.ingest.http_ingest import BodyError, HttpIngest, batch_status, split_events
from factory_tui.ingest.listener import Listener
from factory_tui.models import now_us
from factory_tui.storage import SqliteStore
from tests.ingest.conftest import event_at, make_event, make_settings

WAIT_S = 30.0
# The wire format's example (README, "Wire format"): the event body cameras POSTed to the
# dashboard factory-tui replaces, as it was, one JSON object.
DASHBOARD_EXAMPLE = (
    b'{"timestamp": "2026-03-02T10:15:00Z", "worker_id": "W1", "workstation_id": "S1", '
    b'"event_type": "working", "confidence": 0.93, "model_version": "yolo-v8.2"}'
)
CURL = shutil.which("curl")
# Outside CI a missing curl skips its tests; under CI=true they fail.
needs_curl = pytest.mark.skipif(
    CURL is None and os.environ.get("CI") != "true",
    reason="curl is not installed (apt install curl)",
)


class Endpoint:
    """A listener and its HTTP endpoint running in an event loop thread of their own."""

    def __init__(self, tmp_path: Path, **overrides: Any) -> None:
        self.settings = make_settings(tmp_path, ingest__http__port=0, **overrides)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.listener = Listener(self.settings, linger_s=0.2)
        self.http = HttpIngest(self.settings, self.listener)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(WAIT_S)

    def start(self) -> Endpoint:
        self.thread.start()
        self.run(self.listener.start())
        self.run(self.http.start())
        return self

    def stop(self) -> None:
        self.run(self.http.stop())
        self.run(self.listener.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT_S)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.port}/api/events"

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.http.port, timeout=WAIT_S)

    def post(
        self, body: bytes, content_type: str = "application/json", **headers: str
    ) -> tuple[int, dict[str, Any]]:
        """One POST on a new connection: (status, JSON body)."""
        conn = self.connect()
        try:
            conn.request("POST", "/api/events", body, {"Content-Type": content_type, **headers})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def stored(self) -> int:
        with SqliteStore.open(self.settings.store.path, read_only=True) as store:
            return store.count_events()


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Callable[..., Endpoint]]:
    """A factory: `endpoint(**settings_overrides)` starts one; each is stopped at the end."""
    started: list[Endpoint] = []

    def start(**overrides: Any) -> Endpoint:
        running = Endpoint(tmp_path, **overrides).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def curl(*args: str) -> tuple[int, dict[str, Any]]:
    """Run curl: (HTTP status, JSON body)."""
    assert CURL is not None
    result = subprocess.run(
        [CURL, "-sS", "-o", "-", "-w", "\n%{http_code}", *args],
        capture_output=True,
        timeout=WAIT_S,
        check=True,
    )
    body, _, status = result.stdout.rpartition(b"\n")
    return int(status), json.loads(body)


# --- with curl, the real client ---------------------------------------------------------------


@needs_curl
def test_the_dashboards_example_body_is_stored_then_answered_duplicate(
    endpoint: Callable[..., Endpoint],
) -> None:
    running = endpoint()
    header = "Content-Type: application/json"
    first = curl("-H", header, "--data-binary", DASHBOARD_EXAMPLE.decode(), running.url)
    expected = {"accepted": 1, "duplicate": 0, "rejected": 0, "events": [{"status": "accepted"}]}
    assert first == (200, expected)
    assert running.stored() == 1
    # The same body again (also without a Content-Type: curl -d sends form-urlencoded).
    again = curl("-d", DASHBOARD_EXAMPLE.decode(), running.url)
    assert again[0] == 200
    assert again[1]["events"] == [{"status": "duplicate"}]
    assert running.stored() == 1


@needs_curl
def test_curl_with_a_bad_token_gets_401_and_the_right_one_gets_in(
    endpoint: Callable[..., Endpoint],
) -> None:
    running = endpoint(ingest__http__token="s3cret")
    body = make_event(1).decode()
    wrong = curl("-H", "Authorization: Bearer nope", "-d", body, running.url)
    assert wrong[0] == 401
    assert "bearer token" in wrong[1]["error"]
    missing = curl("-d", body, running.url)
    assert missing[0] == 401
    right = curl("-H", "Authorization: Bearer s3cret", "-d", body, running.url)
    assert right[0] == 200
    assert running.stored() == 1
    assert running.listener.stats().rejected == 2  # the refusals count, as on the TCP port


@needs_curl
def test_curl_over_the_body_limit_gets_413(
    endpoint: Callable[..., Endpoint], tmp_path: Path
) -> None:
    running = endpoint(ingest__http__max_body_bytes=4096)
    lines = b"\n".join(event_at(n) for n in range(200))  # about 26 KB of JSON lines
    (tmp_path / "big.jsonl").write_bytes(lines)
    status, body = curl(
        "-H",
        "Content-Type: application/x-ndjson",
        "--data-binary",
        f"@{tmp_path / 'big.jsonl'}",
        running.url,
    )
    assert status == 413
    assert body == {"error": "body: larger than 4096 bytes"}
    assert running.stored() == 0


# --- with http.client ---------------------------------------------------------------------------


def test_an_array_answers_each_event_in_order(endpoint: Callable[..., Endpoint]) -> None:
    running = endpoint()
    events = [make_event(1), make_event(2, confidence=1.7), make_event(1), make_event(3)]
    status, body = running.post(b"[" + b",".join(events) + b"]")
    assert status == 207  # some rejected, the rest stored
    assert body["events"] == [
        {"status": "accepted"},
        {"status": "rejected", "error": "confidence: must be between 0 and 1, got 1.7"},
        {"status": "duplicate"},
        {"status": "accepted"},
    ]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 1)
    assert running.stored() == 2


def test_json_lines_under_either_content_type(endpoint: Callable[..., Endpoint]) -> None:
    running = endpoint()
    lines = b"\n".join(event_at(n) for n in range(5)) + b"\n\n"
    status, body = running.post(lines, "application/x-ndjson")
    assert status == 200
    assert body["accepted"] == 5
    # JSON lines sent as application/json are JSON lines too (not one malformed object).
    status, body = running.post(lines.replace(b"\n", b"\r\n"), "application/json")
    assert status == 200
    assert body["events"] == [{"status": "duplicate"}] * 5
    assert running.stored() == 5


def test_every_event_rejected_is_422_and_bad_lines_are_rejected_one_by_one(
    endpoint: Callable[..., Endpoint],
) -> None:
    running = endpoint()
    status, body = running.post(
        b"not json\n" + make_event(1, worker_id="W99"), "application/x-ndjson"
    )
    assert status == 422
    assert [event["status"] for event in body["events"]] == ["rejected", "rejected"]
    assert "not in the roster" in body["events"][1]["error"]
    assert running.stored() == 0
    recent = running.listener.stats().recent_rejections
    assert recent[-1].peer.startswith("http 127.0.0.1:")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"timestamp": "2026-03-02T10:15:00Z", "worker_id"', "body: not valid JSON"),
        (b"", "body: empty"),
        (b"  42 ", "body: must be an event object, an array of events, or JSON lines"),
    ],
)
def test_a_malformed_body_is_400_and_the_connection_stays_usable(
    endpoint: Callable[..., Endpoint], body: bytes, error: str
) -> None:
    running = endpoint()
    conn = running.connect()
    conn.request("POST", "/api/events", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["error"].startswith(error)
    sock = conn.sock
    conn.request("POST", "/api/events", make_event(1), {"Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    assert conn.sock is sock  # the same connection
    conn.close()


def test_keep_alive_serves_two_posts_and_a_health_check_on_one_connection(
    endpoint: Callable[..., Endpoint],
) -> None:
    running = endpoint()
    conn = running.connect()
    conn.request("POST", "/api/events", make_event(1), {"Content-Type": "application/json"})
    first = conn.getresponse()
    assert first.status == 200
    assert first.getheader("Connection") is None
    first.read()
    sock = conn.sock
    assert sock is not None
    conn.request("POST", "/api/events", make_event(2), {"Content-Type": "application/json"})
    second = conn.getresponse()
    assert json.loads(second.read())["events"] == [{"status": "accepted"}]
    conn.request("GET", "/healthz")
    health = conn.getresponse()
    assert health.status == 200
    assert json.loads(health.read())["status"] == "ok"
    assert conn.sock is sock  # http.client would have reconnected had the server closed
    conn.close()


def test_pipelined_requests_are_answered_in_order(endpoint: Callable[..., Endpoint]) -> None:
    running = endpoint()
    request = (
        b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s"
    )
    one, two = make_event(1), make_event(1)
    with socket.create_connection(("127.0.0.1", running.http.port), WAIT_S) as sock:
        sock.sendall(request % (len(one), one) + request % (len(two), two))
        sock.shutdown(socket.SHUT_WR)
        received = b""
        for _ in range(100):  # bounded: the server closes after the two answers
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert received.index(b'"accepted":1') < received.index(b'"duplicate":1')


def test_over_the_body_limit_is_413_by_length_and_by_chunks(
    endpoint: Callable[..., Endpoint],
) -> None:
    running = endpoint(ingest__http__max_body_bytes=2048)
    big = b"[" + b",".join(event_at(n) for n in range(40)) + b"]"
    status, body = running.post(big)
    assert status == 413
    conn = running.connect()
    chunks = iter([big[:1000], big[1000:2000], big[2000:]])  # no Content-Length: chunked
    conn.request("POST", "/api/events", chunks, {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 413
    assert response.getheader("Connection") == "close"
    conn.close()
    assert running.stored() == 0


def test_wrong_paths_methods_and_types(endpoint: Callable[..., Endpoint]) -> None:
    running = endpoint()
    conn = running.connect()
    conn.request("GET", "/api/events")
    response = conn.getresponse()
    assert (response.status, response.getheader("Allow")) == (405, "POST")
    response.read()
    conn.close()
    conn = running.connect()
    conn.request("POST", "/events", make_event(1))
    assert conn.getresponse().status == 404
    conn.close()
    status, body = running.post(make_event(1), "application/xml")
    assert status == 415
    assert "application/json" in body["error"]


def test_healthz_reports_the_listener_and_the_last_commit(
    endpoint: Callable[..., Endpoint],
) -> None:
    running = endpoint(ingest__http__token="s3cret")  # health needs no token

    def health() -> tuple[int, dict[str, Any]]:
        conn = running.connect()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        result = response.status, json.loads(response.read())
        conn.close()
        return result

    status, before = health()
    assert status == 200
    assert before["listener"] == "running"
    assert before["store"] == "ok"
    assert before["last_commit_age_s"] is None
    assert running.post(make_event(1), Authorization="Bearer s3cret")[0] == 200
    status, after = health()
    assert after["last_commit_age_s"] is not None
    assert 0 <= after["last_commit_age_s"] < WAIT_S
    running.run(running.http.stop())
    assert running.http.health()[0] == 503


def test_a_slow_client_gets_408_and_is_closed(endpoint: Callable[..., Endpoint]) -> None:
    running = endpoint(ingest__http__timeout_s=0.3)
    with socket.create_connection(("127.0.0.1", running.http.port), WAIT_S) as sock:
        # Headers that never finish (a slowloris trickle stops here).
        sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Len")
        received = b""
        for _ in range(100):  # bounded: the server answers and closes after timeout_s
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"not received within 0.3 s" in received


def test_without_a_token_a_public_host_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ingest__http__port=0, ingest__http__host="0.0.0.0")

    async def start() -> str:
        listener = Listener(settings)
        try:
            await HttpIngest(settings, listener).start()
        except Exception as error:
            return str(error)
        return "started"

    assert "without a token" in asyncio.run(start())


# --- the console runs it beside its listener ----------------------------------------------------


async def test_the_console_owning_the_listener_serves_http_ingest(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ingest__http__port=0)
    services = ConsoleServices(settings, role="console", feeder=None)
    await services.start(now_us, None)
    try:
        assert services.http_ingest is not None
        port = services.http_ingest.port

        def post() -> tuple[int, dict[str, Any]]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
            conn.request("POST", "/api/events", DASHBOARD_EXAMPLE)
            response = conn.getresponse()
            result = response.status, json.loads(response.read())
            conn.close()
            return result

        status, body = await asyncio.to_thread(post)
    finally:
        await services.stop()
    assert (status, body["events"]) == (200, [{"status": "accepted"}])
    with pytest.raises(ConnectionRefusedError):  # stopped with the console
        await asyncio.to_thread(post)


async def test_a_taken_http_port_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = make_settings(tmp_path, ingest__http__port=taken.getsockname()[1])
        services = ConsoleServices(settings, role="console", feeder=None)
        try:
            with pytest.raises(StartError, match=r"cannot serve HTTP ingest on 127\.0\.0\.1:\d+: "):
                await services.start(now_us, None)
        finally:
            await services.stop()


def test_the_http_settings_come_from_the_environment_too(tmp_path: Path) -> None:
    env = {"FACTORY_TUI_INGEST_HTTP_PORT": "8123", "FACTORY_TUI_INGEST_HTTP_TOKEN": "t"}
    settings = load_settings(environ=env, overrides={"store.path": tmp_path / "f.db"})
    assert (settings.ingest.http.port, settings.ingest.http.token) == (8123, "t")
    assert settings.ingest.port == 7878  # the TCP port is its own
    assert unknown_env_names(env) == []
    with pytest.raises(ConfigError, match=r"^FACTORY_TUI_INGEST_HTTP_PORT=x: ingest\.http\.port: "):
        load_settings(environ={"FACTORY_TUI_INGEST_HTTP_PORT": "x"})


# --- the body splitter, on its own ----------------------------------------------------------


def test_split_events_keeps_each_elements_own_bytes() -> None:
    body = b' [ {"a": 1.50} ,\n 7 ] '
    assert split_events(body, "json") == [b'{"a": 1.50}', b"7"]
    assert split_events(b'{\n "a": 1\n}\n', "json") == [b'{\n "a": 1\n}']
    assert split_events(b"x\n\n  \ny", "lines") == [b"x", b"y"]
    with pytest.raises(BodyError):
        split_events(b" \n ", "lines")
    assert batch_status([]) == 200


# --- kill -9 of serve mid-request ---------------------------------------------------------------


def test_kill_9_of_serve_loses_no_event_that_was_answered(tmp_path: Path) -> None:
    db = tmp_path / "http-crash.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_TUI_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "factory_tui", "serve", "--db", str(db), "--port", "0"]
        + ["--http-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("listening on ")
        announced = server.stdout.readline().strip()
        assert announced.startswith("HTTP ingest on http://127.0.0.1:"), announced
        port = int(announced.rsplit(":", 1)[1].split("/", 1)[0])
        answered: list[bytes] = []
        lock = threading.Lock()
        enough = threading.Event()

        def post_batches(first: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
            try:
                for batch in range(200):  # bounded; the kill ends it much sooner
                    events = [event_at(first + batch * 100 + n) for n in range(100)]
                    conn.request("POST", "/api/events", b"[" + b",".join(events) + b"]")
                    reply = json.loads(conn.getresponse().read())
                    stored = [
                        event
                        for event, status in zip(events, reply["events"], strict=True)
                        if status["status"] in ("accepted", "duplicate")
                    ]
                    with lock:
                        answered.extend(stored)
                        if len(answered) >= 1_500:
                            enough.set()
            except (OSError, http.client.HTTPException):
                pass  # the server was killed under us: expected
            finally:
                conn.close()

        posters = [threading.Thread(target=post_batches, args=(n * 1_000_000,)) for n in range(3)]
        for poster in posters:
            poster.start()
        assert enough.wait(WAIT_S), "no answers from serve"
        server.send_signal(signal.SIGKILL)  # while the posters still have requests in flight
        server.wait(WAIT_S)
        for poster in posters:
            poster.join(WAIT_S)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    with SqliteStore.open(db, read_only=True) as store:
        stored = {record.ts_us for record in store.iter_since(0)}
        total = store.count_events()
    assert len(answered) >= 1_500
    assert total < 3 * 200 * 100  # the kill did interrupt the stream
    missing = [event for event in answered if _ts_us(json.loads(event)["timestamp"]) not in stored]
    assert missing == []


def _ts_us(timestamp: str) -> int:
    moment = datetime.fromisoformat(timestamp).astimezone(UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond
