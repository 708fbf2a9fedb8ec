"""`factory-tui export events`: stored events to stdout, as CSV or as replayable JSON lines.

The JSON-lines form is the wire format itself (one event object per line, UTC timestamps with
`Z`), so `factory-tui export events --format jsonl | factory-tui send -` replays a history into
another store, where every event gets the same dedup hash it had here.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Final, TextIO

import typer

from factory_tui.commands.common import (
    ConfigOption,
    DbOption,
    SiteOption,
    for_site,
    open_store,
    settings_from,
)
from factory_tui.commands.report import parse_moment
from factory_tui.models import EventRecord, iso_utc, to_utc_us

CSV_COLUMNS: Final = (
    "id",
    "timestamp",
    "worker_id",
    "workstation_id",
    "event_type",
    "confidence",
    "count",
    "model_version",
    "camera_id",
    "received",
    "event_hash",
)
_FLUSH_ROWS: Final = 5_000


class ExportFormat(StrEnum):
    """Output formats of `export events`."""

    csv = "csv"
    jsonl = "jsonl"


export_app = typer.Typer(
    name="export",
    help="Write stored data to stdout.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def write_jsonl(records: Iterable[EventRecord], out: TextIO) -> int:
    """Each event as one wire-format JSON line; returns how many were written."""
    written = 0
    lines: list[str] = []
    for record in records:
        lines.append(json.dumps(record.to_wire(), separators=(",", ":"), ensure_ascii=False))
        if len(lines) == _FLUSH_ROWS:
            out.write("\n".join(lines) + "\n")
            written += len(lines)
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")
        written += len(lines)
    return written


def write_csv(records: Iterable[EventRecord], out: TextIO) -> int:
    """Each event as a CSV row under a header (empty cells for missing optional fields)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    written = 0
    for record in records:
        writer.writerow(
            (
                record.id,
                iso_utc(record.ts_us),
                record.worker_id,
                record.workstation_id,
                record.event_type,
                record.confidence,
                record.count,
                record.model_version or "",
                record.camera_id or "",
                iso_utc(record.received_us),
                record.event_hash,
            )
        )
        written += 1
    return written


@export_app.command("events")
def events(
    db: DbOption = None,
    config: ConfigOption = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Only events at or after this ISO 8601 time (naive: local)."),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Only events before this ISO 8601 time.")
    ] = None,
    output: Annotated[
        ExportFormat,
        typer.Option("--format", help="csv for spreadsheets, jsonl for `factory-tui send`."),
    ] = ExportFormat.csv,
    site: SiteOption = None,
) -> None:
    """Stored events of one site in time order (ties by arrival), to stdout."""
    settings = for_site(settings_from(config, **{"store.path": db}), site)
    zone = settings.tz
    from_us = None if start is None else to_utc_us(parse_moment(start, zone, "--from"))
    to_us = None if end is None else to_utc_us(parse_moment(end, zone, "--to"))
    with open_store(settings, read_only=True) as store:
        records = store.iter_range(from_us, to_us)
        try:
            if output is ExportFormat.jsonl:
                write_jsonl(records, sys.stdout)
            else:
                write_csv(records, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, and keep Python's own flush at
            # exit from raising again on the closed pipe.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def register(app: typer.Typer) -> None:
    """Add the `export` command group to the CLI."""
    app.add_typer(export_app)
