"""The forward state in the summary bar: what a console that forwards its site's events says
about the central database, and that a console that does not forward says nothing of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.app import App, ComposeResult

from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.health import fixed_health
from factory_tui.records import ForwardState
from factory_tui.storage import open_store
from factory_tui.widgets.summary_bar import SummaryBar
from tests.tui.conftest import READING, ConsoleFactory, SetClock
from tests.tui.floor import floor_settings


class BarApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SummaryBar()


async def bar_text(state: ForwardState | None) -> str:
    app = BarApp()
    async with app.run_test(size=(120, 10)) as pilot:
        bar = app.query_one(SummaryBar)
        bar.forward = state
        await pilot.pause()
        return str(bar.render())


async def test_the_three_forward_states_in_words() -> None:
    assert "forward caught up" in await bar_text(ForwardState("central", 0))
    assert "forward 1,204 events behind" in await bar_text(ForwardState("central", 1_204))
    down = await bar_text(ForwardState("central", 1_204, 185.0, "cannot connect"))
    assert "central unreachable for 3m (1,204 events behind)" in down
    assert "forward" not in await bar_text(None)


def bar_of(app: FactoryApp) -> str:
    return str(app.summary.render())


async def test_a_console_that_does_not_forward_says_nothing_of_it(
    console: ConsoleFactory,
) -> None:
    app = console()
    async with app.run_test(size=(120, 40)):
        await app.tick_now()
        assert app.services.forwarder is None
        assert app.summary.forward is None
        text = bar_of(app)
        assert "forward" not in text
        assert "central" not in text


async def test_a_console_forwards_in_the_background_and_stops_it_on_quit(
    floor_db: Path, clock: SetClock, tmp_path: Path
) -> None:
    central = tmp_path / "central.db"
    settings = floor_settings(str(floor_db), tick_s=60.0)
    settings.forward.url = str(central)
    settings.forward.interval_s = 0.05
    app = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)
    async with app.run_test(size=(120, 40)):
        await app.tick_now()
        background = app.services.forwarder
        assert background is not None
        assert background.running
        assert await asyncio.to_thread(background.forwarder.caught_up.wait, 30.0)
        await app.tick_now()
        assert "forward caught up" in bar_of(app)
        await app.stop_services()
        assert not background.running
    with open_store(floor_db, read_only=True) as site, open_store(central, read_only=True) as copy:
        assert copy.count_events() == site.count_events() > 0
        assert copy.workers() == site.workers()
