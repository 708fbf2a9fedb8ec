"""A worker tile: its displayed values, and strips of exactly the tile's size."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.style import Style

from factory_tui.engine.snapshot import WORKER_STATES
from factory_tui.widgets.worker_tile import MIN_TILE_WIDTH, TILE_HEIGHT, TilePalette, WorkerTile
from tests.tui.sample import AT_US, STATIONS, worker

PALETTE = TilePalette(
    base=Style(),
    border=Style(),
    border_selected=Style(bold=True),
    title=Style(),
    label=Style(),
    value=Style(),
    bar_filled=Style(),
    bar_empty=Style(),
    spark=Style(),
    states={state: Style(reverse=True) for state in WORKER_STATES},
)


def text_of(tile: WorkerTile, width: int, *, selected: bool = False) -> list[str]:
    return [strip.text for strip in tile.render(width, PALETTE, selected=selected)]


def test_tile_shows_every_figure_in_text() -> None:
    tile = WorkerTile.from_metrics(
        worker("W1", "Ana Silva", utilization=0.81, units=1234, uph=21.54, seen_s_ago=125),
        AT_US,
        STATIONS,
    )
    lines = text_of(tile, 30)
    assert "Ana Silva" in lines[0]
    assert "W1" in lines[0]
    assert "WORKING" in lines[1]
    assert "S1 Assembly 1" in lines[1]
    assert "81%" in lines[2]
    assert "1,234 units" in lines[3]
    assert "21.5 uph" in lines[3]
    assert "▅" * 12 in lines[4]
    assert "2m ago" in lines[5]
    assert "conf 0.90" in lines[5]


def test_unobserved_worker_shows_its_last_station_and_dashes() -> None:
    tile = WorkerTile.from_metrics(
        worker("W4", "Dana", state="unobserved", station="S4", utilization=None, uph=None),
        AT_US,
        STATIONS,
    )
    lines = text_of(tile, 36)
    assert "UNOBSERVED" in lines[1]
    assert "last S4 Inspection" in lines[1]
    assert "—" in lines[2]
    assert "— uph" in lines[3]


def test_selected_tile_is_drawn_heavy_so_the_cursor_shows_without_colour() -> None:
    tile = WorkerTile.from_metrics(worker("W1", "Ana"), AT_US, STATIONS)
    assert text_of(tile, 26, selected=True)[0].startswith("┏━")
    assert text_of(tile, 26, selected=False)[0].startswith("╭─")


def test_utilization_is_rounded_so_tiny_changes_leave_the_tile_equal() -> None:
    first = WorkerTile.from_metrics(worker("W1", "Ana", utilization=0.7213), AT_US, STATIONS)
    second = WorkerTile.from_metrics(worker("W1", "Ana", utilization=0.7248), AT_US, STATIONS)
    third = WorkerTile.from_metrics(worker("W1", "Ana", utilization=0.7351), AT_US, STATIONS)
    assert first == second
    assert first != third


def test_matches_every_word_in_id_name_station_or_state() -> None:
    tile = WorkerTile.from_metrics(worker("W12", "Ana Silva", state="idle"), AT_US, STATIONS)
    assert tile.matches(("ana",))
    assert tile.matches(("w12",))
    assert tile.matches(("assembly", "idle"))
    assert not tile.matches(("ana", "working"))
    assert tile.matches(())


def test_matches_an_accented_name_without_the_accent() -> None:
    tile = WorkerTile.from_metrics(worker("W7", "José Núñez"), AT_US, STATIONS)
    assert tile.matches(("jose",))
    assert tile.matches(("núñez",))


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(min_size=1, max_size=40),
    worker_id=st.text(min_size=1, max_size=64),
    station=st.one_of(st.none(), st.text(min_size=1, max_size=64)),
    width=st.integers(min_value=14, max_value=60),
    units=st.integers(min_value=0, max_value=10**9),
    uph=st.one_of(st.none(), st.floats(min_value=0, max_value=1e7)),
    state=st.sampled_from(WORKER_STATES),
    selected=st.booleans(),
)
def test_every_strip_is_exactly_the_tile_width(
    name: str,
    worker_id: str,
    station: str | None,
    width: int,
    units: int,
    uph: float | None,
    state: str,
    selected: bool,
) -> None:
    metrics = worker(worker_id, name, station=station, units=units, uph=uph, state=state)  # type: ignore[arg-type]
    strips = WorkerTile.from_metrics(metrics, AT_US, STATIONS).render(
        width, PALETTE, selected=selected
    )
    assert len(strips) == TILE_HEIGHT
    assert [strip.cell_length for strip in strips] == [width] * TILE_HEIGHT


def test_minimum_width_keeps_the_text_readable() -> None:
    tile = WorkerTile.from_metrics(
        worker("W100", "Maximiliano Fernández-Oliveira", units=12345, uph=123.4),
        AT_US,
        STATIONS,
    )
    lines = text_of(tile, MIN_TILE_WIDTH)
    assert "W100" in lines[0]
    assert "Maximil" in lines[0]
    assert "12,345 units" in lines[3]
    assert "123 uph" in lines[3]


def test_every_cell_carries_the_tile_background() -> None:
    """No segment may fall back to the terminal's default background (it shows in light mode)."""
    background = Style(bgcolor="#202020")
    palette = TilePalette(
        base=background,
        border=background,
        border_selected=background,
        title=background,
        label=background,
        value=background,
        bar_filled=background,
        bar_empty=background,
        spark=background,
        states={state: Style(bgcolor="green") for state in WORKER_STATES},
    )
    for metrics in (
        worker("W1", "Ana"),
        worker("W2", "Bo", state="unobserved", station=None, uph=None, utilization=None),
    ):
        tile = WorkerTile.from_metrics(metrics, AT_US, STATIONS)
        for width in (14, 26, 40):
            for strip in tile.render(width, palette, selected=False):
                assert all(
                    segment.style is not None and segment.style.bgcolor is not None
                    for segment in strip
                )


def test_an_unnamed_worker_shows_its_id_once() -> None:
    tile = WorkerTile.from_metrics(worker("W17", "W17"), AT_US, STATIONS)
    top = text_of(tile, 26)[0]
    assert top.count("W17") == 1
    assert len(top) == 26


def test_workers_sort_by_name_with_numbers_in_order() -> None:
    from factory_tui.view_models import natural_key

    names = ["W10", "W2", "W100", "W1", "ana 10", "Ana 2", "Bo"]
    assert sorted(names, key=natural_key) == ["Ana 2", "ana 10", "Bo", "W1", "W2", "W10", "W100"]


def test_a_redrawn_tile_takes_its_unchanged_lines_from_the_previous_one() -> None:
    before = WorkerTile.from_metrics(
        worker("W1", "Ana Silva", utilization=0.81, units=10, uph=21.54, seen_s_ago=125),
        AT_US,
        STATIONS,
    )
    after = WorkerTile.from_metrics(
        worker("W1", "Ana Silva", utilization=0.81, units=11, uph=21.54, seen_s_ago=125),
        AT_US,
        STATIONS,
    )
    old = before.render(30, PALETTE, selected=False)
    new = after.render(30, PALETTE, selected=False, previous=(before, old))
    # Only the units line was drawn again; the others are the same strips.
    assert [strip is was for strip, was in zip(new, old, strict=True)] == [
        True,
        True,
        True,
        False,
        True,
        True,
    ]
    assert "11 units" in new[3].text
    assert new == after.render(30, PALETTE, selected=False)  # as if drawn from scratch
