"""The health badge: where amber and red begin (`HealthThresholds`), and what the badge shows."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from factory_tui.records import HealthLevel, HealthReading, HealthThresholds
from factory_tui.widgets.health_badge import HealthBadge


def reading(cpu: float, ram: float) -> HealthReading:
    return HealthReading(cpu_percent=cpu, ram_percent=ram, rss_bytes=95_000_000)


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
