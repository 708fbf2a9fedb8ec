"""A shift report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Every figure cell carries its exact value as JSON in `data-value` beside the text people read,
so a tool (and the test that holds the page to `report --format json`) can read the numbers
back without parsing formatted text. Prints on A4 landscape. No I/O here: `render` takes the
frozen `ShiftReport` that `reports.shift.gather` read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from html import escape
from typing import Final

from factory_tui.engine.alerts import CAMERA_DARK, CONFIDENCE_DRIFT, IDLE_TOO_LONG, RATE_DRIFT
from factory_tui.engine.snapshot import US_PER_S, Segment, Window, WorkerMetrics
from factory_tui.models import iso_utc
from factory_tui.records import AlertRecord
from factory_tui.reports.shift import HOUR_US, ShiftReport, WorkerCharts
from factory_tui.reports.text import MISSING, duration, number, percent

NO_MODEL: Final = "(none)"
STATE_COLOURS: Final = {
    "working": "#2e7d32",
    "idle": "#f9a825",
    "absent": "#c62828",
    "unobserved": "#e0e0e0",
}
ALERT_WORDS: Final = {
    CAMERA_DARK: "Camera dark",
    IDLE_TOO_LONG: "Idle too long",
    CONFIDENCE_DRIFT: "Confidence drift",
    RATE_DRIFT: "Rate drift",
}
TIMELINE_WIDTH: Final = 1000
"""The timeline's drawing width in SVG units (it scales to the column)."""
LABEL_STEPS_H: Final = (1, 2, 3, 4, 6, 8, 12, 24, 48, 72, 168)
"""Hours between two labels of the timeline's axis: the first step whose labels fit."""
CHAR_WIDTH: Final = 6.2
"""Width of a digit at the charts' font size (10 SVG units), with a little to spare."""
LABEL_SPACE: Final = 14.0
"""SVG units kept clear between two axis labels."""
TICK_MIN_GAP: Final = 6.0
"""Hourly ticks closer than this (a window of many days) are drawn at the labels only."""

CSS: Final = """
@page { size: A4 landscape; margin: 10mm; }
* { box-sizing: border-box; }
body { font: 10pt/1.35 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       color: #1b1b1b; margin: 16px; }
h1 { font-size: 16pt; margin: 0 0 2px; }
h2 { font-size: 12pt; margin: 18px 0 6px; border-bottom: 1px solid #bbb; }
.meta { color: #555; margin: 0 0 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; }
.card { border: 1px solid #ccc; border-radius: 4px; padding: 4px 10px; min-width: 110px; }
.card .label { color: #555; font-size: 8.5pt; }
.card .figure { font-size: 14pt; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 2px 6px; border-bottom: 1px solid #e3e3e3; text-align: left;
         vertical-align: middle; }
th { background: #f1f1f1; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
.state { font-weight: 600; font-size: 8.5pt; }
.legend { display: flex; gap: 14px; color: #333; font-size: 8.5pt; margin: 4px 0; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px;
          vertical-align: -1px; border: 1px solid #999; }
.charts td.who { width: 16%; }
.charts td.bar { width: 56%; }
.charts td.uph { width: 28%; }
svg { display: block; width: 100%; height: auto; }
.none { color: #777; font-style: italic; }
.notice { font-weight: 600; border-left: 4px solid #888; padding: 2px 8px; }
.defs { color: #555; font-size: 8.5pt; }
@media print {
  body { margin: 0; font-size: 8.5pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  section { break-inside: auto; }
}
"""


def render(report: ShiftReport) -> str:
    """The whole page."""
    snapshot = report.snapshot
    window = snapshot.window
    zone = report.zone
    title = f"factory-tui shift report: {report.title}"
    meta = (
        f"{_local(window.from_us, zone)} → {_local(window.to_us, zone)} ({zone}), "
        f"figures as of {_local(snapshot.at_us, zone)}"
    )
    if report.generated_us is not None:
        meta += f"; written {_local(report.generated_us, zone)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta" data-field="window" data-from="{window.from_us}" '
        f'data-to="{window.to_us}" data-at="{snapshot.at_us}">{escape(meta)}</p>',
        _empty_notice(report),
        _factory(report),
        _workers(snapshot.workers, zone, snapshot.at_us),
        _charts(report),
        _stations(report),
        _alerts(report.alerts, zone, snapshot.at_us),
        _models(report),
        _definitions(report.max_gap_s),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# --- sections -------------------------------------------------------------------------------


NO_EVENTS: Final = "No events in this shift"


def _has_events(report: ShiftReport) -> bool:
    """Some event is timestamped in the window (up to the report's instant)."""
    return any(worker.events for worker in report.snapshot.workers)


def _empty_notice(report: ShiftReport) -> str:
    """One plain line at the top when the window holds no event, so a page of zeros is not
    read as an idle floor."""
    if _has_events(report):
        return ""
    return (
        f'<p class="notice" data-field="no_events">{NO_EVENTS}: no event is timestamped in '
        "this window, so the worker and station figures are all zero.</p>"
    )


def _factory(report: ShiftReport) -> str:
    factory = report.snapshot.factory
    cards = [
        ("units", "Units", factory.units, f"{factory.units:,}"),
        (
            "throughput_uph",
            "Units / hour",
            factory.throughput_uph,
            number(factory.throughput_uph),
        ),
        (
            "avg_utilization",
            "Avg utilization",
            factory.avg_utilization,
            percent(factory.avg_utilization),
        ),
        ("avg_uph", "Avg UPH (per worker)", factory.avg_uph, number(factory.avg_uph)),
        ("active_s", "Working time", factory.active_s, duration(factory.active_s)),
        ("idle_s", "Idle time", factory.idle_s, duration(factory.idle_s)),
        ("absent_s", "Absent time", factory.absent_s, duration(factory.absent_s)),
    ]
    states = [
        ("working", factory.working),
        ("idle", factory.idle),
        ("absent", factory.absent),
        ("unobserved", factory.unobserved),
    ]
    html = ['<section id="factory"><h2>Factory</h2><div class="cards">']
    for field, label, value, text in cards:
        html.append(
            f'<div class="card" data-field="{field}" data-value="{_json(value)}">'
            f'<div class="label">{escape(label)}</div><div class="figure">{escape(text)}</div>'
            "</div>"
        )
    html.append("</div>")
    at_end = ", ".join(
        f'<span data-field="workers_by_state.{state}" data-value="{count}">{count} {state}</span>'
        for state, count in states
    )
    html.append(f'<p class="meta">Workers at the end: {at_end}.</p></section>')
    return "".join(html)


WORKER_COLUMNS: Final = (
    ("Worker", ""),
    ("Name", ""),
    ("State", ""),
    ("Station", ""),
    ("Working", "n"),
    ("Idle", "n"),
    ("Absent", "n"),
    ("Utilization", "n"),
    ("Units", "n"),
    ("UPH", "n"),
    ("Confidence", "n"),
    ("Events", "n"),
    ("Last seen", "n"),
)


def _workers(workers: Sequence[WorkerMetrics], zone: tzinfo, at_us: int) -> str:
    rows = []
    for w in workers:
        last = None if w.last_seen_us is None else iso_utc(w.last_seen_us)
        rows.append(
            f'<tr data-worker-id="{escape(w.worker_id)}">'
            + _cell("worker_id", w.worker_id, w.worker_id, numeric=False)
            + _cell("name", w.name, w.name, numeric=False)
            + f'<td data-field="state" data-value="{escape(_json(w.state))}">'
            f'<span class="state" style="color:{_text_colour(w.state)}">'
            f"{w.state.upper()}</span></td>"
            + _cell("station_id", w.station_id, w.station_id or MISSING, numeric=False)
            + _cell("active_s", w.active_s, duration(w.active_s))
            + _cell("idle_s", w.idle_s, duration(w.idle_s))
            + _cell("absent_s", w.absent_s, duration(w.absent_s))
            + _cell("utilization", w.utilization, percent(w.utilization))
            + _cell("units", w.units, f"{w.units:,}")
            + _cell("uph", w.uph, number(w.uph))
            + _cell("mean_confidence", w.mean_confidence, number(w.mean_confidence, 2))
            + _cell("events", w.events, f"{w.events:,}")
            + _cell("last_seen", last, _seen(w.last_seen_us, zone, at_us))
            + "</tr>"
        )
    return _table("workers", "Workers", WORKER_COLUMNS, rows)


def _charts(report: ShiftReport) -> str:
    snapshot = report.snapshot
    if not _has_events(report) and not any(_draws(chart) for chart in report.charts):
        return (
            '<section id="timelines"><h2>Timelines and units per hour</h2>'
            f'<p class="none">{NO_EVENTS}: no timeline or units to draw.</p></section>'
        )
    window = snapshot.window
    end_us = min(window.to_us, snapshot.at_us)
    names = {w.worker_id: w.name for w in snapshot.workers}
    legend = "".join(
        f'<span><span class="swatch" style="background:{colour}"></span>{state}</span>'
        for state, colour in STATE_COLOURS.items()
    )
    rows = [
        f'<tr data-worker-id="{escape(chart.worker_id)}">'
        f'<td class="who"><b>{escape(names[chart.worker_id])}</b> '
        f"{escape(chart.worker_id)}</td>"
        f'<td class="bar">{_timeline_svg(chart.segments, window, end_us, report.zone)}</td>'
        f'<td class="uph">{_output_svg(chart, window, end_us)}</td></tr>'
        for chart in report.charts
    ]
    return (
        '<section id="timelines"><h2>Timelines and units per hour</h2>'
        f'<div class="legend">{legend}<span>bars: units per hour of shift time</span></div>'
        '<table class="charts"><thead><tr><th>Worker</th><th>Timeline</th>'
        "<th>Units per hour</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>"
    )


def _draws(chart: WorkerCharts) -> bool:
    """The worker's charts show something: a counted stretch (a state carried into the
    window draws one even without an event in it) or units."""
    return any(chart.hourly_units) or any(s.state != "unobserved" for s in chart.segments)


STATION_COLUMNS: Final = (
    ("Station", ""),
    ("Name", ""),
    ("Occupied", "n"),
    ("Utilization", "n"),
    ("Units", "n"),
    ("Units / hour", "n"),
    ("Present at end", ""),
)


def _stations(report: ShiftReport) -> str:
    rows = [
        f'<tr data-station-id="{escape(s.workstation_id)}">'
        + _cell("workstation_id", s.workstation_id, s.workstation_id, numeric=False)
        + _cell("name", s.name, s.name, numeric=False)
        + _cell("occupancy_s", s.occupancy_s, duration(s.occupancy_s))
        + _cell("utilization", s.utilization, percent(s.utilization))
        + _cell("units", s.units, f"{s.units:,}")
        + _cell("throughput_uph", s.throughput_uph, number(s.throughput_uph))
        + _cell(
            "workers_present",
            list(s.workers_present),
            ", ".join(s.workers_present) or MISSING,
            numeric=False,
        )
        + "</tr>"
        for s in report.snapshot.stations
    ]
    return _table("stations", "Workstations", STATION_COLUMNS, rows)


ALERT_COLUMNS: Final = (
    ("Kind", ""),
    ("Subject", ""),
    ("Raised", "n"),
    ("Cleared", "n"),
    ("Lasted", "n"),
    ("Details", ""),
)


def _alerts(alerts: Sequence[AlertRecord], zone: tzinfo, at_us: int) -> str:
    if not alerts:
        return (
            '<section id="alerts"><h2>Alerts raised in the shift</h2>'
            '<p class="none">No alerts were raised.</p></section>'
        )
    rows = []
    for alert in alerts:
        end = at_us if alert.cleared_us is None else alert.cleared_us
        cleared = "still active" if alert.cleared_us is None else _clock(alert.cleared_us, zone)
        rows.append(
            f'<tr data-alert-id="{alert.id}">'
            f'<td data-field="kind">{escape(ALERT_WORDS.get(alert.kind, alert.kind))}</td>'
            f'<td data-field="subject">{escape(alert.subject)}</td>'
            f'<td class="n" data-field="started_us" data-value="{alert.started_us}">'
            f"{_clock(alert.started_us, zone)}</td>"
            f'<td class="n" data-field="cleared_us" data-value="{_json(alert.cleared_us)}">'
            f"{cleared}</td>"
            f'<td class="n">{duration(max(0, end - alert.started_us) / US_PER_S)}</td>'
            f'<td data-field="details">{escape(alert.details)}</td></tr>'
        )
    return _table("alerts", "Alerts raised in the shift", ALERT_COLUMNS, rows)


MODEL_COLUMNS: Final = (
    ("Model", ""),
    ("Events", "n"),
    ("Share", "n"),
    ("Mean confidence", "n"),
    ("Lowest confidence", "n"),
    ("Units", "n"),
)


def _models(report: ShiftReport) -> str:
    total = sum(m.events for m in report.models)
    if not total:
        return (
            '<section id="models"><h2>Confidence per model</h2>'
            '<p class="none">No events in the window.</p></section>'
        )
    rows = [
        f'<tr data-model="{escape(_json(m.model_version))}">'
        + _cell("model_version", m.model_version, m.model_version or NO_MODEL, numeric=False)
        + _cell("events", m.events, f"{m.events:,}")
        + f'<td class="n">{percent(m.events / total)}</td>'
        + _cell("mean_confidence", m.mean_confidence, number(m.mean_confidence, 3))
        + _cell("min_confidence", m.min_confidence, number(m.min_confidence, 3))
        + _cell("units", m.units, f"{m.units:,}")
        + "</tr>"
        for m in report.models
    ]
    return _table("models", "Confidence per model", MODEL_COLUMNS, rows)


def _definitions(max_gap_s: float) -> str:
    gap = f"{max_gap_s / 60:g} min"
    return (
        '<section id="definitions"><h2>How the figures are counted</h2><p class="defs">'
        "Time is counted from sighting to sighting in the state of the latest state event; no "
        f"gap counts for more than {gap} (the rest is unobserved). Utilization = working / "
        "(working + idle). UPH = units / working hours. A station is occupied while at least "
        "one worker works there; its utilization is occupied time / window length. Averages "
        "leave out workers for whom a figure does not apply.</p></section>"
    )


# --- drawing --------------------------------------------------------------------------------


def _timeline_svg(segments: Iterable[Segment], window: Window, end_us: int, zone: tzinfo) -> str:
    """The worker's states over the window as one bar, with an hour axis below it."""
    span = max(1, window.to_us - window.from_us)

    def x(us: int) -> float:
        return round((us - window.from_us) / span * TIMELINE_WIDTH, 2)

    shapes = [f'<rect x="0" y="0" width="{TIMELINE_WIDTH}" height="16" fill="#fafafa"/>']
    for segment in segments:
        if segment.state == "unobserved":
            continue  # the light background shows through
        where = f" at {segment.station_id}" if segment.station_id else ""
        shapes.append(
            f'<rect x="{x(segment.start_us)}" y="0" '
            f'width="{max(0.3, x(segment.end_us) - x(segment.start_us))}" height="16" '
            f'fill="{STATE_COLOURS[segment.state]}"><title>{segment.state}{escape(where)} '
            f"{_clock(segment.start_us, zone)}–{_clock(segment.end_us, zone)}</title></rect>"
        )
    if end_us < window.to_us:
        shapes.append(f'<line x1="{x(end_us)}" x2="{x(end_us)}" y1="0" y2="16" stroke="#000"/>')
    hour_width = HOUR_US / span * TIMELINE_WIDTH
    step, form = _label_step(hour_width, span)
    for index in range(int(span // HOUR_US) + 1):
        labelled = index % step == 0
        if not labelled and hour_width < TICK_MIN_GAP:
            continue
        position = x(window.from_us + index * HOUR_US)
        shapes.append(f'<line x1="{position}" x2="{position}" y1="16" y2="20" stroke="#888"/>')
        if labelled:
            shapes.append(
                f'<text x="{position}" y="30" font-size="10" fill="#555" '
                f'text-anchor="{_anchor(position)}">'
                f"{_local(window.from_us + index * HOUR_US, zone, form)}</text>"
            )
    return (
        f'<svg viewBox="0 0 {TIMELINE_WIDTH} 32" role="img" '
        f'aria-label="timeline" xmlns="http://www.w3.org/2000/svg">{"".join(shapes)}</svg>'
    )


def _label_step(hour_width: float, span_us: int) -> tuple[int, str]:
    """Hours between two axis labels and their format: the fewest hours for which the labels
    keep clear of each other (every hour on a shift, every 2 h on 24 h); the date joins the
    clock on a window of more than a day, and replaces it once labels are a day apart."""
    for step in LABEL_STEPS_H:
        form = _axis_format(step, span_us)
        # 1.5 widths: the first and last labels are drawn inward (anchored at their end).
        text_width = len(f"{datetime(2000, 1, 1):{form}}") * CHAR_WIDTH
        if step * hour_width >= 1.5 * text_width + LABEL_SPACE:
            return step, form
    return LABEL_STEPS_H[-1], _axis_format(LABEL_STEPS_H[-1], span_us)


def _axis_format(step: int, span_us: int) -> str:
    if step >= 24:
        return "%m-%d"
    return "%m-%d %H:%M" if span_us > 24 * HOUR_US else "%H:%M"


def _output_svg(chart: WorkerCharts, window: Window, end_us: int) -> str:
    """Units per hour of shift time, one bar per hour (the running hour: per hour so far)."""
    width, height = 400, 60
    hours = max(1, -(-(window.to_us - window.from_us) // HOUR_US))
    slot = width / hours
    gap = min(4.0, slot / 4)  # bars of a long window stay wider than the space between them
    rates = []
    for index, units in enumerate(chart.hourly_units):
        start = window.from_us + index * HOUR_US
        covered = (min(start + HOUR_US, end_us, window.to_us) - start) / HOUR_US
        rates.append(units / covered if covered > 0 else 0.0)
    top = max(rates, default=0.0) or 1.0
    shapes = [f'<line x1="0" x2="{width}" y1="{height - 12}" y2="{height - 12}" stroke="#888"/>']
    for index, (units, per_hour) in enumerate(zip(chart.hourly_units, rates, strict=True)):
        bar = (height - 24) * per_hour / top
        left = round(index * slot + gap / 2, 2)
        shapes.append(
            f'<rect data-units="{units}" x="{left}" y="{round(height - 12 - bar, 2)}" '
            f'width="{round(slot - gap, 2)}" height="{round(bar, 2)}" fill="#1565c0">'
            f"<title>hour {index + 1}: {units} units ({per_hour:.1f}/h)</title></rect>"
        )
        label = f"{per_hour:.0f}"
        if units and len(label) * CHAR_WIDTH <= slot:  # else the bar's title still says it
            shapes.append(
                f'<text x="{round(left + (slot - gap) / 2, 2)}" y="{round(height - 14 - bar, 2)}"'
                f' font-size="10" text-anchor="middle" fill="#333">{label}</text>'
            )
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="units per hour" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(shapes)}</svg>'
    )


def _anchor(position: float) -> str:
    if position < 20:
        return "start"
    if position > TIMELINE_WIDTH - 20:
        return "end"
    return "middle"


# --- cells and text -------------------------------------------------------------------------


def _table(
    section: str, heading: str, columns: Sequence[tuple[str, str]], rows: Sequence[str]
) -> str:
    head = "".join(
        f'<th class="{css}">{escape(name)}</th>' if css else f"<th>{escape(name)}</th>"
        for name, css in columns
    )
    body = "".join(rows) or f'<tr><td colspan="{len(columns)}" class="none">none</td></tr>'
    return (
        f'<section id="{section}"><h2>{escape(heading)}</h2><table>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
    )


def _cell(field: str, value: object, text: str, *, numeric: bool = True) -> str:
    css = ' class="n"' if numeric else ""
    return f'<td{css} data-field="{field}" data-value="{escape(_json(value))}">{escape(text)}</td>'


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _text_colour(state: str) -> str:
    return "#555" if state == "unobserved" else STATE_COLOURS[state]


def _local(us: int, zone: tzinfo, form: str = "%Y-%m-%d %H:%M") -> str:
    return datetime.fromtimestamp(us / US_PER_S, zone).strftime(form)


def _clock(us: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(us / US_PER_S, zone).strftime("%H:%M")


def _seen(us: int | None, zone: tzinfo, at_us: int) -> str:
    if us is None:
        return MISSING
    moment = datetime.fromtimestamp(us / US_PER_S, zone)
    today = datetime.fromtimestamp(at_us / US_PER_S, zone).date()
    return f"{moment:%H:%M:%S}" if moment.date() == today else f"{moment:%m-%d %H:%M}"
