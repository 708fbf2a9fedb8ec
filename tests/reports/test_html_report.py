"""`report --html`: one self-contained page holding the same numbers as `report --format json`.

The page is parsed with lxml and every figure's `data-value` is compared with the JSON report of
the same shift; the text people read is checked where it is plain (units, ids, names).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.models import to_utc_us
from factory_tui.storage import SqliteStore
from tests.tui.floor import at, fill

runner = CliRunner()
SHIFT = ("--shift", "A", "--date", "2025-03-04", "--at", "2025-03-05T09:00Z")
"""Shift A of the fixture day (06:00-14:00 UTC), reported after it ended: up to 14:00."""


@pytest.fixture
def floor(tmp_path: Path) -> Path:
    """The fixture morning, with alerts: two raised in the shift, one the night before."""
    path = tmp_path / "factory.db"
    fill(str(path))
    with SqliteStore.open(path) as store:
        store.sync_alerts(
            [("camera_dark", "W9", "night camera", to_utc_us(at(-2)))], to_utc_us(at(-1))
        )
        store.sync_alerts([], to_utc_us(at(-1)))
        store.sync_alerts(
            [
                ("camera_dark", "W4", "no event for 16 min", to_utc_us(at(9, 50))),
                ("idle_too_long", "W2", "idle since 09:00", to_utc_us(at(9, 15))),
            ],
            to_utc_us(at(10)),
        )
        store.sync_alerts(
            [("idle_too_long", "W2", "idle since 09:00", to_utc_us(at(9, 15)))],
            to_utc_us(at(10, 20)),
        )
    return path


def invoke(*args: str) -> str:
    result = runner.invoke(app, ["report", *args])
    assert result.exit_code == 0, result.stderr or result.stdout
    return result.stdout


def values(row: Any) -> dict[str, Any]:
    """A row's cells that carry figures: field -> the JSON value."""
    return {
        cell.get("data-field"): json.loads(cell.get("data-value"))
        for cell in row.xpath(".//*[@data-field][@data-value]")
    }


@pytest.fixture
def pages(floor: Path, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """(the parsed HTML report, the JSON report with models) of shift A."""
    target = tmp_path / "shift-a.html"
    out = invoke("--db", str(floor), *SHIFT, "--html", str(target))
    assert out.strip() == f"wrote {target} (Shift A, 2025-03-04)"
    data = json.loads(
        invoke("--db", str(floor), *SHIFT, "--format", "json", "--by", "model_version")
    )
    return lxml.html.fromstring(target.read_bytes()), data


def test_the_window_is_the_whole_shift_once_it_has_ended(pages: tuple[Any, dict[str, Any]]) -> None:
    page, data = pages
    assert data["window"] == {
        "from": "2025-03-04T06:00:00Z",
        "to": "2025-03-04T14:00:00Z",
        "at": "2025-03-04T14:00:00Z",
        "label": "A",
    }
    (meta,) = page.xpath('//p[@data-field="window"]')
    assert int(meta.get("data-from")) == to_utc_us(at(6))
    assert int(meta.get("data-to")) == int(meta.get("data-at")) == to_utc_us(at(14))
    assert page.findtext(".//title") == "factory-tui shift report: Shift A, 2025-03-04"


def test_every_figure_matches_the_json_report(pages: tuple[Any, dict[str, Any]]) -> None:
    page, data = pages
    factory = {key: value for key, value in data["factory"].items() if key != "workers_by_state"}
    for state, count in data["factory"]["workers_by_state"].items():
        factory[f"workers_by_state.{state}"] = count
    assert values(page.get_element_by_id("factory")) == factory

    rows = page.xpath('//section[@id="workers"]//tr[@data-worker-id]')
    assert [values(row) for row in rows] == data["workers"]
    assert [row.xpath("string(td[9])") for row in rows] == [
        f"{worker['units']:,}" for worker in data["workers"]
    ]
    stations = page.xpath('//section[@id="stations"]//tr[@data-station-id]')
    assert [values(row) for row in stations] == data["workstations"]
    models = page.xpath('//section[@id="models"]//tr[@data-model]')
    assert [values(row) for row in models] == data["models"]


def test_each_worker_has_a_timeline_and_an_hourly_chart_of_its_units(
    pages: tuple[Any, dict[str, Any]],
) -> None:
    page, data = pages
    rows = page.xpath('//section[@id="timelines"]//tr[@data-worker-id]')
    assert [row.get("data-worker-id") for row in rows] == [w["worker_id"] for w in data["workers"]]
    for row, worker in zip(rows, data["workers"], strict=True):
        timeline, chart = row.xpath(".//svg")
        bars = chart.xpath(".//rect[@data-units]")
        assert len(bars) == 8  # one per hour of the 8-hour shift
        assert sum(int(bar.get("data-units")) for bar in bars) == worker["units"]
        working = timeline.xpath('.//rect[@fill="#2e7d32"]')
        assert bool(working) == (worker["active_s"] > 0)


def test_alerts_raised_in_the_shift_are_listed_oldest_first(
    pages: tuple[Any, dict[str, Any]],
) -> None:
    page, _ = pages
    rows = page.xpath('//section[@id="alerts"]//tr[@data-alert-id]')
    listed = [(row.xpath('string(td[@data-field="subject"])'), values(row)) for row in rows]
    assert listed == [
        ("W2", {"started_us": to_utc_us(at(9, 15)), "cleared_us": None}),
        ("W4", {"started_us": to_utc_us(at(9, 50)), "cleared_us": to_utc_us(at(10, 20))}),
    ]


def test_an_empty_shift_says_so_plainly(
    floor: Path, tmp_path: Path, pages: tuple[Any, dict[str, Any]]
) -> None:
    """Shift A of the next day holds no event: one line says so and no empty chart is drawn
    (a page of blank bars read like an idle floor); the roster is still listed. A shift with
    events has no such line."""
    target = tmp_path / "empty.html"
    next_day = ("--shift", "A", "--date", "2025-03-05", "--at", "2025-03-06T09:00Z")
    invoke("--db", str(floor), *next_day, "--html", str(target))
    page = lxml.html.fromstring(target.read_bytes())
    (notice,) = page.xpath('//p[@data-field="no_events"]')
    assert notice.text_content().startswith("No events in this shift")
    timelines = page.get_element_by_id("timelines")
    assert not timelines.xpath(".//svg")
    assert "No events in this shift" in timelines.text_content()
    assert len(page.xpath('//section[@id="workers"]//tr[@data-worker-id]')) == 6
    shift_a, _ = pages
    assert not shift_a.xpath('//p[@data-field="no_events"]')


def axis_labels(floor: Path, target: Path, *window: str) -> list[str]:
    """The labels under the first worker's timeline in the report of `window`."""
    invoke("--db", str(floor), *window, "--html", str(target))
    page = lxml.html.fromstring(target.read_bytes())
    timeline = page.xpath('//section[@id="timelines"]//svg[@aria-label="timeline"]')[0]
    return [text.text for text in timeline.xpath(".//text")]


def test_the_time_axis_is_thinned_to_fit(floor: Path, tmp_path: Path) -> None:
    """An 8-hour shift is labelled every hour; 24 hours every 2 hours (hourly labels ran into
    each other); a week once a day, by date."""
    target = tmp_path / "axis.html"
    assert axis_labels(floor, target, *SHIFT) == [f"{hour:02d}:00" for hour in range(6, 15)]
    day = ("--from", "2025-03-04T00:00Z", "--to", "2025-03-05T00:00Z", "--at", "2025-03-05T00:00Z")
    every_2h = [f"{hour:02d}:00" for hour in range(0, 24, 2)]
    assert axis_labels(floor, target, *day) == [*every_2h, "00:00"]
    week = ("--from", "2025-03-01T00:00Z", "--to", "2025-03-08T00:00Z", "--at", "2025-03-08T00:00Z")
    assert axis_labels(floor, target, *week) == [f"03-{day:02d}" for day in range(1, 9)]


def test_a_dash_writes_the_page_to_stdout(floor: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    invoke("--db", str(floor), *SHIFT, "--html", str(target))
    printed = invoke("--db", str(floor), *SHIFT, "--html", "-")
    assert not Path("-").exists()
    # The same page but for when it was written (the two runs may fall in different minutes).
    written = re.compile(r"; written [^<]*")
    assert written.sub("", printed) == written.sub("", target.read_text())
    assert printed.startswith("<!DOCTYPE html>")


def test_the_page_loads_nothing_from_outside(floor: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    invoke("--db", str(floor), *SHIFT, "--html", str(target))
    page = lxml.html.fromstring(target.read_bytes())
    assert not page.xpath("//script | //link | //img | //iframe | //object")
    assert not [
        element
        for element in page.iter()
        if any(element.get(attr) for attr in ("src", "href", "srcset"))
    ]
    assert "url(" not in target.read_text()
    assert "@page { size: A4 landscape" in target.read_text()


def test_previous_is_the_last_shift_that_ended(floor: Path, tmp_path: Path) -> None:
    target = tmp_path / "previous.html"
    out = invoke(
        "--db",
        str(floor),
        "--shift",
        "previous",
        "--at",
        "2025-03-04T15:00Z",
        "--html",
        str(target),
    )
    assert "(Shift A, 2025-03-04)" in out
    data = json.loads(
        invoke(
            "--db",
            str(floor),
            "--shift",
            "previous",
            "--at",
            "2025-03-04T15:00Z",
            "--format",
            "json",
        )
    )
    assert data["window"]["from"] == "2025-03-04T06:00:00Z"
    assert data["window"]["to"] == data["window"]["at"] == "2025-03-04T14:00:00Z"


def test_a_running_shift_is_reported_so_far(floor: Path) -> None:
    data = json.loads(
        invoke("--db", str(floor), "--shift", "A", "--at", "2025-03-04T10:30Z", "--format", "json")
    )
    assert (data["window"]["to"], data["window"]["at"]) == ("2025-03-04T10:30:00Z",) * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shift", "Z"), "no shift named 'Z' (configured: A, B, C)"),
        (("--shift", "A", "--date", "2025-13-01"), "--date: '2025-13-01' is not a date"),
        (("--date", "2025-03-04"), "--date goes with --shift NAME"),
        (("--shift", "A", "--from", "2025-03-04"), "--shift picks the window"),
        (
            ("--shift", "B", "--date", "2025-03-04", "--at", "2025-03-04T10:00Z"),
            "shift B of 2025-03-04 14:00 has not started yet",
        ),
    ],
)
def test_shift_mistakes_are_one_sentence(floor: Path, args: tuple[str, ...], message: str) -> None:
    result = runner.invoke(app, ["report", "--db", str(floor), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
