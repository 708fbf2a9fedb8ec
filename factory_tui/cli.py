"""The `factory-tui` command line: a typer app assembled from one module per command."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from factory_tui import __version__
from factory_tui.commands.common import (
    AutoRegisterOption,
    ConfigOption,
    DbOption,
    PortOption,
    fail,
)
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

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and command is not None:
            _hand_on(ctx, name, command, rest)
        return name, command, rest


def _typed(ctx: Context, name: str) -> bool:
    """True when the option `name` of `ctx` was given on the command line."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _hand_on(ctx: Context, name: str, command: Command, rest: list[str]) -> None:
    """Options given before a command: `-c/--config` is passed on to it (as if written after
    it); the console's others (`--db`, `--port`, `--site`, ...) are refused in one line rather
    than silently ignored."""
    ignored = [
        param.opts[0]
        for param in ctx.command.params
        if param.name not in (None, "config", "version") and _typed(ctx, param.name)
    ]
    if ignored:
        verb = "is an option" if len(ignored) == 1 else "are options"
        fail(
            f"{', '.join(ignored)} before `{name}` {verb} of the console, not of `{name}`: "
            f"put the command's own options after its name (factory-tui {name} --help)"
        )
    if not _typed(ctx, "config"):
        return
    config = ctx.params["config"]
    if _config_flag_in(rest):
        fail(f"--config is given both before and after `{name}`: give it once")
    defaults = _config_defaults(command, str(config))
    if defaults is None:
        fail(f"--config before `{name}`: `{name}` reads no config file")
    ctx.default_map = {**(ctx.default_map or {}), name: defaults}


def _config_flag_in(args: list[str]) -> bool:
    """True when `args` (a command's own) hold -c/--config."""
    for arg in args:
        if arg == "--":
            return False
        if arg in ("-c", "--config") or arg.startswith("--config="):
            return True
        if arg.startswith("-c") and not arg.startswith("--"):
            return True
    return False


def _config_defaults(command: Command, config: str) -> dict[str, Any] | None:
    """The default map that gives `command` (and each command of a group) this config file
    (None: it takes none)."""
    if any(param.name == "config" for param in command.params):
        return {"config": config}
    commands: Mapping[str, Command] = getattr(command, "commands", {})
    nested = {sub: _config_defaults(commands[sub], config) for sub in commands}
    taken = {sub: value for sub, value in nested.items() if value is not None}
    return taken or None


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
