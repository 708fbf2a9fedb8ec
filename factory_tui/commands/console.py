"""`factory-tui` with no subcommand: the live console (the root callback in cli.py calls it)."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from factory_tui.commands.common import dotted, fail, settings_from
from factory_tui.config import Settings

if TYPE_CHECKING:
    from factory_tui.console.app import FactoryApp


class ViewName(StrEnum):
    """The top-level views a console can open at start (`--view`)."""

    workers = "workers"
    stations = "stations"
    events = "events"
    alerts = "alerts"


ViewerOption = Annotated[
    bool,
    typer.Option(
        "--viewer",
        help="Only view: never take the ingest port, never write (what each browser tab runs).",
    ),
]
ViewOption = Annotated[
    ViewName, typer.Option("--view", help="The view open at start (a wall screen's stations).")
]
SiteOption = Annotated[
    str | None,
    typer.Option("--site", help="The site to show (when sites are configured)."),
]


def site_override(site: str | None) -> dict[str, Any]:
    """`--site` as a settings override; a note on stderr while this build has no sites."""
    if site is None:
        return {}
    if "site" in Settings.model_fields:
        return {"site.id": site}
    typer.echo("factory-tui: note: this version has no sites yet; --site is ignored", err=True)
    return {}


def end_on_hangup() -> None:
    """Let a hang-up end the process, also when it was started with SIGHUP ignored (`nohup`).

    The console needs its terminal: when an SSH session drops, the default action ends it. With
    SIGHUP ignored it would instead run on, polling a closed terminal at high CPU (dolphie#101).
    """
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def run_to_exit(app: FactoryApp) -> None:
    """Run the console in this terminal; its start-up error or return code ends the command."""
    end_on_hangup()
    app.run()
    if app.error_message is not None:
        fail(app.error_message)
    if app.return_code:
        raise typer.Exit(app.return_code)


def with_demo_roster(settings: Settings) -> Settings:
    """`--simulate` needs workers to simulate: with no roster configured, the demo floor's
    (its workers, stations and shifts), said on stderr, so the floor is not silently empty."""
    if settings.workers:
        return settings
    from factory_tui.config import demo_data

    demo = demo_data()
    typer.echo(
        "factory-tui: no roster configured: --simulate runs the demo floor's "
        f"{len(demo['workers'])} workers (write your own with `factory-tui init`)",
        err=True,
    )
    data = settings.model_dump(exclude={"source"})
    for key in ("workers", "workstations", "shifts"):
        data[key] = demo[key]
    return Settings.model_validate(data)


def run_console(
    *,
    config: Path | None,
    db: str | None,
    port: int | None,
    host: str | None = None,
    simulate: bool = False,
    viewer: bool = False,
    view: ViewName = ViewName.workers,
    site: str | None = None,
    auto_register: bool = False,
) -> None:
    """Run the console on the configured database until the user quits.

    It owns the ingest listener; when the port is held by another factory-tui on the same
    database it runs as a read-only viewer instead, and with `viewer` it never tries the port.
    `simulate` adds the in-process camera simulator for the configured roster, paced by the
    wall clock.
    """
    # Textual and the engine load only when the console runs, so `--help` and the other
    # commands stay quick.
    from factory_tui.commands.demo import simulator_feeder
    from factory_tui.console.app import make_app

    if viewer and simulate:
        fail("--simulate needs the ingest port, and a --viewer never takes it: pick one")
    settings = settings_from(
        config,
        **dotted(
            store__path=db,
            ingest__port=port,
            ingest__host=host,
            ingest__auto_register=True if auto_register else None,
        ),
        **site_override(site),
    )
    clock = None
    feeder = None
    if simulate:
        settings = with_demo_roster(settings)
        clock, feeder = simulator_feeder(settings, speed=1.0, seed=1)
    app = make_app(
        settings,
        clock=clock.now_us if clock is not None else None,
        feeder=feeder,
        role="viewer" if viewer else "console",
        view=view.value,
        site_chosen=site is not None,
    )
    run_to_exit(app)
