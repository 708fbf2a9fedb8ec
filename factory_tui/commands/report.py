"""`factory-tui report`: the metrics of one window, as a table, JSON or CSV.

The database is opened read-only, so a report can run beside a live console. Only the events
that can change the answer are read (see `warm_start.load_engine`), so a shift's report stays
fast however long the history; the numbers are exactly those of an engine fed it all.

`--by model_version` adds a section per AI model (`Store.model_summary`): the events of the
report's window, the same ones that give each worker's events and units; and the models whose
retraining is suggested at the report's instant (`reports.retrain`), with the evidence.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from factory_tui.commands.common import (
    ConfigOption,
    DbOption,
    SiteOption,
    all_sites,
    fail,
    for_site,
    open_store,
    settings_from,
    settings_origin,
)
from factory_tui.config import Settings
from factory_tui.engine import Engine, Snapshot, Window
from factory_tui.models import from_utc_us, iso_utc, now_us, to_utc_us
from factory_tui.records import ModelSummary
from factory_tui.reports.shift import (
    ShiftNotFound,
    gather,
    named_shift,
    natural_models,
    previous_shift,
    report_instant,
)
from factory_tui.reports.text import duration, number, percent
from factory_tui.storage import Store
from factory_tui.warm_start import load_engine, shift_window

if TYPE_CHECKING:
    from factory_tui.engine.alerts import AlertCondition


class ReportFormat(StrEnum):
    """Output formats of `report`."""

    table = "table"
    json = "json"
    csv = "csv"


class ReportBy(StrEnum):
    """Breakdowns `report --by` adds to the report."""

    model_version = "model_version"


def parse_moment(text: str, zone: tzinfo, option: str) -> datetime:
    """An ISO 8601 date or date-time; a naive one is read in `zone`. Fails with one sentence."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(
            f"{option}: {text!r} is not an ISO 8601 date-time "
            "(for example 2024-05-01T06:00, 2024-05-01T06:00:00Z or 2024-05-01)"
        )
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def resolve_window(
    settings: Settings, at: datetime, start: datetime | None, end: datetime | None
) -> Window:
    """The window asked for: --from/--to, else the shift running at `at` (else that day) so far.

    The default ends at `at`, as the console's does: a shift's rates (station utilization,
    throughput) are then over the time that has passed, not the whole shift.
    """
    if start is None and end is None:
        return shift_window(settings, to_utc_us(at)).so_far
    if start is None:
        fail("--to needs --from (or give neither for the shift running at --at)")
    stop = at if end is None else end
    if stop < start:
        fail(f"the window ends ({stop.isoformat()}) before it starts ({start.isoformat()})")
    return Window(to_utc_us(start), to_utc_us(stop), "custom")


# --- output -----------------------------------------------------------------------------------


def report_data(
    snapshot: Snapshot,
    models: list[ModelSummary] | None = None,
    retrain: list[AlertCondition] | None = None,
) -> dict[str, Any]:
    """The JSON document of a snapshot: docs/metrics.md field names, seconds, fractions, nulls.

    With `models` (from `--by model_version`) it has a "models" list too, one object per
    model_version in counting order of version (events that named no model, `null`, first); with
    `retrain`, a "retrain_suggested" list (model_version, details, evidence).
    """
    window = snapshot.window
    factory = snapshot.factory
    data: dict[str, Any] = {
        "window": {
            "from": iso_utc(window.from_us),
            "to": iso_utc(window.to_us),
            "at": iso_utc(snapshot.at_us),
            "label": window.label,
        },
        "workers": [
            {
                "worker_id": w.worker_id,
                "name": w.name,
                "active_s": w.active_s,
                "idle_s": w.idle_s,
                "absent_s": w.absent_s,
                "utilization": w.utilization,
                "units": w.units,
                "uph": w.uph,
                "state": w.state,
                "station_id": w.station_id,
                "last_seen": None if w.last_seen_us is None else iso_utc(w.last_seen_us),
                "mean_confidence": w.mean_confidence,
                "events": w.events,
            }
            for w in snapshot.workers
        ],
        "workstations": [
            {
                "workstation_id": s.workstation_id,
                "name": s.name,
                "occupancy_s": s.occupancy_s,
                "utilization": s.utilization,
                "units": s.units,
                "throughput_uph": s.throughput_uph,
                "workers_present": list(s.workers_present),
            }
            for s in snapshot.stations
        ],
        "factory": {
            "active_s": factory.active_s,
            "idle_s": factory.idle_s,
            "absent_s": factory.absent_s,
            "units": factory.units,
            "avg_utilization": factory.avg_utilization,
            "avg_uph": factory.avg_uph,
            "throughput_uph": factory.throughput_uph,
            "workers_by_state": {
                "working": factory.working,
                "idle": factory.idle,
                "absent": factory.absent,
                "unobserved": factory.unobserved,
            },
        },
    }
    if models is not None:
        data["models"] = [
            {
                "model_version": m.model_version,
                "events": m.events,
                "mean_confidence": m.mean_confidence,
                "min_confidence": m.min_confidence,
                "units": m.units,
            }
            for m in models
        ]
    if retrain is not None:
        from factory_tui.reports.retrain import retrain_data

        data["retrain_suggested"] = retrain_data(retrain)
    return data


CSV_COLUMNS: Final = (
    "level",
    "id",
    "name",
    "state",
    "station_id",
    "active_s",
    "idle_s",
    "absent_s",
    "occupancy_s",
    "utilization",
    "units",
    "uph",
    "throughput_uph",
    "avg_utilization",
    "avg_uph",
    "mean_confidence",
    "events",
    "last_seen",
    "workers_present",
)


MODEL_CSV_COLUMNS: Final = (*CSV_COLUMNS, "min_confidence")
"""The columns with `--by model_version`: a last one is added, so the others keep their place."""


def report_csv(snapshot: Snapshot, models: list[ModelSummary] | None = None) -> str:
    """One CSV table: a row per worker, per workstation and one for the factory (`level`).

    With `models`, a row per model_version follows (`level` "model", `id` the version, empty
    for events that named no model; `events`, `mean_confidence`, `units` and the added last
    column `min_confidence`). A cell is empty where the metric is null or does not apply.
    """
    data = report_data(snapshot, models)
    buffer = io.StringIO()
    columns = CSV_COLUMNS if models is None else MODEL_CSV_COLUMNS
    writer = csv.DictWriter(buffer, columns, restval="", lineterminator="\n")
    writer.writeheader()
    for worker in data["workers"]:
        worker_id = worker.pop("worker_id")
        writer.writerow(_csv_cells({**worker, "level": "worker", "id": worker_id}))
    for station in data["workstations"]:
        station_id = station.pop("workstation_id")
        present = " ".join(station.pop("workers_present"))
        writer.writerow(
            _csv_cells(
                {**station, "level": "workstation", "id": station_id, "workers_present": present}
            )
        )
    factory = data["factory"]
    factory.pop("workers_by_state")
    writer.writerow(_csv_cells({**factory, "level": "factory", "id": "", "name": ""}))
    for model in data.get("models", []):
        model_version = model.pop("model_version")
        writer.writerow(_csv_cells({**model, "level": "model", "id": model_version}))
    return buffer.getvalue()


def _csv_cells(row: dict[str, Any]) -> dict[str, Any]:
    return {key: ("" if value is None else value) for key, value in row.items()}


_NARROW_COLUMNS: Final = 110
"""Below this terminal width the worker table leaves out Absent, Conf and Events and shows
minutes rather than seconds, so it fits 80 columns."""


NO_MODEL: Final = "(none)"
"""How the table names the events that gave no model_version."""


def print_table(snapshot: Snapshot, zone: tzinfo, models: list[ModelSummary] | None = None) -> None:
    """Rich tables for people: workers, workstations, factory, and with `models` one row per
    model_version. Fits an 80-column terminal."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # Piped output is not squeezed to rich's 80-column default, unless COLUMNS says so.
    fits = sys.stdout.isatty() or "COLUMNS" in os.environ
    console = Console(width=None if fits else 160, soft_wrap=False)
    wide = console.width >= _NARROW_COLUMNS
    window = snapshot.window
    start = _local(window.from_us, zone)
    # A day's label is its date, which the window's start already says.
    label = f"{window.label} " if window.label and not start.startswith(window.label) else ""
    console.print(
        f"Window {label}{start} → {_local(window.to_us, zone)}, "
        f"at {_local(snapshot.at_us, zone)} ({zone})",
        highlight=False,
    )
    today = _local(snapshot.at_us, zone)[:10]

    def seen(us: int | None) -> str:
        # The date only when it is not the day of `at`: it is usually today.
        if us is None:
            return "—"
        text = _local(us, zone)
        if text[:10] != today:
            return text if wide else text[5:16]
        return text[11:] if wide else text[11:16]

    def span(seconds: float) -> str:
        return duration(seconds) if wide else duration(seconds)[:-3]

    workers = Table(
        title="Workers",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=wide,
        collapse_padding=not wide,
    )
    columns: list[tuple[str, bool]] = [
        ("Worker", False),
        ("Name", False),
        ("State", False),
        ("Station", False),
        ("Active", True),
        ("Idle", True),
        *([("Absent", True)] if wide else []),
        ("Util", True),
        ("Units", True),
        ("UPH", True),
        *([("Conf", True), ("Events", True)] if wide else []),
        ("Last seen" if wide else "Seen", True),
    ]
    for heading, numeric in columns:
        workers.add_column(
            heading, justify="right" if numeric else "left", no_wrap=heading != "Name"
        )
    for w in snapshot.workers:
        cells = {
            "Worker": w.worker_id,
            "Name": w.name,
            "State": w.state,
            "Station": w.station_id or "—",
            "Active": span(w.active_s),
            "Idle": span(w.idle_s),
            "Absent": duration(w.absent_s),
            "Util": percent(w.utilization),
            "Units": str(w.units),
            "UPH": number(w.uph),
            "Conf": number(w.mean_confidence, 2),
            "Events": str(w.events),
            "Last seen": seen(w.last_seen_us),
            "Seen": seen(w.last_seen_us),
        }
        workers.add_row(*(cells[heading] for heading, _ in columns))
    console.print(workers)
    stations = Table(title="Workstations", title_justify="left", box=box.SIMPLE_HEAD)
    stations.add_column("Station", no_wrap=True)
    stations.add_column("Name")
    for heading in ("Occupied", "Util", "Units", "Units/h"):
        stations.add_column(heading, justify="right", no_wrap=True)
    stations.add_column("Present")
    for s in snapshot.stations:
        stations.add_row(
            s.workstation_id,
            s.name,
            duration(s.occupancy_s),
            percent(s.utilization),
            str(s.units),
            number(s.throughput_uph),
            ", ".join(s.workers_present) or "—",
        )
    console.print(stations)
    f = snapshot.factory
    console.print(
        f"Factory: active {duration(f.active_s)}, idle {duration(f.idle_s)}, absent "
        f"{duration(f.absent_s)}, units {f.units}, avg utilization {percent(f.avg_utilization)},"
        f" avg UPH {number(f.avg_uph)}, throughput {number(f.throughput_uph)} units/h",
        highlight=False,
    )
    console.print(
        f"Now: {f.working} working, {f.idle} idle, {f.absent} absent, {f.unobserved} unobserved",
        highlight=False,
    )
    if models is None:
        return
    total = sum(m.events for m in models)
    if not total:
        console.print("Models: no events in the window", highlight=False)
        return
    table = Table(title="Models", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Model")
    for heading in ("Events", "Share", "Mean conf", "Lowest conf", "Units"):
        table.add_column(heading, justify="right", no_wrap=True)
    for m in models:
        table.add_row(
            NO_MODEL if m.model_version is None else m.model_version,
            str(m.events),
            percent(m.events / total),
            number(m.mean_confidence, 2),
            number(m.min_confidence, 2),
            str(m.units),
        )
    console.print(table)


def print_retrain(retrain: list[AlertCondition]) -> None:
    """The models whose retraining is suggested, one line each (with `--by model_version`)."""
    if not retrain:
        typer.echo("Retrain suggested: none")
        return
    typer.echo("Retrain suggested:")
    for item in retrain:
        typer.echo(f"  {item.details}")


def _local(us: int, zone: tzinfo) -> str:
    return from_utc_us(us).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


# --- the command ------------------------------------------------------------------------------


def report(
    db: DbOption = None,
    config: ConfigOption = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Window start, ISO 8601 (naive: configured timezone). Default: the shift "
            "running at --at, up to --at.",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Window end (exclusive), ISO 8601. Default: --at with --from."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="The moment treated as now, ISO 8601. Default: the clock."),
    ] = None,
    shift: Annotated[
        str | None,
        typer.Option(
            "--shift",
            help="A configured shift by name (with --date: the one starting that day; without: "
            "the latest started), or `previous`: the last shift that has ended. Up to its end, "
            "or up to --at while it runs.",
        ),
    ] = None,
    day: Annotated[
        str | None,
        typer.Option("--date", help="With --shift NAME: the local date the shift starts on."),
    ] = None,
    output: Annotated[
        ReportFormat, typer.Option("--format", help="table for people, json or csv for tools.")
    ] = ReportFormat.table,
    by: Annotated[
        ReportBy | None,
        typer.Option(
            "--by",
            help="Add a breakdown. model_version: events, mean and lowest confidence (over "
            "events of every type) and units per AI model, in the same window, and the models "
            "whose retraining is suggested at --at (table and json).",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write the shift report as one self-contained HTML page to this file, or to "
            "stdout with - (every figure, timelines, units per hour, alerts, models; prints on "
            "A4 landscape).",
            dir_okay=False,
        ),
    ] = None,
    site: SiteOption = None,
    every_site: Annotated[
        bool,
        typer.Option(
            "--all-sites",
            help="One report per site of the database (each in its own time zone and shifts) "
            "and a fleet summary.",
        ),
    ] = False,
) -> None:
    """Worker, workstation and factory metrics for a window (default: the current shift).

    Events (units, event counts, confidence) are those with from <= timestamp < to and
    timestamp <= at, for workers and for --by model_version alike.
    """
    loaded = settings_from(config, **{"store.path": db})
    if every_site:
        if site is not None or html is not None or by is not None:
            fail("--all-sites reports every site: leave out --site, --html and --by")
        reports = [_site_report(item, at, start, end, shift, day) for item in all_sites(loaded)]
        _print_sites(reports, output)
        return
    settings = for_site(loaded, site, other_choice=", or report them all with --all-sites")
    window, at_us = _report_window(settings, at, start, end, shift, day)
    if html is not None:
        write_html_report(settings, window, at_us, html)
        return
    models: list[ModelSummary] | None = None
    retrain: list[AlertCondition] | None = None
    with open_store(settings, read_only=True) as store:
        engine = _report_engine(store, settings, window, at_us)
        if by is ReportBy.model_version:
            models = natural_models(store.model_summary(window.from_us, window.instants_end(at_us)))
            if output is not ReportFormat.csv:
                # Loaded here: the alert machinery is a third of a plain report's start-up.
                from factory_tui.console.alert_keeper import drift_settings
                from factory_tui.reports.retrain import retrain_suggestions

                retrain = retrain_suggestions(store, drift_settings(settings.alerts), at_us)
    snapshot = engine.snapshot(window, at_us, once=True)
    if output is ReportFormat.json:
        data = report_data(snapshot, models, retrain)
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif output is ReportFormat.csv:
        typer.echo(report_csv(snapshot, models), nl=False)
    else:
        print_table(snapshot, settings.tz, models)
        if retrain is not None:
            print_retrain(retrain)


def _report_window(
    settings: Settings,
    at: str | None,
    start: str | None,
    end: str | None,
    shift: str | None,
    day: str | None,
) -> tuple[Window, int]:
    """The window asked for and the instant treated as now, in the site's zone and shifts."""
    zone = settings.tz
    moment = parse_moment(at, zone, "--at") if at is not None else datetime.now(UTC)
    at_us = to_utc_us(moment)
    if shift is not None:
        if start is not None or end is not None:
            fail("--shift picks the window: leave out --from and --to")
        window = _shift_window(settings, shift, day, at_us)
        at_us = report_instant(window, at_us)
    else:
        if day is not None:
            fail("--date goes with --shift NAME (for example --shift B --date 2026-03-02)")
        window = resolve_window(
            settings,
            moment,
            None if start is None else parse_moment(start, zone, "--from"),
            None if end is None else parse_moment(end, zone, "--to"),
        )
    return window, at_us


def _site_report(
    settings: Settings,
    at: str | None,
    start: str | None,
    end: str | None,
    shift: str | None,
    day: str | None,
) -> tuple[Settings, Snapshot]:
    """One site's Snapshot for `report --all-sites`."""
    window, at_us = _report_window(settings, at, start, end, shift, day)
    with open_store(settings, read_only=True) as store:
        engine = _report_engine(store, settings, window, at_us)
    return settings, engine.snapshot(window, at_us, once=True)


def _report_engine(store: Store, settings: Settings, window: Window, at_us: int) -> Engine:
    """The engine of a report of `window` at `at_us`: every event up to `at_us` that can
    change it, every station ever seen, a long read in two processes (a second connection)."""
    return load_engine(
        store,
        settings,
        window,
        at_us,
        until_us=at_us,
        every_station=True,
        reopen=lambda: open_store(settings, read_only=True),
    )


def fleet_rows(reports: list[tuple[Settings, Snapshot]]) -> list[dict[str, Any]]:
    """The fleet summary: one row per site (its factory figures over its own window)."""
    rows = []
    for settings, snapshot in reports:
        factory = snapshot.factory
        rows.append(
            {
                "site_id": settings.site.id,
                "name": settings.site.label,
                "timezone": settings.timezone,
                "window": snapshot.window.label,
                "workers_by_state": {
                    "working": factory.working,
                    "idle": factory.idle,
                    "absent": factory.absent,
                    "unobserved": factory.unobserved,
                },
                "units": factory.units,
                "throughput_uph": factory.throughput_uph,
                "avg_utilization": factory.avg_utilization,
            }
        )
    return rows


def _print_sites(reports: list[tuple[Settings, Snapshot]], output: ReportFormat) -> None:
    """`--all-sites` output: every site's report, then the fleet summary."""
    if output is ReportFormat.json:
        data = {
            "sites": {settings.site.id: report_data(snap) for settings, snap in reports},
            "fleet": fleet_rows(reports),
        }
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if output is ReportFormat.csv:
        for index, (settings, snapshot) in enumerate(reports):
            lines = report_csv(snapshot).splitlines()
            header, body = lines[0], lines[1:]
            if index == 0:
                typer.echo(f"site,{header}")
            for line in body:
                typer.echo(f"{settings.site.id},{line}")
        return
    from rich.console import Console
    from rich.table import Table

    for settings, snapshot in reports:
        typer.echo(f"\nSite {settings.site.id} ({settings.site.label}, {settings.timezone})")
        print_table(snapshot, settings.tz)
    table = Table(title="Fleet", title_justify="left")
    for heading in (
        "Site",
        "Name",
        "Window",
        "Work",
        "Idle",
        "Abs",
        "Unobs",
        "Units",
        "Units/h",
        "Avg util",
    ):
        table.add_column(
            heading, justify="left" if heading in ("Site", "Name", "Window") else "right"
        )
    for row in fleet_rows(reports):
        states = row["workers_by_state"]
        rate_text = "—" if row["throughput_uph"] is None else f"{row['throughput_uph']:.1f}"
        util = row["avg_utilization"]
        table.add_row(
            row["site_id"],
            row["name"],
            row["window"],
            str(states["working"]),
            str(states["idle"]),
            str(states["absent"]),
            str(states["unobserved"]),
            f"{row['units']:,}",
            rate_text,
            "—" if util is None else f"{util:.0%}",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _shift_window(settings: Settings, name: str, day: str | None, at_us: int) -> Window:
    """The window of `--shift` (and `--date`), failing with one sentence."""
    try:
        if name.lower() == "previous":
            if day is not None:
                fail("--shift previous is the last shift that ended: leave out --date")
            return previous_shift(settings, at_us)
        date_ = None
        if day is not None:
            try:
                date_ = date.fromisoformat(day.strip())
            except ValueError:
                fail(f"--date: {day!r} is not a date like 2026-03-02")
        return named_shift(settings, name, date_, at_us)
    except ShiftNotFound as error:
        fail(f"{settings_origin(settings)}: {error}")


def write_html_report(settings: Settings, window: Window, at_us: int, path: Path) -> None:
    """Write the HTML shift report of `window` at `at_us` to `path` and say where."""
    with open_store(settings, read_only=True) as store:
        shift_report = gather(store, settings, window, at_us, generated_us=now_us())
    from factory_tui.reports.html import render

    page = render(shift_report)
    if str(path) == "-":
        typer.echo(page, nl=False)  # stdout, as `send -` reads stdin: for a pipe or a mail
        return
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}")
    typer.echo(f"wrote {path} ({shift_report.title})")


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command()(report)
