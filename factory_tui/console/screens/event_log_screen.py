"""The event log (`3`): a live tail of accepted events and of rejected lines, filterable.

The place to debug a misbehaving camera: accepted events as stored (with the camera and model
that sent them and when they arrived), and the lines the listener refused with the error it
answered and the connection they came from. `/` filters both lists (every word must appear in
a row); `esc` clears the filter, or goes back when there is none. Long errors, lines and audit
details are cut to the width (no sideways scroll at 80 columns); with the rejected or the audit
list focused, the highlighted row's whole text shows under it.

Rejected lines never reach the database: only the process that owns the port knows them. A
read-only viewer says so rather than showing an empty list. Below them, under its own heading,
the audit trail as stored: connections opened and closed, refused peers, TLS and auth failures.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar, Final

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Input, Static

from factory_tui.console.screens.filtered_view import FilteredView
from factory_tui.models import EventRecord
from factory_tui.records import AuditRecord, IngestStats, Rejection
from factory_tui.view_models import LOG_AUDIT, LOG_EVENTS, ViewData, ViewNeeds
from factory_tui.widgets.formatting import MISSING, matches, rate
from factory_tui.widgets.headings import wrap_parts
from factory_tui.widgets.newest_first_table import NewestFirstTable
from factory_tui.widgets.table_rows import Row, cell, number

ACCEPTED_COLUMNS: Final = (
    "Received",
    "Timestamp",
    "Worker",
    "Station",
    "Event",
    "Count",
    "Conf",
    "Model",
    "Camera",
)
REJECTED_COLUMNS: Final = ("Received", "Connection", "Error", "Line")
AUDIT_COLUMNS: Final = ("At", "What", "Peer", "Detail")
DETAIL_LINES: Final = 4
"""Lines of a rejected line's detail at most (a line can be kilobytes long)."""
ALARMING: Final = frozenset({"auth_failed", "tls_failed", "peer_refused"})
"""Audit entries shown in bold: someone was kept out."""


class EventLogScreen(FilteredView):
    """Accepted events and rejected lines, newest first, with a filter over both."""

    VIEW = "events"
    FILTER_TABLE = "#log-accepted"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("slash", "filter", "Filter")]
    HELP_KEYS: ClassVar = (
        ("/", "Filter both lists: every word must appear (worker, station, camera, peer…)"),
        ("esc", "Clear the filter, or back to the screen below"),
        ("tab", "Move between the accepted, rejected and audit lists"),
        ("home", "Back to the newest row: the list follows new events again"),
    )
    HELP_NOTES: ClassVar = (
        f"Accepted: the last {LOG_EVENTS} stored events. Received is when the listener took "
        "the line; Timestamp is the camera's own time (a gap between them is a late event).",
        "Rejected: the last lines the listener refused, with its error and the connection.",
        f"Audit trail: the last {LOG_AUDIT} connections opened and closed, refused peers, TLS "
        "and auth failures, as stored in the audit table.",
        "Long errors, lines and details are cut to the width: tab to the rejected or audit "
        "list and the highlighted row's whole text shows under it.",
        "Each list follows new rows while its cursor is on the first row. Moved down, it holds "
        "still and its title counts the newer rows; Home (or clearing the filter) goes live.",
    )

    DEFAULT_CSS = """
    EventLogScreen #log-heading {
        height: auto;
        padding: 0 1;
    }
    EventLogScreen #log-filter {
        display: none;
        padding: 0 1;  /* a side margin would narrow the tables while the filter is open */
    }
    EventLogScreen .section-title {
        padding: 0 1;
    }
    EventLogScreen #log-accepted {
        height: 2fr;
    }
    EventLogScreen #log-rejected {
        height: 1fr;
    }
    EventLogScreen .row-detail {
        display: none;
        height: auto;
        padding: 0 1;
    }
    EventLogScreen #log-audit {
        height: 1fr;
    }
    """

    def __init__(self, *, zone: tzinfo) -> None:
        super().__init__(zone=zone)
        self.shown_accepted: tuple[int, ...] = ()
        """Ids of the accepted events listed, newest first."""
        self.shown_rejected: tuple[Rejection, ...] = ()
        """Rejected lines listed, newest first."""
        self.shown_audit: tuple[int, ...] = ()
        """Ids of the audit entries listed, newest first."""
        self._audit_rows: tuple[AuditRecord, ...] = ()

    @property
    def needs(self) -> ViewNeeds:
        """The latest accepted events."""
        return ViewNeeds(event_log=True)

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        yield Static("Event log: loading…", id="log-heading")
        yield Input(
            placeholder="filter: worker, station, event, model, camera, peer or error",
            id="log-filter",
            compact=True,
        )
        yield Static("Accepted events, newest first", id="accepted-title", classes="section-title")
        yield NewestFirstTable(id="log-accepted", cursor_type="row", zebra_stripes=True)
        yield Static("Rejected lines, newest first", id="rejected-title", classes="section-title")
        yield NewestFirstTable(id="log-rejected", cursor_type="row", zebra_stripes=True)
        yield Static(id="rejected-detail", classes="row-detail")
        yield Static("Audit trail, newest first", id="audit-title", classes="section-title")
        yield NewestFirstTable(id="log-audit", cursor_type="row", zebra_stripes=True)
        yield Static(id="audit-detail", classes="row-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log-filter", Input).cursor_blink = self.app.animation_level != "none"
        accepted = self.query_one("#log-accepted", DataTable)
        for name in ACCEPTED_COLUMNS:
            accepted.add_column(name, key=name)
        rejected = self.query_one("#log-rejected", DataTable)
        for name in REJECTED_COLUMNS:
            rejected.add_column(name, key=name)
        audit = self.query_one("#log-audit", DataTable)
        for name in AUDIT_COLUMNS:
            audit.add_column(name, key=name)
        accepted.focus()

    def render_data(self, data: ViewData) -> None:
        if data.events is None:
            # Computed for the view below (the tiles, or while paused): no event list, and no
            # listener figures either, which would read as a viewer's. The next tick is ours.
            return
        words = self.filter_text.lower().split()
        self._heading(data)
        events = data.events
        accepted_rows: list[Row] = []
        ids: list[int] = []
        for event in events:
            fields = self._event_fields(event)
            if matches(words, *fields):
                ids.append(event.id)
                accepted_rows.append((str(event.id), self._event_cells(fields)))
        self.shown_accepted = tuple(ids)
        accepted = self.query_one("#log-accepted", NewestFirstTable)
        # At 80 columns the camera, model and event words give way (no sideways scroll).
        accepted.fill(accepted_rows, elastic=(8, 7, 4))
        count = f"{len(ids)} of {len(events)} match" if words else f"last {len(events)}"
        self.query_one("#accepted-title", Static).update(
            f"Accepted events, newest first ({count}){accepted.newer_note()}"
        )

        rejected_title = "Rejected lines, newest first"
        rejected_rows: list[Row] = []
        shown: list[Rejection] = []
        if data.ingest is None:
            rejected_title += (
                " — this console is a read-only viewer: rejected lines never reach the "
                "database, only the factory-tui that owns the port sees them"
            )
        else:
            recent = tuple(reversed(data.ingest.recent_rejections))
            for number_, rejection in enumerate(recent):
                received = self.clock(rejection.time_us)
                if matches(words, received, rejection.peer, rejection.error, rejection.line):
                    shown.append(rejection)
                    # Rejections have no id: newest first, keyed by their count since start.
                    key = str(data.ingest.rejected - number_)
                    rejected_rows.append(
                        (
                            key,
                            [
                                cell(received),
                                cell(rejection.peer),
                                cell(rejection.error, "bold"),
                                cell(rejection.line, "dim"),
                            ],
                        )
                    )
            matched = f"{len(shown)} of {len(recent)} match" if words else f"last {len(recent)}"
            rejected_title += f" ({matched}; {data.ingest.rejected:,} since start)"
        self.shown_rejected = tuple(shown)
        rejected_table = self.query_one("#log-rejected", NewestFirstTable)
        # The line, then the error, give way at 80 columns; the detail under the list has both.
        rejected_table.fill(rejected_rows, elastic=(3, 2, 1))
        self.query_one("#rejected-title", Static).update(
            rejected_title + rejected_table.newer_note()
        )
        self._audit_trail(data.audit, words)
        self._show_detail()

    @on(DataTable.RowHighlighted)
    @on(events.DescendantFocus)
    @on(events.DescendantBlur)
    def _show_detail(self) -> None:
        """Under the rejected or audit list, while it has focus: the highlighted row's whole
        text, wrapped (its cells are cut to the width), up to `DETAIL_LINES`."""
        for table_id, detail_id in (
            ("#log-rejected", "#rejected-detail"),
            ("#log-audit", "#audit-detail"),
        ):
            table = self.query_one(table_id, DataTable)
            detail = self.query_one(detail_id, Static)
            text = self._detail_text(table_id, table.cursor_row) if table.has_focus else None
            detail.display = text is not None
            if text is not None:
                detail.update(self._cut(text))

    def _detail_text(self, table_id: str, row: int) -> Text | None:
        if table_id == "#log-rejected" and 0 <= row < len(self.shown_rejected):
            rejection = self.shown_rejected[row]
            return Text.assemble((rejection.error, "bold"), "\n", (rejection.line, "dim"))
        if table_id == "#log-audit" and 0 <= row < len(self._audit_rows):
            entry = self._audit_rows[row]
            return Text.assemble(
                (entry.kind.replace("_", " "), "bold"), f" {entry.peer}: {entry.detail}"
            )
        return None

    def _cut(self, text: Text) -> Text:
        """`text` wrapped to the screen's width, its last line ending in … when cut."""
        width = max(10, self.size.width - 2)
        lines = list(text.wrap(self.app.console, width))
        if len(lines) > DETAIL_LINES:
            lines = lines[:DETAIL_LINES]
            lines[-1].truncate(width - 1)
            lines[-1].append("…")
        return Text("\n").join(lines)

    def filter_changed(self) -> None:
        """A new filter (or none) is a new list: show its newest rows, live."""
        for table in self.query(NewestFirstTable):
            table.go_live()

    @on(NewestFirstTable.WentLive)
    def _went_live(self) -> None:
        if self.data is not None:
            self.render_data(self.data)  # the titles lose their "newer" count at once

    def _audit_trail(self, entries: tuple[AuditRecord, ...], words: list[str]) -> None:
        rows: list[Row] = []
        ids: list[int] = []
        listed: list[AuditRecord] = []
        for entry in entries:
            at = self.clock(entry.at_us)
            what = entry.kind.replace("_", " ")
            if matches(words, at, what, entry.peer, entry.detail):
                ids.append(entry.id)
                listed.append(entry)
                style = "bold" if entry.kind in ALARMING else ""
                rows.append(
                    (
                        str(entry.id),
                        [cell(at, "dim"), cell(what, style), cell(entry.peer), cell(entry.detail)],
                    )
                )
        self.shown_audit = tuple(ids)
        self._audit_rows = tuple(listed)
        table = self.query_one("#log-audit", NewestFirstTable)
        table.fill(rows, elastic=(3, 2))
        count = f"{len(ids)} of {len(entries)} match" if words else f"last {len(entries)}"
        # What the trail holds is in the help (?): the title must fit one line at 80 columns.
        self.query_one("#audit-title", Static).update(
            f"Audit trail, newest first ({count}){table.newer_note()}"
        )

    def _heading(self, data: ViewData) -> None:
        heading = Text(no_wrap=True)
        heading.append("Event log", "bold")
        stats: IngestStats | None = data.ingest
        if stats is None:
            heading.append(" · read-only viewer: accepted events as stored in the database", "dim")
        else:
            heading.append(
                f" · {rate(stats.rate_per_s)} ev/s · since start: accepted {stats.accepted:,} · "
                f"duplicates {stats.duplicates:,} · rejected {stats.rejected:,} · "
                # Connections open now (IngestStats.connections), not a count since start.
                f"{stats.connections} connected now",
                "dim",
            )
            if stats.one_way:
                # Log shippers that read no replies: their lines are stored, replies dropped.
                heading.append(
                    f" · {stats.one_way} one-way ({stats.replies_dropped:,} replies unread)", "dim"
                )
        if self.filter_text:
            heading.append(f" · filter “{self.filter_text}”", "bold")
        # Wrapped between its parts at 80 columns, never inside one.
        self.query_one("#log-heading", Static).update(wrap_parts(heading, self.size.width - 2))

    def _event_fields(self, event: EventRecord) -> tuple[str, ...]:
        return (
            self.clock(event.received_us),
            self.clock(event.ts_us),
            event.worker_id,
            event.workstation_id,
            event.event_type,
            str(event.count) if event.event_type == "product_count" else "",
            f"{event.confidence:.2f}",
            event.model_version or MISSING,
            event.camera_id or MISSING,
        )

    @staticmethod
    def _event_cells(fields: tuple[str, ...]) -> list[Text]:
        received, stamp, worker, station, kind, count, confidence, model, camera = fields
        return [
            cell(received, "dim"),
            cell(stamp),
            cell(worker, "bold"),
            cell(station),
            cell(kind),
            number(count),
            number(confidence),
            cell(model),
            cell(camera),
        ]
