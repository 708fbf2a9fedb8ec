"""The `factory-tui` command line: a typer app assembled from one module per command."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from factory_tui import __version__
from factory_tui.commands.common import AutoRegisterOption, ConfigOption, DbOption, PortOption
from factory_tui.commands.console import SiteOption, ViewerOption, ViewName, ViewOption

# Each name is a module in factory_tui/commands/ exposing `register(app)`.
COMMAND_MODULES: tuple[str, ...] = (
    "init",
    "serve",
    "forward",
    "send",
    "demo",
    "simulate",
    "report",
    "export",
    "web",
)

app = typer.Typer(
    name="factory-tui",
    help="Terminal console for AI-camera productivity monitoring on a factory floor.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"factory-tui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    config: ConfigOption = None,
    db: DbOption = None,
    port: PortOption = None,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate/--no-simulate",
            help="Feed the console from the built-in camera simulator (off: real cameras).",
        ),
    ] = False,
    viewer: ViewerOption = False,
    view: ViewOption = ViewName.workers,
    site: SiteOption = None,
    auto_register: AutoRegisterOption = False,
) -> None:
    """Terminal console for AI-camera productivity monitoring on a factory floor.

    Without a command, runs the live console: it listens for cameras and shows the floor. If
    another factory-tui already listens for the same database, it opens as a read-only viewer
    (with --viewer, always).
    """
    if ctx.invoked_subcommand is None:
        from factory_tui.commands.console import run_console

        run_console(
            config=config,
            db=db,
            port=port,
            simulate=simulate,
            viewer=viewer,
            view=view,
            site=site,
            auto_register=auto_register,
        )


for _name in COMMAND_MODULES:
    importlib.import_module(f"factory_tui.commands.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
