"""The text the widgets show: ages, bars, sparklines, cut and padded names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from factory_tui.widgets.formatting import (
    age,
    bar,
    clip,
    fit,
    hours_minutes,
    matches,
    percent,
    rate,
    span,
    sparkline,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "not seen"),
        (0.0, "<1m ago"),
        (59.9, "<1m ago"),
        (60.0, "1m ago"),
        (3599.0, "59m ago"),
        (3600.0, "1h00m ago"),
        (47 * 3600 + 59 * 60, "47h59m ago"),
        (48 * 3600, "2d ago"),
    ],
)
def test_age_is_coarse(seconds: float | None, text: str) -> None:
    assert age(seconds) == text


def test_numbers() -> None:
    assert percent(None) == "—"
    assert percent(0.72) == "72%"
    assert percent(1.0) == "100%"
    assert rate(None) == "—"
    assert rate(18.25) == "18.2"
    assert rate(1523.4) == "1,523"
    assert hours_minutes(2 * 3600 + 5 * 60 + 59) == "2h05m"
    assert hours_minutes(45 * 60) == "45m"


def test_spans_under_a_minute_read_in_seconds() -> None:
    assert span(37.9) == "37s"
    assert span(0) == "0s"
    assert span(60) == "1m"
    assert span(2 * 3600 + 5 * 60) == "2h05m"


def test_sparkline_maps_zero_to_lowest_and_one_to_full_block() -> None:
    assert sparkline((0.0, 0.5, 1.0, 2.0, -1.0)) == "▁▅██▁"
    assert sparkline(()) == ""


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=12))
def test_sparkline_rounds_each_clamped_fraction_to_the_nearest_of_eight_levels(
    values: list[float],
) -> None:
    levels = "▁▂▃▄▅▆▇█"
    clamped = (min(1.0, max(0.0, value)) for value in values)  # NaN counts as zero
    assert sparkline(tuple(values)) == "".join(levels[round(value * 7)] for value in clamped)


def test_bar_fills_in_proportion_and_marks_null_differently() -> None:
    assert bar(0.5, 10) == ("█" * 5, "░" * 5)
    assert bar(0.0, 4) == ("", "░░░░")
    assert bar(None, 3) == ("", "···")


@given(st.text(max_size=30), st.integers(min_value=0, max_value=40))
def test_fit_is_exactly_the_width_even_with_wide_characters(text: str, width: int) -> None:
    fitted = fit(text, width)
    assert cell_len(fitted) == width
    assert cell_len(clip(text, width)) <= max(width, 0)


def test_fit_marks_a_cut_with_an_ellipsis() -> None:
    assert fit("Assembly 1", 6) == "Assem…"
    assert fit("ab", 4) == "ab  "
    assert fit("工場作業員", 5) == "工場…"


def test_matches_ignores_accents_and_case_on_either_side() -> None:
    assert matches(["jose"], "W1", "José Núñez")
    assert matches(["josé"], "W1", "Jose Nunez")
    assert matches(["nunez", "JOSE"], "W1", "José Núñez")
    assert matches(["ﬁ"], "W2", "Fitting")  # NFKD folds the ligature too
    assert not matches(["josep"], "W1", "José Núñez")
