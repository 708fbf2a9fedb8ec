"""What the MQTT subscriber (`mqtt_ingest.py`) and publisher (`simulate --mqtt`) share: the
broker URL, a configured paho-mqtt client, and waiting on the loop for a publish's PUBACK.

paho-mqtt runs its network loop in its own thread (`loop_start`), where it also reconnects with
backoff; its callbacks run there too, so everything that touches our state is handed to the
event loop with `call_soon_threadsafe`, which keeps the callbacks' order.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SCHEMES: Final = {"mqtt": (1883, False), "mqtts": (8883, True)}


class MqttError(Exception):
    """MQTT cannot run as configured; the message is one sentence saying why."""


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the broker is, as a `mqtt://` (plain) or `mqtts://` (TLS) URL says."""

    host: str
    port: int
    tls: bool
    username: str = ""
    password: str = ""

    @property
    def label(self) -> str:
        """`mqtt://host:port`, without credentials, for logs and messages."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> Broker:
    """The broker of `mqtt://[user[:password]@]host[:port]` (or `mqtts://`: TLS, port 8883)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise MqttError(f"MQTT URL {url!r} is not valid: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        raise MqttError(
            f"MQTT URL must look like mqtt://host:1883 or mqtts://host:8883, got {mask(url)!r}"
        )
    default_port, tls = SCHEMES[scheme]
    return Broker(
        parts.hostname,
        port if port is not None else default_port,
        tls,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
    )


def mask(url: str) -> str:
    """`url` with any password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How to reach and greet the broker (besides its URL)."""

    client_id: str
    username: str = ""
    password: str = ""
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    protocol: str = "5"
    """"5" (MQTT 5) or "3.1.1"."""
    keepalive_s: int = 30
    retry_max_s: float = 60.0
    manual_ack: bool = False
    persistent: bool = False
    """Keep the session (subscriptions, unacknowledged messages) across connections."""
    session_expiry_s: int = 0
    """MQTT 5: how long the broker keeps a persistent session after a disconnect."""
    receive_maximum: int = 0
    """MQTT 5: unacknowledged QoS 1 messages the broker may send us at once (0: its default)."""


def make_client(broker: Broker, options: ClientOptions) -> paho.Client:
    """A paho client set up for `broker` (not connected yet: see `connect_args`)."""
    v5 = options.protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=options.client_id,
        clean_session=None if v5 else not options.persistent,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        manual_ack=options.manual_ack,
    )
    username = options.username or broker.username
    password = options.password or broker.password
    if username or password:
        client.username_pw_set(username or None, password or None)
    if broker.tls:
        try:
            client.tls_set(
                ca_certs=str(options.ca_file) if options.ca_file else None,
                certfile=str(options.cert_file) if options.cert_file else None,
                keyfile=str(options.key_file) if options.key_file else None,
            )
        except (OSError, ValueError) as error:
            raise MqttError(f"cannot set up TLS for {broker.label}: {error}") from None
    # Grows from 1 s, doubling, to retry_max_s between attempts while the broker is away.
    client.reconnect_delay_set(1, max(1, round(options.retry_max_s)))
    client.max_queued_messages_set(0)
    return client


def connect_args(broker: Broker, options: ClientOptions) -> dict[str, Any]:
    """Keyword arguments of `connect` / `connect_async` for these options."""
    args: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "keepalive": options.keepalive_s,
    }
    if options.protocol == "5":
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if options.persistent:
            properties.SessionExpiryInterval = options.session_expiry_s
        if options.receive_maximum:
            properties.ReceiveMaximum = options.receive_maximum
        args["clean_start"] = not options.persistent
        args["properties"] = properties
    return args


class PubackWaiter:
    """Futures on the event loop for QoS 1 publishes, resolved by paho's `on_publish`.

    paho can call `on_publish` (in its thread) before `publish` has returned the message id: a
    PUBACK that beats its future is remembered until the future is registered.
    """

    def __init__(self, client: paho.Client, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._early: set[int] = set()
        client.on_publish = self._on_publish

    def publish(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        """Publish with QoS 1 (loop thread); the future is done once the broker has it."""
        future: asyncio.Future[None] = self._loop.create_future()
        # Not under our lock: paho calls `_on_publish` holding its own lock, which `publish`
        # takes too; holding ours here as well would deadlock the two threads.
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            # NO_CONN: paho keeps the message and sends it once connected again.
            future.set_exception(MqttError(f"cannot publish to {topic}: {info.rc}"))
            return future
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                future.set_result(None)
            else:
                self._waiting[info.mid] = future
        return future

    def _on_publish(
        self, _client: paho.Client, _userdata: Any, mid: int, _reason: Any, _props: Any
    ) -> None:
        with self._lock:
            future = self._waiting.pop(mid, None)
            if future is None:
                self._early.add(mid)
                return
        self._loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MqttPublisher:
    """Publishes with QoS 1 and waits for the broker's PUBACK (`simulate --mqtt`, tests)."""

    def __init__(self, url: str, client_id: str, *, ca_file: Path | None = None) -> None:
        self._broker = parse_broker_url(url)
        self._options = ClientOptions(client_id=client_id, ca_file=ca_file)
        self._client = make_client(self._broker, self._options)
        self._waiter: PubackWaiter | None = None

    @property
    def broker(self) -> str:
        """The broker as messages name it (no credentials)."""
        return self._broker.label

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Connect (raises MqttError with one sentence when the broker says no or is away)."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[str] = loop.create_future()

        def on_connect(
            _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
        ) -> None:
            text = f"broker refused the connection: {reason}" if reason.is_failure else ""
            loop.call_soon_threadsafe(_answer, answered, text)

        self._client.on_connect = on_connect
        self._waiter = PubackWaiter(self._client, loop)
        args = connect_args(self._broker, self._options)
        try:
            await asyncio.to_thread(self._client.connect, **args)
        except (OSError, ValueError) as error:
            raise MqttError(f"cannot reach the MQTT broker {self.broker}: {error}") from None
        self._client.loop_start()
        try:
            refused = await asyncio.wait_for(answered, timeout_s)
        except TimeoutError:
            refused = f"no answer from the MQTT broker {self.broker} in {timeout_s:g} s"
        if refused:
            await self.close()
            raise MqttError(refused)

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish one message and wait until the broker has it."""
        if self._waiter is None:
            raise MqttError("not connected")
        await self._waiter.publish(topic, payload)

    async def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)


def _answer(future: asyncio.Future[str], text: str) -> None:
    if not future.done():
        future.set_result(text)
