"""A long read in two processes (`warm_start.fold_in_two`, what `report` does over a long
history): the same engine as one process reading it all, on both backends; a failure in the
second process is one clear error, and it leaves no process behind."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory_tui import warm_start
from factory_tui.cli import app
from factory_tui.config import Settings
from factory_tui.engine import Window
from factory_tui.storage import Store, StoreError, open_store
from factory_tui.warm_start import load_engine
from tests.conftest import StoreOpener
from tests.test_storage_contract import BASE, S, line

SETTINGS = Settings.model_validate({"metrics": {"max_gap_s": 600}})
WINDOWS = ((0, 4), (1, 2.5), (3, 4))
"""(start, at) in hours after BASE."""


def fill(store: Store, count: int = 800) -> None:
    rng = random.Random(11)
    events = []
    for _ in range(count):
        worker = f"W{rng.randrange(6)}"
        kind = rng.choice(["working", "working", "idle", "absent", "product_count"])
        extra = {"count": rng.randrange(1, 4)} if kind == "product_count" else {}
        events.append(line(rng.randrange(4 * 3600), worker, f"S{rng.randrange(4)}", kind, **extra))
    store.insert_batch(events)


def snapshots(store: Store, reopen: Callable[[], Store] | None) -> list[object]:
    taken = []
    for start_h, at_h in WINDOWS:
        window = Window(BASE + start_h * 3600 * S, BASE + int(at_h * 3600) * S)
        engine = load_engine(
            store, SETTINGS, window, window.to_us, until_us=window.to_us, reopen=reopen
        )
        snapshot = engine.snapshot(window, window.to_us)
        taken.append((snapshot.workers, snapshot.stations, snapshot.factory))
    return taken


@pytest.fixture
def split_always(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every read with a second connection is split; returns a list that counts the splits."""
    splits: list[int] = []
    fold_in_two = warm_start.fold_in_two

    def counted(*args: object) -> int:
        splits.append(1)
        return fold_in_two(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(warm_start, "SPLIT_READ_ROWS", 1)
    monkeypatch.setattr(warm_start, "_spare_core", lambda: True)  # however busy the machine
    monkeypatch.setattr(warm_start, "fold_in_two", counted)
    return splits


def test_two_processes_read_what_one_does(
    store_opener: StoreOpener, split_always: list[int]
) -> None:
    with store_opener() as store:
        fill(store)
        alone = snapshots(store, None)
        assert not split_always
        split = snapshots(store, lambda: store_opener(read_only=True))
    assert len(split_always) == len(WINDOWS)
    assert split == alone


def test_a_failure_in_the_second_process_is_one_error(
    store_opener: StoreOpener, split_always: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Store:
        raise StoreError("cannot open the database again")

    children: list[int] = []
    fork = os.fork

    def recorded() -> int:
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded)
    with store_opener() as store:
        fill(store, 50)
        with pytest.raises(StoreError, match="later events failed: StoreError: cannot open"):
            snapshots(store, broken)
    assert split_always
    assert children
    for pid in children:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped already


def test_a_second_process_that_dies_is_one_error(
    store_opener: StoreOpener, split_always: list[int]
) -> None:
    def dies() -> Store:
        os._exit(3)

    with store_opener() as store:
        fill(store, 50)
        with pytest.raises(StoreError, match="ended without an answer"):
            snapshots(store, dies)


def test_no_split_for_a_short_read_or_without_a_spare_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(str(tmp_path / "factory.db")) as store:
        fill(store, 100)
        span = store.time_span()
        assert span is not None
        monkeypatch.setattr(warm_start, "_spare_core", lambda: True)
        assert not warm_start._worth_splitting(store, span, *span)  # 100 events
        monkeypatch.setattr(warm_start, "SPLIT_READ_ROWS", 100)
        assert warm_start._worth_splitting(store, span, *span)
        middle = (span[0] + span[1]) // 2
        assert not warm_start._worth_splitting(store, span, middle, span[1])  # about 50
        monkeypatch.setattr(warm_start, "_spare_core", lambda: False)
        assert not warm_start._worth_splitting(store, span, *span)


def test_report_over_a_split_read_prints_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split_always: list[int]
) -> None:
    db = tmp_path / "factory.db"
    with open_store(str(db)) as store:
        fill(store)
    window = [
        "--from",
        "2026-03-02T10:00Z",
        "--to",
        "2026-03-02T14:00Z",
        "--at",
        "2026-03-02T14:00Z",
    ]
    command = ["report", "--db", str(db), "--format", "json", *window]
    runner = CliRunner()
    split = runner.invoke(app, command)
    assert split.exit_code == 0, split.output
    assert split_always
    monkeypatch.setattr(warm_start, "SPLIT_READ_ROWS", 10**9)
    alone = runner.invoke(app, command)
    assert json.loads(split.stdout) == json.loads(alone.stdout)
    assert len(json.loads(alone.stdout)["workers"]) == 6
