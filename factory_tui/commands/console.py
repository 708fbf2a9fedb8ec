"""`factory-tui` with no subcommand: the live console (the root callback in cli.py calls it)."""

from __future__ import annotations

import asyncio
import os
import signal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from factory_tui.commands.common import dotted, fail, settings_from
from factory_tui.config import Settings, unknown_env_names

if TYPE_CHECKING:
    from factory_tui.console.app import FactoryApp


STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP)
"""What stops the console as `q` does: `kill`, systemd, a closed terminal window, an SSH drop."""


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


def view_name(value: str) -> ViewName:
    """`--view`'s value as a view, or one sentence that lists the views (the option's own
    message quoted the validator: "Value error, 'foo' is not one of ...")."""
    try:
        return ViewName(value)
    except ValueError:
        *first, last = ViewName
        views = f"{', '.join(first)} and {last}"
        raise typer.BadParameter(f"there is no view {value!r}; the views are {views}.") from None


ViewOption = Annotated[
    ViewName,
    typer.Option(
        "--view",
        parser=view_name,
        metavar="<" + "|".join(ViewName) + ">",
        help="The view open at start (a wall screen's stations).",
    ),
]
SiteOption = Annotated[
    str | None,
    typer.Option("--site", help="The site to show (when sites are configured)."),
]


def say(note: str, said: list[str] | None = None) -> None:
    """A note on stderr before the console starts, kept in `said` for the console to show
    too (its screen covers stderr until it ends)."""
    typer.echo(f"factory-tui: {note}", err=True)
    if said is not None:
        said.append(note)


def site_override(site: str | None, said: list[str] | None = None) -> dict[str, Any]:
    """`--site` as a settings override; a note on stderr while this build has no sites."""
    if site is None:
        return {}
    if "site" in Settings.model_fields:
        return {"site.id": site}
    say("note: this version has no sites yet; --site is ignored", said)
    return {}


def end_on_hangup() -> None:
    """Let a hang-up end the process, also when it was started with SIGHUP ignored (`nohup`).

    The console needs its terminal: with SIGHUP ignored it would run on after an SSH drop,
    polling a closed terminal at high CPU (dolphie#101). This default covers the start; once
    the console runs, SIGHUP (and SIGTERM) stop it as `q` does (`stop_on_signals`).
    """
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def terminal_gone() -> None:
    """The terminal hung up (an SSH drop; it no longer answers `isatty`): point stdin, stdout
    and stderr at /dev/null, so what is still written on the way out goes nowhere at once."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    finally:
        os.close(null)


def stop_on_signals(app: FactoryApp, loop: asyncio.AbstractEventLoop) -> None:
    """SIGTERM and SIGHUP stop the console as `q` does (Textual leaves them to their default
    action, which ends the process as it stands: textual#5140).

    The handlers run in the loop, between callbacks. A terminal that hung up (an SSH drop)
    cannot be restored: the services stop as on `q`, then the process exits 0 without Textual's
    last writes. Those would block: the first write to the hung-up terminal fails, which ends
    Textual's output thread, and the exit then waits on its full queue for ever.
    A second signal while the stop runs ends the process at once, by its default action."""
    signalled: list[int] = []

    async def stop_without_terminal() -> None:
        await app.stop_services()
        os._exit(0)

    def stop(signum: signal.Signals) -> None:
        if signalled:
            loop.remove_signal_handler(signum)  # back to the default action
            os.kill(os.getpid(), signum)
            return
        signalled.append(signum)
        # After on_mount, if the services are still starting (one message at a time).
        if signum == signal.SIGHUP and not os.isatty(2):  # hung up (a `kill -HUP` is not)
            terminal_gone()
            app.call_later(stop_without_terminal)
        else:
            app.call_later(app.action_quit)  # `q`

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)


def run_to_exit(app: FactoryApp) -> None:
    """Run the console in this terminal; its start-up error or return code ends the command.

    SIGTERM and SIGHUP stop it as `q` does: what was received is answered, the stores are
    closed, the terminal is restored (as far as one is left), and it exits 0."""
    end_on_hangup()
    # What App.run does (asyncio.run of run_async), with the signal handlers on its loop.
    with asyncio.Runner() as runner:
        stop_on_signals(app, runner.get_loop())
        runner.run(app.run_async())
    if app.error_message is not None:
        fail(app.error_message)
    if app.return_code:
        raise typer.Exit(app.return_code)


def with_demo_roster(settings: Settings, said: list[str] | None = None) -> Settings:
    """`--simulate` needs workers to simulate: with no roster configured, the demo floor's
    (its workers, stations and shifts), said on stderr, so the floor is not silently empty."""
    if settings.workers:
        return settings
    from factory_tui.config import demo_data

    demo = demo_data()
    say(
        "no roster configured: --simulate runs the demo floor's "
        f"{len(demo['workers'])} workers (write your own with `factory-tui init`)",
        said,
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
    # What settings_from says on stderr, the console shows too.
    said = unknown_env_names()
    settings = settings_from(
        config,
        **dotted(
            store__path=db,
            ingest__port=port,
            ingest__host=host,
            ingest__auto_register=True if auto_register else None,
        ),
        **site_override(site, said),
    )
    clock = None
    feeder = None
    if simulate:
        settings = with_demo_roster(settings, said)
        clock, feeder = simulator_feeder(settings, speed=1.0, seed=1)
    app = make_app(
        settings,
        clock=clock.now_us if clock is not None else None,
        feeder=feeder,
        role="viewer" if viewer else "console",
        view=view.value,
        site_chosen=site is not None,
        notes=said,
    )
    run_to_exit(app)
