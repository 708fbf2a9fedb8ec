"""The console's alert plumbing: the idle check's short timelines agree with the whole window's."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.alerting import recent_timelines
from factory_tui.engine import Engine, Window
from factory_tui.engine.alerts import idle_since
from tests.engine.eventkit import MIN, at, ev

SHIFT = Window(at("06:00"), at("14:00"), "A")
STATES = ("working", "idle", "absent")


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(STATES), st.integers(min_value=1, max_value=40)),
        min_size=1,
        max_size=40,
    ),
    now_min=st.integers(min_value=1, max_value=8 * 60),
    idle_min=st.integers(min_value=1, max_value=120),
)
def test_the_idle_stretch_starts_where_the_whole_timeline_says(
    steps: list[tuple[str, int]], now_min: int, idle_min: int
) -> None:
    """Whatever the history, the short look-back finds the same idle start as the full window
    (and so the same alert with the same "idle for" text)."""
    engine = Engine(max_gap_s=900)
    moment = SHIFT.from_us
    rows = []
    for state, minutes in steps:
        rows.append(ev(moment, state))
        moment += minutes * MIN
    engine.apply(rows)
    now = SHIFT.from_us + now_min * MIN
    window = Window(SHIFT.from_us, now, "A")
    short = recent_timelines(engine, window, now, idle_min * 60)("W1")
    assert idle_since(short) == idle_since(engine.timeline("W1", window, now))


def test_a_long_idle_reaches_back_past_the_look_back() -> None:
    """Idle since 07:00, looked at 10:00 with a 15-minute threshold: the stretch starts at 07:00."""
    engine = Engine(max_gap_s=900)
    engine.apply(
        [ev(at("06:00"), "working"), *(ev(at("07:00") + k * 5 * MIN, "idle") for k in range(37))]
    )
    now = at("10:00")
    window = Window(SHIFT.from_us, now, "A")
    assert idle_since(recent_timelines(engine, window, now, 900)("W1")) == at("07:00")
