"""`--site` (a browser tab's `?site=`) naming a site the database does not hold: the console
says so, with the sites it holds, and goes on over the site it shows instead."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from factory_tui.console.app import FactoryApp, make_app
from factory_tui.console.fleet import unknown_site_notice
from factory_tui.console.health import fixed_health
from tests.tui.conftest import READING, SetClock
from tests.tui.fleet import fill_fleet, site_settings


@pytest.fixture
def fleet_db(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.db"
    fill_fleet(str(path))
    return path


def viewer_of(fleet_db: Path, site: str) -> FactoryApp:
    """`factory-tui --viewer --db fleet.db --site <site>`, as a web tab runs it."""
    settings = site_settings(str(fleet_db), "north").for_site(site, "", {})
    return make_app(
        settings,
        clock=SetClock(),
        health=fixed_health(READING),
        role="viewer",
        animations=False,
        site_chosen=True,
    )


def notices(app: FactoryApp) -> list[str]:
    return [notification.message for notification in app._notifications]


async def test_an_unknown_site_is_named_with_the_sites_the_database_holds(
    fleet_db: Path,
) -> None:
    app = viewer_of(fleet_db, "nope")
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)
        await pilot.pause()
        assert app.error_message is None
        assert notices(app) == [
            "No site “nope” in this database (it holds austin, north, pune): showing austin."
        ]
        assert "site Austin" in app.sub_title  # and it goes on, over the first site


async def test_a_known_site_opens_without_a_notice(fleet_db: Path) -> None:
    app = viewer_of(fleet_db, "pune")
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.tick_now(), 10)
        await pilot.pause()
        assert notices(app) == []
        assert "site Pune" in app.sub_title


def test_a_long_list_of_sites_is_cut_and_counted() -> None:
    known = [f"line{number}" for number in range(1, 21)]
    notice = unknown_site_notice("line0", "line1", known)
    assert notice is not None
    assert "line12 and 8 more): showing line1." in notice
    assert unknown_site_notice("line3", "line3", known) is None
