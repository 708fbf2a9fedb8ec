"""Ids read in the order people count (W7, W8, W10, W13; not W10, W13, W7, W8) wherever the
console lists them: who is at a station, a station's workers, the alerts."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Static

from factory_tui.console.screens.alerts_screen import AlertsScreen
from factory_tui.console.screens.station_detail_screen import StationDetailScreen
from factory_tui.console.screens.stations_screen import StationsScreen
from factory_tui.view_models import natural_key
from tests.tui.conftest import ConsoleFactory
from tests.tui.floor import AT, at, fill, floor_lines, spell
from tests.tui.test_drilldown import SIZE, drawn, open_view, row_text, settle, table_keys


def test_natural_key_counts_numbers_by_value() -> None:
    ids = ["W10", "w2", "S1", "W1", "line 10", "line 9", "W100"]
    assert sorted(ids, key=natural_key) == ["line 9", "line 10", "S1", "W1", "w2", "W10", "W100"]


def numbered_floor(tmp_path: Path) -> Path:
    """The fixture morning, plus W7 and W13 working at S1 since 08:00 (there now), and W8, W10
    and W11 working at S6 from 08:00 to 09:00 (their cameras dark since, all at once)."""
    path = tmp_path / "numbered.db"
    extra = [
        *spell("W13", "S1", "working", at(8), AT),
        *spell("W7", "S1", "working", at(8), AT),
    ]
    for worker in ("W11", "W10", "W8"):
        extra += spell(worker, "S6", "working", at(8), at(9))
    fill(str(path), floor_lines() + extra)
    return path


async def test_stations_and_their_workers_list_ids_as_people_count(
    console: ConsoleFactory, tmp_path: Path
) -> None:
    app = console(db=numbered_floor(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        stations = await open_view(app, pilot, "2", StationsScreen)
        table = stations.query_one(DataTable)
        assert row_text(table, "S1")[-1] == "Ana Silva, W7, W13"
        detail = await open_view(app, pilot, "enter", StationDetailScreen)
        assert detail.station_id == "S1"
        heading = drawn(detail.query_one("#station-heading", Static))
        assert "present now: Ana Silva, W7, W13" in heading
        workers = detail.query_one(DataTable)
        # W7 and W13 worked there exactly as long: the tie reads W7 first.
        keys = table_keys(workers)
        assert keys.index("W7") + 1 == keys.index("W13"), keys


async def test_alerts_raised_together_list_their_subjects_as_people_count(
    console: ConsoleFactory, tmp_path: Path
) -> None:
    app = console(db=numbered_floor(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "4", AlertsScreen)
        active = screen.query_one("#alerts-active", DataTable)
        subjects = [row_text(active, key)[1] for key in table_keys(active)]
        dark = [subject for subject in subjects if subject in ("W8", "W10", "W11")]
        assert dark == ["W8", "W10", "W11"], subjects
