"""The MQTT subscription in the console: the summary bar says "MQTT up" or "MQTT down 2m", and
a console with `[ingest.mqtt]` stores what the broker delivers (real Mosquitto broker)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from textual.app import App, ComposeResult

from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.ingest.mqtt_client import MqttPublisher
from factory_tui.records import MqttState
from factory_tui.widgets.summary_bar import SummaryBar
from tests.tui.conftest import READING, SetClock
from tests.tui.floor import floor_settings

EVENT = (
    b'{"timestamp":"2024-05-01T10:20:00Z","worker_id":"W1","workstation_id":"S1",'
    b'"event_type":"working","confidence":0.9}'
)


class BarApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SummaryBar()


async def bar_text(state: MqttState | None) -> str:
    app = BarApp()
    async with app.run_test(size=(120, 10)) as pilot:
        bar = app.query_one(SummaryBar)
        bar.mqtt = state
        await pilot.pause()
        return str(bar.render())


async def test_the_mqtt_states_in_words() -> None:
    assert "MQTT up" in await bar_text(MqttState("mqtt://b:1883", "f/+/events", None))
    down = await bar_text(MqttState("mqtt://b:1883", "f/+/events", 130.0, "connection lost"))
    assert "MQTT down 2m" in down
    assert "MQTT" not in await bar_text(None)


def mqtt_console(floor_db: Path, clock: SetClock, url: str, topic: str) -> FactoryApp:
    settings = floor_settings(str(floor_db), tick_s=60.0)
    settings.ingest.mqtt.url = url
    settings.ingest.mqtt.topic = topic
    settings.ingest.mqtt.client_id = f"{topic.split('/')[0]}-console"
    settings.ingest.mqtt.retry_max_s = 1
    settings.ingest.mqtt.session_expiry_s = 60  # the shared broker forgets it soon after
    return make_app(settings, clock=clock, health=fixed_health(READING), animations=False)


async def until(condition: object, rounds: int = 1_000) -> None:
    """Wait (bounded: 10 s) until `condition()` holds."""
    for _ in range(rounds):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_a_console_subscribes_stores_and_shows_the_broker_up(
    floor_db: Path, clock: SetClock, mqtt_url: str
) -> None:
    name = f"ft-test-{uuid.uuid4().hex[:12]}"
    app = mqtt_console(floor_db, clock, mqtt_url, f"{name}/+/events")
    async with app.run_test(size=(120, 40)):
        ingest, listener = app.services.mqtt, app.services.listener
        assert ingest is not None
        assert listener is not None
        await until(lambda: ingest.subscribed)
        publisher = MqttPublisher(mqtt_url, f"{name}-camera")
        await publisher.connect()
        await publisher.publish(f"{name}/cam1/events", EVENT)
        await publisher.publish(f"{name}/cam1/events", b"{not json")
        await publisher.close()
        await until(lambda: listener.stats().accepted + listener.stats().rejected == 2)
        await app.tick_now()
        assert "MQTT up" in str(app.summary.render())
        (rejection,) = listener.stats().recent_rejections
        assert rejection.peer == f"mqtt {name}/cam1/events"
        await app.stop_services()
        assert ingest.state().in_flight == 0


async def test_a_console_whose_broker_is_away_says_mqtt_down(
    floor_db: Path, clock: SetClock, tmp_path: Path
) -> None:
    # A port with nothing listening: connection attempts fail and go on.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    app = mqtt_console(floor_db, clock, f"mqtt://127.0.0.1:{port}", "nowhere/+/events")
    async with app.run_test(size=(120, 40)):
        ingest = app.services.mqtt
        assert ingest is not None
        await until(lambda: bool(ingest.state().error))
        await app.tick_now()
        assert "MQTT down" in str(app.summary.render())
        assert app.services.listener is not None  # the TCP port runs on regardless
