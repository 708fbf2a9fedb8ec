"""MQTT ingest: events from a broker's topic, through the listener's batches, acknowledged only
once stored.

`MqttIngest` subscribes with QoS 1 on a persistent session (a stable client id; MQTT 5
clean_start false with a session expiry, or MQTT 3.1.1 clean_session false) and with manual
acknowledgements. Each message (one event, a JSON array of events, or JSON lines) is split into
lines that go into the TCP listener's own batches (`Listener.enqueue`): the same validation,
dedup and writer thread as a line from a socket. A message's PUBACK is sent only after the batch
holding its lines has committed (and, for a message with rejected lines and a dead-letter topic,
after the broker has taken the dead letter), in the order the messages came, so a crash before
that makes the broker deliver it again, and dedup stores it once.

The broker bounds what is in flight (MQTT 5 Receive Maximum: `max_in_flight`), which is our
backpressure; past `max_in_flight` x `max_message_bytes` waiting for the listener, paho's thread
also stops reading (a broker may overshoot). Each topic is one sink of the listener, as one TCP
connection per camera. When the connection drops, nothing in flight is acknowledged: those
messages come again on the next connection (paho-mqtt reconnects with backoff). A batch that
cannot be stored drops the connection for the same reason, as a TCP connection is dropped.

paho-mqtt's network loop runs in its own thread; every callback hops to the event loop, where
all of our state lives (only the byte count that paho's thread waits on is shared, under a lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import msgspec
import paho.mqtt.client as paho

from factory_tui.config import Settings
from factory_tui.ingest.connection import pending_cost
from factory_tui.ingest.mqtt_client import (
    ClientOptions,
    MqttError,
    PubackWaiter,
    connect_args,
    make_client,
    parse_broker_url,
)
from factory_tui.ingest.protocol import (
    ACCEPTED,
    DUPLICATE,
    EXCERPT_CHARS,
    Line,
    Refused,
    decode_reply,
    too_long_error,
)
from factory_tui.records import MqttState

log = logging.getLogger("factory_tui.ingest.mqtt")

STOP_TIMEOUT_S: Final = 5.0
"""How long `stop` waits for in-flight messages to be stored and acknowledged."""
EMPTY_MESSAGE: Final = "message: empty (send one event, a JSON array of events, or JSON lines)"

_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode


class BatchHost(Protocol):
    """What MQTT ingest needs of the listener: its settings and its batches."""

    @property
    def settings(self) -> Settings:
        """The listener's settings (line limit)."""

    def enqueue(self, sink: Any, items: Sequence[Line], nbytes: int) -> None:
        """Queue lines for a batch; their replies go to `sink.deliver` once it commits."""


def split_message(payload: bytes, max_line_bytes: int, max_message_bytes: int) -> list[Line]:
    """A message's events as lines for the batch: one event, a JSON array of events, or JSON
    lines. What cannot be split is one `Refused` line, so it is rejected and counted."""
    if len(payload) > max_message_bytes:
        return [Refused(payload[:EXCERPT_CHARS], f"message: longer than {max_message_bytes} bytes")]
    body = payload.strip()
    if not body:
        return [Refused(b"", EMPTY_MESSAGE)]
    if body.startswith(b"["):
        try:
            lines = [bytes(raw) for raw in _decode_array(body)]
        except msgspec.DecodeError as error:
            return [Refused(body[:EXCERPT_CHARS], f"message: not a JSON array of events ({error})")]
        if not lines:
            return [Refused(body[:EXCERPT_CHARS], EMPTY_MESSAGE)]
    else:
        lines = [line for line in body.split(b"\n") if line.strip()]
    too_long = too_long_error(max_line_bytes)
    return [
        line if len(line) <= max_line_bytes else Refused(line[:EXCERPT_CHARS], too_long)
        for line in lines
    ]


@dataclass(slots=True, eq=False)
class _Ticket:
    """One received message on its way to its PUBACK."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    expected: int
    """Lines of the message in the batches."""
    replies: list[bytes] = field(default_factory=list)
    settled: int = 0
    """Lines committed or failed so far (the listener may split a message across batches)."""
    failed: bool = False
    """Some of its lines were in a batch that could not be stored."""
    ready: bool = False
    """Stored (and dead-lettered if it had to be): its PUBACK may go."""
    dead: bool = False
    """Its connection is gone, or a batch failed: never acknowledge it."""


class _TopicSink:
    """The listener's `ReplySink` for one topic: its messages' lines, in the order received.

    One sink per topic, as one connection per camera over TCP, so the listener's fair shares
    go to topics (cameras), not to each message.
    """

    __slots__ = ("_ingest", "_tickets", "peer", "topic")

    def __init__(self, ingest: MqttIngest, topic: str) -> None:
        self._ingest = ingest
        self._tickets: deque[_Ticket] = deque()
        self.topic = topic
        # The event log's rejected list names the topic where a TCP line shows its peer.
        self.peer = f"mqtt {topic}"

    def add(self, ticket: _Ticket) -> None:
        self._tickets.append(ticket)

    def deliver(self, replies: list[bytes], count: int, nbytes: int) -> None:
        start = 0
        while start < count:
            ticket = self._tickets[0]
            take = min(ticket.expected - ticket.settled, count - start)
            ticket.replies.extend(replies[start : start + take])
            start += take
            self._settle(ticket, take)

    def fail(self, message: str, count: int, nbytes: int) -> None:
        start = 0
        while start < count:
            ticket = self._tickets[0]
            take = min(ticket.expected - ticket.settled, count - start)
            start += take
            if not ticket.failed:
                ticket.failed = True
                self._ingest._batch_failed(ticket, message)
            self._settle(ticket, take)

    def _settle(self, ticket: _Ticket, lines: int) -> None:
        ticket.settled += lines
        if ticket.settled < ticket.expected:
            return
        self._tickets.popleft()
        self._ingest._release(len(ticket.payload))
        if not ticket.failed:
            self._ingest._stored(ticket)
        if not self._tickets:
            self._ingest._sink_idle(self)


def default_client_id(settings: Settings) -> str:
    """`factory-tui-<site>-<host>-<6 hex of the database>`: stable across restarts (the broker
    keeps our session under it) and different for two boxes, or two databases on one box, that
    share a site id — the same id would make the broker drop one for the other every second."""
    where = hashlib.sha256(str(settings.store.location).encode()).hexdigest()[:6]
    return f"factory-tui-{settings.site.id}-{socket.gethostname()}-{where}"


def connect_error(error: BaseException | None) -> str:
    """Why a connection attempt failed, in a few words (`connection refused`, `timed out`,
    `name or service not known`, a TLS verification error), or "" when unknown."""
    if not isinstance(error, OSError):
        return ""
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


class MqttIngest:
    """Subscribes to `[ingest.mqtt] topic` and feeds the listener; start and stop it on the
    listener's loop, stopping it before the listener."""

    def __init__(self, host: BatchHost) -> None:
        self._host = host
        settings = host.settings
        config = settings.ingest.mqtt
        if config.url is None:
            raise MqttError("MQTT ingest needs ingest.mqtt.url (mqtt://host:1883)")
        self._config = config
        self._broker = parse_broker_url(config.url)
        self._options = ClientOptions(
            client_id=config.client_id or default_client_id(settings),
            username=config.username,
            password=config.password,
            ca_file=config.ca_file,
            cert_file=config.cert_file,
            key_file=config.key_file,
            protocol=config.protocol,
            keepalive_s=config.keepalive_s,
            retry_max_s=config.retry_max_s,
            manual_ack=True,
            persistent=True,
            session_expiry_s=config.session_expiry_s,
            receive_maximum=config.max_in_flight,
        )
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._puback: PubackWaiter | None = None
        self._acks: deque[_Ticket] = deque()
        self._sinks: dict[str, _TopicSink] = {}
        self._settled = asyncio.Event()  # nothing in flight
        self._settled.set()
        # Payload bytes received and not yet through the listener. MQTT 5's Receive Maximum
        # asks the broker to bound what it sends before our PUBACKs, but a broker may send more
        # (Mosquitto 2.0 did here): past this bound paho's thread stops reading its socket.
        self._room = threading.Condition()
        self._held = 0
        self._held_limit = config.max_in_flight * config.max_message_bytes
        self._closing = False
        self._connected = False
        self._ever_connected = False
        self._down_since = time.monotonic()
        self._error = ""
        self._messages = 0
        self._dead_letters = 0
        self._started = False
        self._stopping = False
        self._subscribed = False

    @property
    def broker(self) -> str:
        """The broker as logs name it (no credentials)."""
        return self._broker.label

    @property
    def client_id(self) -> str:
        """The client id the persistent session is kept under."""
        return self._options.client_id

    @property
    def subscribed(self) -> bool:
        """Connected, and the broker has confirmed the subscription (loop thread)."""
        return self._connected and self._subscribed

    def start(self) -> None:
        """Start connecting in the background (a broker that is down is retried with backoff).

        Raises MqttError with one sentence when the settings cannot work (TLS files).
        """
        if self._started:
            raise RuntimeError("an MqttIngest runs once")
        loop = asyncio.get_running_loop()
        client = make_client(self._broker, self._options)
        self._started = True
        self._loop = loop
        self._down_since = time.monotonic()
        client.on_connect = self._paho_connect
        client.on_connect_fail = self._paho_connect_fail
        client.on_disconnect = self._paho_disconnect
        client.on_subscribe = self._paho_subscribe
        client.on_message = self._paho_message
        self._puback = PubackWaiter(client, self._loop)
        self._client = client
        client.connect_async(**connect_args(self._broker, self._options))
        client.loop_start()
        log.info(
            "MQTT: subscribing to %s on %s as %s", self._config.topic, self.broker, self.client_id
        )

    async def stop(self) -> None:
        """Take no more messages, wait (briefly) until those in flight are stored and
        acknowledged, then disconnect. What is still unacknowledged the broker keeps."""
        if not self._started or self._stopping:
            return
        self._stopping = True
        with self._room:
            self._closing = True  # paho's thread, if it waits for room, goes on (to be ignored)
            self._room.notify_all()
        try:
            await asyncio.wait_for(self._settled.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "MQTT: %d messages not acknowledged at stop (sent again later)", len(self._acks)
            )
        client = self._client
        assert client is not None
        connected = self._connected  # before paho's on_disconnect, which the await lets run
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        if connected:
            log.info(
                "MQTT: disconnected from %s (%d messages received)", self.broker, self._messages
            )
        elif self._ever_connected:
            log.info(
                "MQTT: stopped while %s was away (%d messages received)",
                self.broker,
                self._messages,
            )
        else:
            why = f" ({self._error})" if self._error else ""
            log.info("MQTT: stopped; never connected to %s%s", self.broker, why)

    def state(self) -> MqttState:
        """The connection's state now (loop thread)."""
        down = None if self._connected else time.monotonic() - self._down_since
        return MqttState(
            broker=self.broker,
            topic=self._config.topic,
            down_s=down,
            error=self._error,
            messages=self._messages,
            in_flight=len(self._acks),
        )

    # --- paho's thread: hand everything to the loop, in order --------------------------------

    def _hop(self, handler: Any, *args: Any) -> None:
        assert self._loop is not None
        # A closed loop: we are gone, and so is anything that would have been acknowledged.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(handler, *args)

    def _paho_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self._hop(self._refused, f"broker refused the connection: {reason}")
            return
        # The session may hold the subscription already; subscribing again is harmless.
        client.subscribe(self._config.topic, qos=1)
        self._hop(self._up, bool(getattr(flags, "session_present", False)))

    def _paho_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        # paho passes no error, but calls this inside its `except OSError:` around the connect
        # attempt (paho-mqtt 2.x), so the error is the one being handled.
        why = connect_error(sys.exc_info()[1])
        self._hop(self._refused, f"cannot connect to {self.broker}" + (f": {why}" if why else ""))

    def _paho_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._hop(self._down, str(reason))

    def _paho_subscribe(
        self, _client: paho.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        failed = [str(code) for code in reasons if code.is_failure]
        if failed:
            self._hop(self._refused, f"subscription to {self._config.topic} refused: {failed[0]}")
        else:
            self._hop(self._on_subscribed)

    def _paho_message(self, _client: paho.Client, _userdata: Any, message: Any) -> None:
        payload: bytes = message.payload
        with self._room:
            # Blocking here stops paho reading: TCP then holds the broker back. Our PUBACKs
            # wait in paho's queue meanwhile; nothing released here waits for them.
            while self._held > self._held_limit and not self._closing:
                self._room.wait(1.0)
            self._held += len(payload)
        self._hop(self._received, message.mid, message.qos, message.topic, payload)

    # --- the loop ---------------------------------------------------------------------------

    def _up(self, session_present: bool) -> None:
        was_down = time.monotonic() - self._down_since
        self._connected = True
        self._ever_connected = True
        self._error = ""
        log.info(
            "MQTT: connected to %s (%s session) after %.1f s",
            self.broker,
            "resumed" if session_present else "new",
            was_down,
        )

    def _on_subscribed(self) -> None:
        self._subscribed = True
        log.info("MQTT: subscribed to %s (QoS 1)", self._config.topic)

    def _refused(self, error: str) -> None:
        if error != self._error:
            log.warning("MQTT: %s; retrying", error)
        self._error = error

    def _down(self, reason: str) -> None:
        self._subscribed = False
        if self._connected:
            self._down_since = time.monotonic()
            self._connected = False
            if not self._stopping:
                log.warning(
                    "MQTT: lost %s (%s); reconnecting, %d in-flight messages will come again",
                    self.broker,
                    reason,
                    len(self._acks),
                )
                self._error = f"connection lost: {reason}"
        self._forget_in_flight()

    def _forget_in_flight(self) -> None:
        """The connection is gone: nothing received on it may be acknowledged any more (the
        broker sends it again on the next one)."""
        for ticket in self._acks:
            ticket.dead = True
        self._acks.clear()
        self._settled.set()

    def _release(self, nbytes: int) -> None:
        """`nbytes` of received payload are through the listener (or dropped)."""
        with self._room:
            self._held -= nbytes
            self._room.notify_all()

    def _received(self, mid: int, qos: int, topic: str, payload: bytes) -> None:
        if self._stopping or not self._connected:
            self._release(len(payload))
            return  # not acknowledged: the broker keeps it for our next session
        self._messages += 1
        ingest = self._host.settings.ingest
        items = split_message(payload, ingest.max_line_bytes, self._config.max_message_bytes)
        ticket = _Ticket(mid, qos, topic, payload, len(items))
        if qos > 0:
            self._acks.append(ticket)
            self._settled.clear()
        nbytes = sum(len(item) for item in items if isinstance(item, bytes))
        cost = pending_cost(nbytes, len(items))
        sink = self._sinks.get(topic)
        if sink is None:
            sink = self._sinks[topic] = _TopicSink(self, topic)
        sink.add(ticket)
        self._host.enqueue(sink, items, cost)

    def _sink_idle(self, sink: _TopicSink) -> None:
        """A topic's lines are all settled: forget its sink (topics come and go)."""
        if self._sinks.get(sink.topic) is sink:
            del self._sinks[sink.topic]

    def _stored(self, ticket: _Ticket) -> None:
        """The batch holding the message committed: acknowledge it, after its dead letter."""
        if ticket.dead:
            return
        topic = self._config.dead_letter_topic
        rejections = [
            (index, decode_reply(reply).get("error", ""))
            for index, reply in enumerate(ticket.replies)
            if reply not in (ACCEPTED, DUPLICATE)
        ]
        if not rejections or not topic or ticket.qos == 0:
            ticket.ready = True
            self._flush_acks()
            return
        assert self._puback is not None
        future = self._puback.publish(topic, dead_letter(ticket.topic, ticket.payload, rejections))
        self._dead_letters += 1

        def published(done: asyncio.Future[None]) -> None:
            if done.cancelled() or done.exception() is not None:
                log.warning("MQTT: dead letter not published: %s", done.exception())
                return  # unacknowledged: the message comes again on the next connection
            ticket.ready = True
            self._flush_acks()

        future.add_done_callback(published)

    def _batch_failed(self, ticket: _Ticket, message: str) -> None:
        """Not stored: drop the connection so that the broker sends everything again."""
        if ticket.dead:
            return
        log.warning("MQTT: %s; reconnecting to have the broker send it again", message)
        self._forget_in_flight()
        client = self._client
        sock = client.socket() if client is not None else None
        if isinstance(sock, socket.socket):
            # paho's thread sees the socket fail, reports the disconnect and reconnects.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _flush_acks(self) -> None:
        """PUBACK every stored message at the head of the queue, in the order received."""
        client = self._client
        assert client is not None
        acks = self._acks
        while acks and acks[0].ready:
            ticket = acks.popleft()
            client.ack(ticket.mid, ticket.qos)
        if not acks:
            self._settled.set()


def dead_letter(topic: str, payload: bytes, rejections: list[tuple[int, Any]]) -> bytes:
    """The dead letter of a message with rejected events: where it came from, why each was
    rejected (by index in the message), and the message as received."""
    return json.dumps(
        {
            "topic": topic,
            "errors": [{"index": index, "error": error} for index, error in rejections],
            "payload": payload.decode("utf-8", errors="replace"),
        },
        separators=(",", ":"),
    ).encode()
