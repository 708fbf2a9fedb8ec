"""The summary bar keeps its height at 80 columns whatever the sort or a pause: the tiles under
it must not jump. Where the full words need another line it says them shorter; at 120 columns
there is room for them."""

from __future__ import annotations

from tests.tui.conftest import ConsoleFactory
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
