"""The summary bar keeps its height at 80 columns whatever the sort or a pause: the tiles under
it must not jump. Where the full words need another line it says them shorter; at 120 columns
there is room for them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from factory_tui.console.app import make_app
from factory_tui.console.health import fixed_health
from factory_tui.records import ForwardState, MqttState
from tests.tui.conftest import READING, ConsoleFactory, SetClock
from tests.tui.floor import floor_settings
from tests.tui.test_drilldown import settle


def bar_text(console_app: object) -> str:
    return str(console_app.summary.render())  # type: ignore[attr-defined]


async def test_the_bar_keeps_its_height_at_80_columns(console: ConsoleFactory) -> None:
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        live = app.summary.size.height
        assert live == 3
        seen = []
        for _ in range(5):  # every sort, back to name
            await pilot.press("s")
            await settle(app, pilot)
            seen.append(bar_text(app).split("sort ")[-1].strip())
            assert app.summary.size.height == live, bar_text(app)
        assert seen == ["util ↓", "units ↓", "UPH ↓", "stalest", "name"]
        await pilot.press("s", "s", "s", "s")  # the longest label, paused
        await pilot.press("space")
        await pilot.pause()
        await pilot.pause()
        assert "PAUSED" in bar_text(app)
        assert app.summary.size.height == live, bar_text(app)


async def test_at_120_columns_the_bar_has_room_for_the_full_words(
    console: ConsoleFactory,
) -> None:
    app = console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        live = app.summary.size.height
        await pilot.press("s", "s", "s", "s")
        await settle(app, pilot)
        text = bar_text(app)
        assert "sort last seen (stalest first)" in text
        assert "press 4" in text
        assert app.summary.size.height == live, text
        await pilot.press("space")
        await pilot.pause()
        await pilot.pause()
        assert "PAUSED" in bar_text(app)
        assert app.summary.size.height == live, bar_text(app)


async def test_a_filter_and_the_forward_and_mqtt_chips_keep_the_height_at_80_columns(
    floor_db: Path, clock: SetClock, tmp_path: Path
) -> None:
    """A console that forwards (to a real central file) and has a filter typed still draws the
    bar in its 3 lines: abbreviated, never wrapped onto a 4th."""
    settings = floor_settings(str(floor_db), tick_s=60.0)
    settings.forward.url = str(tmp_path / "central.db")
    settings.forward.interval_s = 0.05
    app = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)
    async with app.run_test(size=(80, 24)) as pilot:
        background = app.services.forwarder
        assert background is not None
        assert await asyncio.to_thread(background.forwarder.caught_up.wait, 30.0)
        await settle(app, pilot)
        assert app.summary.forward is not None
        assert app.summary.size.height == 3, bar_text(app)
        await pilot.press("/", "W", "1")
        await settle(app, pilot)
        text = bar_text(app)
        assert "“W1” 1/6" in text
        assert app.summary.size.height == 3, text
        app.summary.mqtt = MqttState("mqtt://b:1883", "f/+/events", None)
        app.summary.forward = ForwardState("central", 1_204)
        await pilot.pause()
        text = bar_text(app)
        assert "fwd 1,204 behind" in text
        assert app.summary.size.height == 3, text
        # Both links down: the outages stay, their backlog and the calm states go.
        app.summary.mqtt = MqttState("mqtt://b:1883", "f/+/events", 130.0, "connection lost")
        app.summary.forward = ForwardState("central", 1_204, 185.0, "cannot connect")
        await pilot.pause()
        text = bar_text(app)
        assert "fwd down 3m" in text
        assert "MQTT down 2m" in text
        assert "“W1” 1/6" in text
        assert app.summary.size.height == 3, text
    # At 120 columns too the bar keeps its 2 lines.
    app = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.summary.forward is not None
        await pilot.press("/", "W", "1")
        await settle(app, pilot)
        text = bar_text(app)
        assert "fwd " in text
        assert "“W1” 1/6" in text
        assert app.summary.size.height == 2, text
