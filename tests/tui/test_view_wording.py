"""What the views say matches what they show: the event log's connection count, each key
listed once in a view's help, no `r Retrain` in a read-only viewer's footer."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from factory_tui.console.screens.alerts_screen import AlertsScreen
from factory_tui.console.screens.event_log_screen import EventLogScreen
from factory_tui.console.screens.help_screen import HelpScreen
from factory_tui.console.screens.worker_detail_screen import WorkerDetailScreen
from factory_tui.ingest.client import IngestClient
from tests.tui.conftest import ConsoleFactory
from tests.tui.floor import AT, line
from tests.tui.test_drilldown import SIZE, drawn, listener_port, open_view, settle


def footer_words(screen: Screen[None]) -> list[str]:
    """The descriptions of the keys the screen's footer shows."""
    return [key.description for key in screen.query(FooterKey)]


async def test_the_event_log_counts_the_connections_open_now(console: ConsoleFactory) -> None:
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "3", EventLogScreen)
        heading = screen.query_one("#log-heading", Static)
        assert "0 connected now" in drawn(heading)
        client = IngestClient("127.0.0.1", listener_port(app))
        await client.connect()
        try:
            await client.send([line(AT, "W6", "S6", "idle")])  # answered: counted by now
            await settle(app, pilot)
            assert "1 connected now" in drawn(heading)
        finally:
            await client.close()
        assert "since start: accepted 1" in drawn(heading)


async def test_the_worker_help_lists_each_key_once(console: ConsoleFactory) -> None:
    app = console()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("enter")  # the first tile's worker
        await pilot.pause()
        assert isinstance(app.screen, WorkerDetailScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        descriptions = [description for _, description in app.screen._keys]
        assert len(descriptions) == len(set(descriptions))
        views = [key for key, _ in app.screen._keys if "event log" in _.lower()]
        assert len(views) == 1, views


async def test_a_viewer_has_no_retrain_key_in_its_footer(console: ConsoleFactory) -> None:
    owner = console()
    async with owner.run_test(size=SIZE) as owner_pilot:
        await settle(owner, owner_pilot)
        screen = await open_view(owner, owner_pilot, "4", AlertsScreen)
        await owner_pilot.pause()
        assert "Retrain" in footer_words(screen)
        viewer = console(role="viewer")
        async with viewer.run_test(size=SIZE) as pilot:
            await settle(viewer, pilot)
            screen = await open_view(viewer, pilot, "4", AlertsScreen)
            await pilot.pause()
            footer = footer_words(screen)
            assert "Report" in footer
            assert "Retrain" not in footer
