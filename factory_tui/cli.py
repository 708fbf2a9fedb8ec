"""The `factory-tui` command line: a typer app assembled from one module per command."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from factory_tui import __version__

# Each name is a module in factory_tui/commands/ exposing `register(app)`.
COMMAND_MODULES: tuple[str, ...] = ("init", "serve", "send", "report", "export", "simulate")

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
) -> None:
    """Terminal console for AI-camera productivity monitoring on a factory floor."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


for _name in COMMAND_MODULES:
    importlib.import_module(f"factory_tui.commands.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
