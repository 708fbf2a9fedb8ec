"""`factory-tui init`: write a commented example config file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from factory_tui.commands.common import fail
from factory_tui.config import DEFAULT_CONFIG_NAME, EXAMPLE_CONFIG


def init(
    where: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help=f"Where to write the file. A directory (one that exists, or any path ending "
            f"in /, which is created) means {DEFAULT_CONFIG_NAME} in it.",
        ),
    ] = DEFAULT_CONFIG_NAME,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite an existing file.")
    ] = False,
) -> None:
    """Write a commented example config file (factory.toml) to start from."""
    path = Path(where)  # a Path drops the trailing slash that says "a directory"
    if where.endswith(("/", os.sep)) or path.is_dir():
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            fail(f"cannot make the directory {path}: {error.strerror}")
        path = path / DEFAULT_CONFIG_NAME
        if path.is_dir():
            fail(f"{path} is a directory: give the path of the file to write")
    if path.exists() and not force:
        fail(f"{path} already exists; pass --force to overwrite it")
    try:
        path.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror}")
    typer.echo(f"Wrote {path}. Edit the roster and shifts, then run `factory-tui --config {path}`.")


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command()(init)
