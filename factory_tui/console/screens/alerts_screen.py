"""The alerts view (`4`): active alerts, each model's drift figures, and recent alerts.

Alerts are kept in the database's `alerts` table by the console that owns the listener; every
console (viewers too) shows that table. `enter` on an alert about a worker opens the worker;
`r` suggests retraining the model highlighted in the drift table (`retrain_suggested`, handed
to the alert actions like any alert). Alert actions that failed are listed under the tables.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar, Final

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from factory_tui.config import AlertSettings
from factory_tui.console.screens.view_screen import SHIFT_REPORT_KEY, ViewScreen
from factory_tui.engine.alerts import (
    CAMERA_DARK,
    CONFIDENCE_DRIFT,
    IDLE_TOO_LONG,
    RATE_DRIFT,
    RETRAIN_SUGGESTED,
)
from factory_tui.engine.drift import ModelDrift
from factory_tui.engine.snapshot import US_PER_S
from factory_tui.records import AlertRecord
from factory_tui.view_models import ActionFailure, ViewData, ViewNeeds
from factory_tui.widgets.formatting import (
    MISSING,
    confidence,
    minutes_text,
    rate,
    span,
)
from factory_tui.widgets.newest_first_table import NewestFirstTable
from factory_tui.widgets.table_rows import cell, fill_table, number
from factory_tui.widgets.worker_grid import WorkerGrid

KIND_WORDS: Final[dict[str, str]] = {
    CAMERA_DARK: "CAMERA DARK",
    IDLE_TOO_LONG: "IDLE TOO LONG",
    CONFIDENCE_DRIFT: "CONFIDENCE DRIFT",
    RATE_DRIFT: "RATE DRIFT",
    RETRAIN_SUGGESTED: "RETRAIN SUGGESTED",
}
WORKER_KINDS: Final = frozenset({CAMERA_DARK, IDLE_TOO_LONG})
"""Alert kinds whose subject is a worker id."""
ACTIVE_COLUMNS: Final = ("Kind", "Subject", "Since", "For", "Details")
DRIFT_COLUMNS: Final = (
    "Model",
    "Conf base",
    "Conf now",
    "Change",
    "U/h base",
    "U/h now",
    "State",
)
"""Short headings: the table fits 80 columns (the state words give way before anything)."""
HISTORY_COLUMNS: Final = ("Kind", "Subject", "Raised", "Cleared", "Lasted", "Details")


def drift_state(model: ModelDrift) -> str:
    """A model's drift status in words."""
    if model.confidence_drifting and model.rate_drifting:
        return "DRIFTING: confidence and rate"
    if model.confidence_drifting:
        return "DRIFTING: confidence"
    if model.rate_drifting:
        return "DRIFTING: rate"
    if model.baseline_confidence is None:
        return "learning baseline"
    if model.rolling_confidence is None:
        return "too few recent events"
    return "ok"


def thresholds(alerts: AlertSettings, max_gap_s: float) -> str:
    """The alert rules in one line."""
    return (
        f"camera dark: no event for > {minutes_text(max_gap_s)} during a shift · "
        f"idle > {minutes_text(alerts.idle_s)} · confidence drift: "
        f"{minutes_text(alerts.drift_window_s)} mean > {alerts.drift_drop:.2f} below baseline "
        f"for {minutes_text(alerts.drift_sustain_s)} · rate drift: "
        f"{minutes_text(alerts.rate_window_s)} units/h off baseline by > "
        f"{alerts.rate_change:.0%} · baseline: first {minutes_text(alerts.baseline_s)} seen"
    )


def row_key(alert: AlertRecord) -> str:
    """An alert's row: its id in the alerts table; a fleet's alerts, held in memory without
    one (all id 0), by what they are about."""
    return str(alert.id) if alert.id else f"{alert.kind}:{alert.subject}"


class AlertsScreen(ViewScreen):
    """Active alerts, model drift and the recent alert history."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "shift_report", "Report"),
        Binding("r", "suggest_retrain", "Retrain"),
    ]
    VIEW = "alerts"
    HELP_KEYS: ClassVar = (
        ("tab", "Move between the three tables"),
        ("home", "In Recent alerts: back to the newest alert, which new ones then join on top"),
        ("enter", "On a worker's alert: open the worker's detail"),
        ("r", "Suggest retraining the model highlighted in Model drift (again: withdraw it)"),
        ("esc", "Back to the screen below"),
        SHIFT_REPORT_KEY,
    )
    HELP_NOTES: ClassVar = (
        "An alert is raised when its condition starts and cleared when it ends; the console "
        "that owns the listener writes them to the database, viewers read them.",
        "Drift compares each model_version's rolling mean confidence and production rate with "
        "its own baseline (its first baseline period, or one set in the config).",
        "A drift held for [alerts] retrain_after_s raises RETRAIN SUGGESTED with its evidence; "
        "[[alerts.actions]] hand every alert raised or cleared to a command or a webhook.",
    )

    class RetrainRequested(Message):
        """The supervisor asked to retrain a model (or to withdraw that)."""

        def __init__(self, model_version: str) -> None:
            super().__init__()
            self.model_version = model_version

    DEFAULT_CSS = """
    AlertsScreen #alerts-heading {
        height: auto;
        padding: 0 1;
    }
    AlertsScreen .section-title {
        padding: 0 1;
        margin-top: 1;
    }
    AlertsScreen #alerts-active {
        height: auto;
        max-height: 12;
    }
    AlertsScreen #alerts-drift {
        height: auto;
        max-height: 8;
    }
    AlertsScreen #alerts-history {
        height: auto;
    }
    AlertsScreen #alerts-body {
        height: 1fr;
    }
    AlertsScreen #actions-failed {
        height: auto;
        padding: 0 1;
        margin-top: 1;
        display: none;
    }
    """

    def __init__(self, *, zone: tzinfo, alert_settings: AlertSettings) -> None:
        super().__init__(zone=zone)
        self.alert_settings = alert_settings
        """The thresholds, shown in the heading."""
        self.history: tuple[AlertRecord, ...] = ()
        """The recent alerts listed (the last ones a tick computed for this view read)."""

    @property
    def needs(self) -> ViewNeeds:
        """The alert history."""
        return ViewNeeds(alert_history=True)

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        yield Static("Alerts: loading…", id="alerts-heading")
        with VerticalScroll(id="alerts-body"):
            yield Static("Active", id="active-title", classes="section-title")
            yield DataTable(id="alerts-active", cursor_type="row")
            yield Static("Model drift", classes="section-title")
            yield DataTable(id="alerts-drift", cursor_type="row")
            yield Static("Recent alerts, newest first", id="history-title", classes="section-title")
            yield NewestFirstTable(id="alerts-history", cursor_type="row", zebra_stripes=True)
            yield Static(id="actions-failed")
        yield Footer()

    def on_mount(self) -> None:
        for table_id, columns in (
            ("#alerts-active", ACTIVE_COLUMNS),
            ("#alerts-drift", DRIFT_COLUMNS),
            ("#alerts-history", HISTORY_COLUMNS),
        ):
            table = self.query_one(table_id, DataTable)
            for name in columns:
                table.add_column(name, key=name)
        self.query_one("#alerts-active", DataTable).focus()

    def render_data(self, data: ViewData) -> None:
        alerts = data.alerts
        at_us = data.snapshot.at_us
        heading = Text(no_wrap=False)
        heading.append("Alerts", "bold")
        heading.append(f" · {alerts.count} active · as of {self.clock(at_us)}")
        if alerts.error:
            heading.append(f" · {alerts.error}", "bold red")
        heading.append("\n" + thresholds(self.alert_settings, data.max_gap_s), "dim")
        self.query_one("#alerts-heading", Static).update(heading)
        self.query_one("#active-title", Static).update(
            f"Active ({alerts.count})" if alerts.count else "Active: none"
        )
        fill_table(
            self.query_one("#alerts-active", DataTable),
            [
                (
                    row_key(alert),
                    [
                        cell(KIND_WORDS.get(alert.kind, alert.kind), "bold"),
                        cell(alert.subject),
                        cell(self.clock(alert.started_us, seconds=False)),
                        number(span(max(0, at_us - alert.started_us) / US_PER_S)),
                        cell(alert.details),
                    ],
                )
                for alert in alerts.active
            ],
            elastic=(4,),
        )
        fill_table(
            self.query_one("#alerts-drift", DataTable),
            [(model.model_version, self._drift_cells(model)) for model in alerts.drift],
            elastic=(6, 0),
        )
        failed = self.query_one("#actions-failed", Static)
        failed.display = bool(alerts.action_failures)
        if alerts.action_failures:
            failed.update(self._failures_text(alerts.action_failures))
        if alerts.history is None:
            return  # computed for another view: the listed history stays until our next tick
        self.history = alerts.history
        history = self.query_one("#alerts-history", NewestFirstTable)
        history.fill(
            [(row_key(alert), self._history_cells(alert, at_us)) for alert in alerts.history],
            elastic=(5,),
        )
        self.query_one("#history-title", Static).update(
            f"Recent alerts, newest first{history.newer_note()}"
        )

    @on(NewestFirstTable.WentLive)
    def _went_live(self) -> None:
        self.query_one("#history-title", Static).update("Recent alerts, newest first")

    @staticmethod
    def _drift_cells(model: ModelDrift) -> list[Text]:
        change = MISSING
        if model.rolling_confidence is not None and model.baseline_confidence is not None:
            change = f"{model.rolling_confidence - model.baseline_confidence:+.2f}"
        state = drift_state(model)
        return [
            cell(model.model_version, "bold"),
            number(confidence(model.baseline_confidence)),
            number(confidence(model.rolling_confidence)),
            number(change),
            number(rate(model.baseline_uph)),
            number(rate(model.rolling_uph)),
            cell(state, "bold" if state.startswith("DRIFTING") else ""),
        ]

    def _failures_text(self, failures: tuple[ActionFailure, ...]) -> Text:
        text = Text(f"Failed alert actions ({len(failures)}), newest first", "bold red")
        for failure in reversed(failures):
            text.append(
                f"\n{self.clock(failure.at_us, seconds=False)}  {failure.action}: "
                f"{failure.alert}: {failure.error}",
                "",
            )
        return text

    def _history_cells(self, alert: AlertRecord, at_us: int) -> list[Text]:
        end = at_us if alert.cleared_us is None else alert.cleared_us
        return [
            cell(KIND_WORDS.get(alert.kind, alert.kind)),
            cell(alert.subject),
            cell(self.clock(alert.started_us, seconds=False)),
            cell(
                "active"
                if alert.cleared_us is None
                else self.clock(alert.cleared_us, seconds=False)
            ),
            number(span(max(0, end - alert.started_us) / US_PER_S)),
            cell(alert.details, "dim"),
        ]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id not in ("alerts-active", "alerts-history"):
            return
        alerts = self.history if self.data is None else self.data.alerts.active + self.history
        for alert in alerts:
            if row_key(alert) == event.row_key.value and alert.kind in WORKER_KINDS:
                self.post_message(WorkerGrid.WorkerSelected(alert.subject))
                return

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A read-only viewer raises no alerts: no `r Retrain` in its footer."""
        if action == "suggest_retrain":
            return getattr(self.app, "role", "console") != "viewer"
        return True

    def action_suggest_retrain(self) -> None:
        drift = self.query_one("#alerts-drift", DataTable)
        if not drift.row_count:
            self.notify("No model in the drift table yet", severity="warning")
            return
        row_key = drift.coordinate_to_cell_key(drift.cursor_coordinate).row_key
        if row_key.value is not None:
            self.post_message(self.RetrainRequested(row_key.value))
