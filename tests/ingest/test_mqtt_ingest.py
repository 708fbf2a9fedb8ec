"""MQTT ingest against a real Mosquitto broker (FACTORY_TUI_TEST_MQTT): what comes over MQTT is
stored as if it had come over TCP, bad payloads are rejected, counted and dead-lettered, a lost
broker is reported and reconnected to, and messages are acknowledged only once stored."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from factory_tui.config import Settings
from factory_tui.ingest.client import IngestClient
from factory_tui.ingest.listener import Listener
from factory_tui.ingest.mqtt_client import Broker, MqttError, MqttPublisher, mask, parse_broker_url
from factory_tui.ingest.mqtt_ingest import MqttIngest, default_client_id, split_message
from factory_tui.ingest.protocol import Refused
from factory_tui.storage import open_store
from tests.ingest.conftest import event_at, make_settings, wait_until


def unique() -> str:
    """A fresh name, so that tests sharing the broker never see each other's messages."""
    return f"ft-test-{uuid.uuid4().hex[:12]}"


def stored_events(path: Path) -> list[tuple[Any, ...]]:
    """Every stored event, without the columns that differ between two runs (ids, receipt)."""
    store = open_store(path, read_only=True)
    try:
        return sorted(
            (row.event_hash, row.ts_us, row.worker_id, row.workstation_id, row.event_type)
            + (row.confidence, row.count, row.model_version, row.camera_id)
            for row in store.iter_since(0)
        )
    finally:
        store.close()


@contextlib.asynccontextmanager
async def mqtt_listener(
    tmp_path: Path,
    name: str,
    batch_delay_s: float = 0.05,
    merge_max_lines: int = 50_000,
    **mqtt: Any,
) -> AsyncIterator[tuple[Listener, MqttIngest]]:
    """A listener on its own database with MQTT ingest subscribed as `mqtt` says."""
    # Sessions on the shared broker outlive a test by a minute only.
    mqtt.setdefault("session_expiry_s", 60)
    overrides = {f"ingest__mqtt__{key}": value for key, value in mqtt.items()}
    (tmp_path / name).mkdir()
    settings = make_settings(tmp_path / name, **overrides)
    listener = Listener(settings, batch_delay_s=batch_delay_s, merge_max_lines=merge_max_lines)
    await listener.start()
    ingest = MqttIngest(listener)
    ingest.start()
    try:
        yield listener, ingest
    finally:
        await ingest.stop()
        await listener.stop()


async def publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish each (topic, payload) with QoS 1, waiting for the broker to have it."""
    publisher = MqttPublisher(url, unique())
    await publisher.connect()
    try:
        for topic, payload in messages:
            await publisher.publish(topic, payload)
    finally:
        await publisher.close()


def test_a_message_is_one_event_an_array_or_json_lines() -> None:
    one, two = event_at(1), event_at(2)
    assert split_message(one, 1000, 10_000) == [one]
    assert split_message(b"[" + one + b", " + two + b"]", 1000, 10_000) == [one, two]
    assert split_message(one + b"\r\n\n" + two + b"\n", 1000, 10_000) == [one + b"\r", two]
    for bad in (b"", b"  \n", b"[]", b"[{", b"x" * 20_000):
        (item,) = split_message(bad, 1000, 10_000)
        assert isinstance(item, Refused), bad
    (long_line,) = split_message(b"{" + b" " * 2000 + b"}", 1000, 10_000)
    assert isinstance(long_line, Refused)
    assert "longer than 1000 bytes" in long_line.error


async def test_events_over_mqtt_are_stored_as_the_same_events_over_tcp(
    tmp_path: Path, mqtt_url: str
) -> None:
    lines = [event_at(n) for n in range(60)]
    lines += lines[:5]  # re-sent: duplicates either way
    base = unique()
    messages = [(f"{base}/W1/events", line) for line in lines[:20]]
    messages.append((f"{base}/W2/events", b"[" + b",".join(lines[20:40]) + b"]"))
    messages.append((f"{base}/W3/events", b"\n".join(lines[40:])))
    async with mqtt_listener(
        tmp_path, "mqtt", url=mqtt_url, topic=f"{base}/+/events", client_id=unique()
    ) as (over_mqtt, ingest):
        await wait_until(lambda: ingest.subscribed)
        await publish(mqtt_url, messages)
        await wait_until(lambda: over_mqtt.stats().accepted + over_mqtt.stats().duplicates == 65)
        await wait_until(lambda: ingest.state().in_flight == 0)
        mqtt_stats = over_mqtt.stats()
    (tmp_path / "tcp").mkdir()
    settings = make_settings(tmp_path / "tcp")
    async with Listener(settings) as over_tcp:
        client = IngestClient("127.0.0.1", over_tcp.port)
        await client.connect()
        replies = await client.send(lines)
        await client.close()
        tcp_stats = over_tcp.stats()
    assert [reply["status"] for reply in replies].count("accepted") == 60
    assert (mqtt_stats.accepted, mqtt_stats.duplicates, mqtt_stats.rejected) == (60, 5, 0)
    assert (tcp_stats.accepted, tcp_stats.duplicates) == (mqtt_stats.accepted, 5)
    over_mqtt_rows = stored_events(tmp_path / "mqtt" / "factory.db")
    assert len(over_mqtt_rows) == 60
    assert over_mqtt_rows == stored_events(tmp_path / "tcp" / "factory.db")


async def test_bad_payloads_are_rejected_counted_and_dead_lettered(
    tmp_path: Path, mqtt_url: str
) -> None:
    base = unique()
    topic = f"{base}/W9/events"
    dead_letters: list[dict[str, Any]] = []
    watcher = _Subscriber(mqtt_url, f"{base}/dead", dead_letters.append)
    await watcher.start()
    try:
        async with mqtt_listener(
            tmp_path,
            "db",
            url=mqtt_url,
            topic=f"{base}/+/events",
            client_id=unique(),
            dead_letter_topic=f"{base}/dead",
        ) as (listener, ingest):
            await wait_until(lambda: ingest.subscribed)
            await publish(
                mqtt_url,
                [
                    (topic, b"not json"),
                    (topic, b""),
                    (topic, b"[" + event_at(1) + b', {"worker_id": "W1"}]'),
                    (topic, event_at(2)),
                ],
            )
            await wait_until(lambda: listener.stats().accepted == 2)
            await wait_until(lambda: len(dead_letters) == 3)
            stats = listener.stats()
    finally:
        await watcher.stop()
    assert stats.rejected == 3
    assert {rejection.peer for rejection in stats.recent_rejections} == {f"mqtt {topic}"}
    assert all(letter["topic"] == topic for letter in dead_letters)
    by_payload = {letter["payload"]: letter["errors"] for letter in dead_letters}
    assert by_payload[""][0]["error"].startswith("message: empty")
    assert [error["index"] for error in by_payload["not json"]] == [0]
    mixed = next(errors for payload, errors in by_payload.items() if payload.startswith("["))
    assert [error["index"] for error in mixed] == [1]
    assert "timestamp" in mixed[0]["error"]


async def test_a_lost_broker_shows_down_and_is_reconnected_to(
    tmp_path: Path, mqtt_url: str
) -> None:
    broker = parse_broker_url(mqtt_url)
    proxy = _Proxy(broker.host, broker.port)
    port = await proxy.reserve_port()
    base = unique()
    async with mqtt_listener(
        tmp_path,
        "db",
        url=f"mqtt://127.0.0.1:{port}",
        topic=f"{base}/+/events",
        client_id=unique(),
        retry_max_s=1,
        keepalive_s=5,
    ) as (listener, ingest):
        # Nothing listens yet: down from the start, and the attempts go on.
        await wait_until(lambda: bool(ingest.state().error))
        assert ingest.state().down_s is not None
        assert ingest.state().describe().startswith("MQTT down")
        await proxy.start(port)
        await wait_until(lambda: ingest.subscribed, 15.0)
        await publish(mqtt_url, [(f"{base}/W1/events", event_at(1))])
        await wait_until(lambda: listener.stats().accepted == 1)
        await proxy.stop()
        await wait_until(lambda: ingest.state().down_s is not None)
        assert "connection lost" in ingest.state().error
        # Published while we are away: the broker keeps it for our session.
        await publish(mqtt_url, [(f"{base}/W1/events", event_at(2))])
        await proxy.start(port)
        await wait_until(lambda: ingest.subscribed, 15.0)
        await wait_until(lambda: listener.stats().accepted == 2)
    await proxy.stop()


async def test_a_broker_never_reached_says_why_and_is_not_called_a_disconnect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="factory_tui.ingest.mqtt")
    port = await _Proxy("127.0.0.1", 0).reserve_port()  # nothing listens there
    async with mqtt_listener(
        tmp_path, "db", url=f"mqtt://127.0.0.1:{port}", client_id=unique(), retry_max_s=1
    ) as (_listener, ingest):
        await wait_until(lambda: bool(ingest.state().error))
        refused = f"cannot connect to mqtt://127.0.0.1:{port}: connection refused"
        assert ingest.state().error == refused
    logged = [record.getMessage() for record in caplog.records]
    assert f"MQTT: {refused}; retrying" in logged
    assert not [line for line in logged if "disconnected" in line], logged
    assert logged[-1] == f"MQTT: stopped; never connected to mqtt://127.0.0.1:{port} ({refused})"


async def test_what_is_in_flight_when_the_broker_is_lost_is_not_acknowledged_and_comes_again(
    tmp_path: Path, mqtt_url: str
) -> None:
    broker = parse_broker_url(mqtt_url)
    proxy = _Proxy(broker.host, broker.port)
    port = await proxy.reserve_port()
    await proxy.start(port)
    base = unique()
    # A long batch delay holds the messages in the listener, received and not yet stored.
    async with mqtt_listener(
        tmp_path,
        "db",
        batch_delay_s=1.0,
        url=f"mqtt://127.0.0.1:{port}",
        topic=f"{base}/+/events",
        client_id=unique(),
        retry_max_s=1,
    ) as (listener, ingest):
        await wait_until(lambda: ingest.subscribed)
        await publish(mqtt_url, [(f"{base}/W1/events", event_at(n)) for n in range(5)])
        await wait_until(lambda: ingest.state().in_flight == 5)
        assert listener.stats().accepted == 0
        await proxy.stop()
        await wait_until(lambda: ingest.state().down_s is not None)
        assert ingest.state().in_flight == 0  # forgotten, not acknowledged
        await wait_until(lambda: listener.stats().accepted == 5)  # stored all the same
        await proxy.start(port)
        # The broker sends the five again on the resumed session: stored once, acknowledged.
        await wait_until(lambda: listener.stats().duplicates == 5, 15.0)
        await wait_until(lambda: ingest.state().in_flight == 0)
        assert ingest.state().messages == 10
    await proxy.stop()


class _Subscriber:
    """A plain paho subscriber collecting JSON messages (the dead-letter topic's reader)."""

    def __init__(self, url: str, topic: str, got: Callable[[dict[str, Any]], None]) -> None:
        self._broker = parse_broker_url(url)
        self._topic = topic
        self._got = got
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=unique())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        subscribed = asyncio.Event()
        self._client.on_message = lambda _c, _u, message: loop.call_soon_threadsafe(
            self._got, json.loads(message.payload)
        )
        self._client.on_subscribe = lambda *_: loop.call_soon_threadsafe(subscribed.set)
        self._client.on_connect = lambda client, *_: client.subscribe(self._topic, qos=1)
        await asyncio.to_thread(self._client.connect, self._broker.host, self._broker.port)
        self._client.loop_start()
        await asyncio.wait_for(subscribed.wait(), 10.0)

    async def stop(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)


class _Proxy:
    """A TCP relay to the broker that the test starts and stops, to lose the broker at will."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def reserve_port(self) -> int:
        """A port free now, where nothing listens until `start`."""
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port: int = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return port

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_many_publishes_in_flight_at_once_all_complete(mqtt_url: str) -> None:
    # PUBACKs arriving while other publishes are being made (paho's lock and ours: this used
    # to deadlock the two threads).
    publisher = MqttPublisher(mqtt_url, unique())
    await publisher.connect()
    try:
        topic = f"{unique()}/W1/events"
        sends = [publisher.publish(topic, event_at(n)) for n in range(300)]
        await asyncio.wait_for(asyncio.gather(*sends), 30.0)
    finally:
        await publisher.close()


async def test_settings_that_cannot_work_are_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    missing_ca = make_settings(
        tmp_path / "a", ingest__mqtt__url="mqtts://broker.invalid", ingest__mqtt__ca_file="no.pem"
    )
    ingest = MqttIngest(Listener(missing_ca))
    with pytest.raises(MqttError, match=r"cannot set up TLS for mqtts://broker.invalid:8883"):
        ingest.start()
    await ingest.stop()  # what a console does after a failed start: nothing to stop
    with pytest.raises(MqttError, match=r"mqtt://host:1883"):
        parse_broker_url("mqtt://:1883")
    assert parse_broker_url("mqtt://u:p%40ss@h") == Broker("h", 1883, False, "u", "p@ss")
    assert mask("mqtt://u:secret@h:1883") == "mqtt://u:***@h:1883"


async def test_what_is_held_in_memory_stays_bounded_and_nothing_stalls(
    tmp_path: Path, mqtt_url: str
) -> None:
    # Room for 256 bytes while MQTT 3.1.1 lets Mosquitto send 20 messages before our PUBACKs
    # (a broker may send past Receive Maximum too): paho's thread waits for room between
    # messages, and everything still gets through.
    base = unique()
    async with mqtt_listener(
        tmp_path,
        "db",
        batch_delay_s=0.002,
        url=mqtt_url,
        topic=f"{base}/+/events",
        client_id=unique(),
        protocol="3.1.1",
        max_in_flight=1,
        max_message_bytes=256,
    ) as (listener, ingest):
        await wait_until(lambda: ingest.subscribed)
        largest = max(len(event_at(n)) for n in range(200))
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, ingest._held)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        await publish(mqtt_url, [(f"{base}/W1/events", event_at(n)) for n in range(200)])
        await wait_until(lambda: listener.stats().accepted == 200)
        watcher.cancel()
    assert 0 < peak <= 256 + largest


async def test_a_message_split_across_batches_is_acknowledged_once_wholly_stored(
    tmp_path: Path, mqtt_url: str
) -> None:
    # Batches of at most 100 lines: the listener takes a share of each topic's lines in turn,
    # so the big message goes over several batches, between the small ones of another topic.
    base = unique()
    big = b"\n".join(event_at(n) for n in range(250))
    async with mqtt_listener(
        tmp_path,
        "db",
        merge_max_lines=100,
        url=mqtt_url,
        topic=f"{base}/+/events",
        client_id=unique(),
    ) as (listener, ingest):
        await wait_until(lambda: ingest.subscribed)
        await publish(
            mqtt_url,
            [(f"{base}/big/events", big)]
            + [(f"{base}/small/events", event_at(1_000 + n)) for n in range(3)],
        )
        await wait_until(lambda: listener.stats().accepted == 253)
        await wait_until(lambda: ingest.state().in_flight == 0)
        assert sum(listener.commit_latency().counts) >= 3  # it was split


def test_the_default_client_id_differs_per_box_and_database(tmp_path: Path) -> None:
    # Two boxes (or two databases on one box) of site "main" must not share a broker session:
    # the broker would drop one for the other every second.
    one = Settings.model_validate({"store": {"path": str(tmp_path / "a.db")}})
    other = Settings.model_validate({"store": {"path": str(tmp_path / "b.db")}})
    assert default_client_id(one) == default_client_id(one)
    assert default_client_id(one) != default_client_id(other)
    assert default_client_id(one).startswith(f"factory-tui-main-{socket.gethostname()}-")
