"""The health badge: where amber and red begin (`HealthThresholds`), and what the badge shows."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from factory_tui.records import HealthLevel, HealthReading, HealthThresholds
from factory_tui.widgets.health_badge import HealthBadge


def reading(cpu: float, ram: float, disk_free: float | None = None) -> HealthReading:
    return HealthReading(
        cpu_percent=cpu, ram_percent=ram, rss_bytes=95_000_000, disk_free_percent=disk_free
    )


@pytest.mark.parametrize(
    ("cpu", "ram", "level"),
    [
        (0.0, 0.0, "ok"),
        (74.9, 74.9, "ok"),  # the worse of the two decides, they are not added up
        (75.0, 10.0, "warn"),  # amber from 75 % on, inclusive
        (10.0, 75.0, "warn"),  # RAM counts as much as CPU
        (89.9, 50.0, "warn"),
        (90.0, 10.0, "crit"),  # red from 90 % on, inclusive
        (10.0, 90.0, "crit"),
        (95.0, 41.0, "crit"),
        (100.0, 100.0, "crit"),
    ],
)
def test_default_thresholds(cpu: float, ram: float, level: HealthLevel) -> None:
    assert HealthThresholds().level(reading(cpu, ram)) == level


@pytest.mark.parametrize(
    ("cpu", "disk_free", "level"),
    [
        (23.0, None, "ok"),  # no disk figure (PostgreSQL): as before
        (23.0, 10.0, "ok"),  # 10 % free is not under 10 %
        (23.0, 9.9, "warn"),  # amber under 10 % free
        (23.0, 0.0, "warn"),
        (80.0, 5.0, "warn"),
        (95.0, 5.0, "crit"),  # red CPU stays red
    ],
)
def test_a_low_database_disk_makes_the_badge_at_least_amber(
    cpu: float, disk_free: float | None, level: HealthLevel
) -> None:
    assert HealthThresholds().level(reading(cpu, 41.0, disk_free)) == level


def test_configured_thresholds_move_the_boundaries() -> None:
    thresholds = HealthThresholds(warn_percent=50.0, crit_percent=60.0)
    assert thresholds.level(reading(49.9, 0.0)) == "ok"
    assert thresholds.level(reading(50.0, 0.0)) == "warn"
    assert thresholds.level(reading(0.0, 60.0)) == "crit"


class BadgeApp(App[None]):
    def __init__(self, badge: HealthBadge) -> None:
        super().__init__()
        self.badge = badge

    def compose(self) -> ComposeResult:
        yield self.badge


@pytest.mark.parametrize(
    ("cpu", "word", "css_class"),
    [(23.0, "OK", "-ok"), (80.0, "HIGH", "-warn"), (95.0, "CRIT", "-crit")],
)
async def test_badge_shows_the_level_as_a_word_and_a_class(
    cpu: float, word: str, css_class: str
) -> None:
    badge = HealthBadge()
    async with BadgeApp(badge).run_test(size=(20, 3)) as pilot:
        assert str(badge.render()).split() == ["CPU", "—", "RAM", "—", "RSS", "—"]
        assert not badge.classes & {"-ok", "-warn", "-crit"}
        badge.reading = reading(cpu, 41.0)
        await pilot.pause()
        lines = str(badge.render()).splitlines()
        assert lines[0] == f"CPU {cpu:.0f}% RAM 41%"
        assert lines[1].startswith("RSS 95 MB")
        assert lines[1].endswith(word)
        assert badge.classes & {"-ok", "-warn", "-crit"} == {css_class}


@pytest.mark.parametrize(
    ("cpu", "disk_free", "second_line"),
    [
        (23.0, 50.0, "RSS 95 MB    OK"),  # a disk with room: the badge reads as without one
        (23.0, 6.2, "DSK 94%    DISK"),
        (80.0, 6.2, "DSK 94%    DISK"),
        (95.0, 6.2, "DSK 94%    CRIT"),
    ],
)
async def test_a_low_disk_shows_its_use_in_place_of_the_rss(
    cpu: float, disk_free: float, second_line: str
) -> None:
    badge = HealthBadge()
    async with BadgeApp(badge).run_test(size=(20, 3)) as pilot:
        badge.reading = reading(cpu, 41.0, disk_free)
        await pilot.pause()
        assert str(badge.render()).splitlines()[1] == second_line
