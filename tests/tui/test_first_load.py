"""The console's first load reads only the window's history, yet carries each worker's last
state, station and sighting in from before it (factory_tui.history)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from factory_tui.engine import Engine
from factory_tui.engine.snapshot import Window
from factory_tui.storage import SqliteStore
from factory_tui.warm_start import history_floor, load_history
from tests.tui.conftest import ConsoleFactory
from tests.tui.floor import AT, AT_US, fill, floor_settings, line


async def test_a_worker_last_seen_days_ago_keeps_its_station_and_last_seen(
    tmp_path: Path, console: ConsoleFactory
) -> None:
    db = tmp_path / "old.db"
    long_ago = AT - timedelta(days=2)
    fill(
        str(db),
        [
            line(long_ago, "W4", "S3", "working"),
            line(long_ago + timedelta(minutes=1), "W4", "S3", "product_count", count=2),
            line(AT - timedelta(minutes=5), "W1", "S1", "working"),
        ],
    )
    app = console(db=db)
    async with app.run_test(size=(120, 40)):
        snapshot = await app.tick_now()
        assert snapshot is not None
        old = snapshot.worker("W4")
        assert old is not None
        assert old.station_id == "S3"
        assert old.last_seen_us == AT_US - int(timedelta(days=2, minutes=-1).total_seconds() * 1e6)
        assert old.state == "unobserved"
        assert old.units == 0  # outside the shift


def test_load_history_equals_an_engine_fed_everything(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    lines = [
        line(AT - timedelta(hours=h, minutes=m), worker, station, kind)
        for h in range(0, 30, 3)
        for m, worker, station, kind in ((0, "W1", "S1", "working"), (7, "W2", "S2", "idle"))
    ]
    fill(str(db), lines)
    settings = floor_settings(str(db))
    roster = (
        {w.id: w.name for w in settings.roster_workers()},
        {s.id: s.name for s in settings.roster_workstations()},
    )
    with SqliteStore.open(db, read_only=True) as store:
        everything = Engine(900, *roster)
        everything.apply(store.iter_since(0))
        windowed = Engine(900, *roster)
        window = Window(AT_US - 4 * 3600 * 1_000_000, AT_US + 4 * 3600 * 1_000_000, "A")
        load_history(windowed, store, history_floor(window, AT_US, 900))
        loaded, full = windowed.snapshot(window, AT_US), everything.snapshot(window, AT_US)
        assert loaded.total_events < full.total_events  # it did read less...
        assert (loaded.workers, loaded.stations, loaded.factory) == (  # ...with the same answer
            full.workers,
            full.stations,
            full.factory,
        )
