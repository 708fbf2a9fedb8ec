"""`factory-tui` with no subcommand: the live console (the root callback in cli.py calls it)."""

from __future__ import annotations

from pathlib import Path

import typer

from factory_tui.commands.common import dotted, fail, settings_from


def run_console(
    *,
    config: Path | None,
    db: str | None,
    port: int | None,
    host: str | None = None,
    simulate: bool = False,
) -> None:
    """Run the console on the configured database until the user quits.

    It owns the ingest listener; when the port is held by another factory-tui on the same
    database it runs as a read-only viewer instead. `simulate` adds the in-process camera
    simulator for the configured roster, paced by the wall clock.
    """
    # Textual and the engine load only when the console runs, so `--help` and the other
    # commands stay quick.
    from factory_tui.commands.demo import simulator_feeder
    from factory_tui.console.app import make_app

    settings = settings_from(config, **dotted(store__path=db, ingest__port=port, ingest__host=host))
    clock = None
    feeder = None
    if simulate:
        clock, feeder = simulator_feeder(settings, speed=1.0, seed=1)
    app = make_app(settings, clock=clock.now_us if clock is not None else None, feeder=feeder)
    app.run()
    if app.error_message is not None:
        fail(app.error_message)
    if app.return_code:
        raise typer.Exit(app.return_code)
