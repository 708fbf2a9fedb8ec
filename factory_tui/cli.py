"""The `factory-tui` command line: a typer app assembled from one module per command."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from factory_tui import __version__
from factory_tui.commands.common import AutoRegisterOption, ConfigOption, DbOption, PortOption
from factory_tui.commands.console import SiteOption, ViewerOption, ViewName, ViewOption

if TYPE_CHECKING:
    from typer._click import Command, Context  # the click that typer vendors

# Each name is a command and its module in factory_tui/commands/, exposing `register(app)`.
COMMAND_MODULES: tuple[str, ...] = (
    "init",
    "serve",
    "forward",
    "send",
    "demo",
    "simulate",
    "report",
    "web",
    "export",
)

_SETTINGS: dict[str, object] = {
    "add_completion": False,
    "rich_markup_mode": None,
    "pretty_exceptions_enable": False,
}


class LazyCommandMap(MutableMapping[str, "Command"]):
    """The group's commands by name: every command is listed, but its module is imported only
    when the command itself is asked for (run, or its help shown). A run of one command skips
    importing all the others (about 0.1 s of a `report`'s start-up)."""

    def __init__(self, loaded: Mapping[str, Command]) -> None:
        self._loaded = dict(loaded)

    def _load(self, name: str) -> None:
        if name not in self._loaded and name in COMMAND_MODULES:
            holder = typer.Typer(**_SETTINGS)  # type: ignore[arg-type]
            importlib.import_module(f"factory_tui.commands.{name}").register(holder)
            self._loaded.update(typer.main.get_group(holder).commands)

    def __getitem__(self, name: str) -> Command:
        self._load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._load(name)
        del self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in COMMAND_MODULES or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        yield from COMMAND_MODULES
        yield from (name for name in self._loaded if name not in COMMAND_MODULES)

    def __len__(self) -> int:
        return len(COMMAND_MODULES) + sum(name not in COMMAND_MODULES for name in self._loaded)


class LazyCommands(TyperGroup):
    """A typer group whose commands' modules load on demand (`LazyCommandMap`)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommandMap(self.commands)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)  # the names only: typer's own reads every command


app = typer.Typer(
    cls=LazyCommands,
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


def main() -> None:
    """Console-script entry point."""
    app()
