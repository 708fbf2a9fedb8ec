"""The HTML shift report in a real browser: it loads nothing from outside, shows no script
errors, and prints to an A4 landscape PDF (headless Chromium, as in tests/web)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from factory_tui.cli import app
from tests.browser import launch, save_doc_image
from tests.tui.floor import fill

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.xdist_group("html_print")  # one browser and floor per run
A4_LANDSCAPE_PT = (842, 595)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    yield from launch()


def test_the_report_prints_to_a4_landscape_without_errors(browser: Browser, tmp_path: Path) -> None:
    db = tmp_path / "factory.db"
    fill(str(db))
    html = tmp_path / "shift-a.html"
    result = CliRunner().invoke(
        app,
        ["report", "--db", str(db), "--shift", "A", "--date", "2025-03-04", "--html", str(html)],
    )
    assert result.exit_code == 0, result.stderr

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    requested: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text))
    page.on("request", lambda request: requested.append(request.url))
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    assert requested == [html.as_uri()]  # no font, script, image or style from anywhere else
    assert page.locator("#workers tr[data-worker-id]").count() == 6
    assert page.locator("#timelines svg").count() == 12  # a timeline and a chart per worker

    shot = tmp_path / "shift-report.png"
    page.screenshot(path=str(shot))
    save_doc_image(shot, "shift-report.png")

    pdf = tmp_path / "shift-a.pdf"
    page.emulate_media(media="print")
    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data)
    assert pages  # every page is A4 landscape, as the report's @page asks
    for width, height in pages:
        assert (round(float(width)), round(float(height))) == A4_LANDSCAPE_PT
    assert problems == []
    page.close()


def test_no_two_time_labels_overlap_on_a_24_hour_report(browser: Browser, tmp_path: Path) -> None:
    """On a 24-hour window the hourly labels under each timeline ran into each other; as
    Chromium lays them out, each ends before the next begins."""
    db = tmp_path / "factory.db"
    fill(str(db))
    html = tmp_path / "day.html"
    day = ["--from", "2025-03-04T00:00Z", "--to", "2025-03-05T00:00Z", "--at", "2025-03-05T00:00Z"]
    result = CliRunner().invoke(app, ["report", "--db", str(db), *day, "--html", str(html)])
    assert result.exit_code == 0, result.stderr
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(html.as_uri())
    spans: list[list[list[float]]] = page.evaluate(
        """() => [...document.querySelectorAll('#timelines svg[aria-label="timeline"]')].map(
            svg => [...svg.querySelectorAll('text')].map(text => {
                const box = text.getBoundingClientRect();
                return [box.left, box.right];
            }))"""
    )
    page.close()
    assert len(spans) == 6
    for labels in spans:
        assert len(labels) >= 12  # every 2 hours at least
        for (_, right), (left, _) in zip(labels, labels[1:], strict=False):
            assert right < left, spans
