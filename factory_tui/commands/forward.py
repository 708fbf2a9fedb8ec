"""`factory-tui forward`: ship this site's events to a central database, and say how it went."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Final

import typer

from factory_tui import storage
from factory_tui.commands.common import (
    ConfigOption,
    DbOption,
    dotted,
    fail,
    log_to_stderr,
    settings_from,
)
from factory_tui.forwarding import Forwarder, ForwardError, choose_site
from factory_tui.storage import StoreError

PROGRESS_EVERY_S: Final = 2.0
GIVE_UP_AFTER: Final = 6
"""`--once` gives up after this many failed attempts in a row (about half a minute)."""


class _Progress:
    """Prints a progress line every `every_s` while events move (the link's failures and its
    return are logged on stderr)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._next = time.monotonic() + every_s
        self._shipped = 0

    def __call__(self, forwarder: Forwarder) -> None:
        state = forwarder.state()
        now = time.monotonic()
        tally = forwarder.tally
        if now < self._next or tally.events == self._shipped:
            return
        self._next = now + self.every_s
        self._shipped = tally.events
        behind = "" if state.behind is None else f", {state.behind:,} behind"
        typer.echo(
            f"forwarded {tally.forwarded:,}, already there {tally.already_there:,}{behind}, "
            f"{tally.rate_per_s:,.0f} events/s"
        )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask the forwarder to stop after its batch in flight."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def forward(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="The central database: a postgresql:// URL or a SQLite path "
            "(default: forward.url from config).",
        ),
    ] = None,
    config: ConfigOption = None,
    db: DbOption = None,
    site: Annotated[
        str | None,
        typer.Option(
            "--site",
            help="The site to forward (default: site.id, or the only site the database holds).",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Forward the backlog, then exit (default: keep going).")
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, max=100_000, help="Events per central transaction."),
    ] = None,
    progress_every: Annotated[
        float,
        typer.Option("--progress-every", min=0.1, help="Seconds between progress lines."),
    ] = PROGRESS_EVERY_S,
) -> None:
    """Forward this site's events to a central database, oldest first, and keep following them.

    Events go in id order, in batches, each one central transaction; an event the central
    database holds already counts as "already there", never twice. Progress is kept in the
    site's database, so a stopped forward resumes where it was. While the central database
    is unreachable it retries with a growing wait (failures are logged on stderr). Ctrl-C or
    SIGTERM stop it after the batch in flight; it then prints the tally.
    """
    settings = settings_from(
        config,
        **dotted(
            store__path=db,
            site__id=site,
            forward__url=to,
            forward__batch_size=batch_size,
        ),
    )
    source = settings.store.location
    try:
        with storage.open_store(source, read_only=True) as probe:
            stored = [record.id for record in probe.sites()]
        site_id = choose_site(stored, settings.site.id, explicit=site is not None)
        if site_id != settings.site.id:
            settings = settings.model_copy(
                update={"site": settings.site.model_copy(update={"id": site_id, "name": ""})}
            )
        forwarder = Forwarder.from_settings(settings, on_progress=_Progress(progress_every))
    except (StoreError, ForwardError) as error:
        fail(str(error))
    typer.echo(
        f"forwarding site {forwarder.site_id} from {forwarder.source_name} "
        f"to {forwarder.target_name}{'' if once else '; Ctrl-C stops'}"
    )
    stop = threading.Event()
    with _stop_on_signals(stop), log_to_stderr():
        try:
            tally = forwarder.run(stop, once=once, give_up_after=GIVE_UP_AFTER if once else None)
        except ForwardError as error:
            typer.echo(forwarder.tally.describe())
            fail(f"gave up: {error}", code=1)
    typer.echo(tally.describe())
    behind = forwarder.state().behind
    if stop.is_set() and behind:
        typer.echo(f"stopped with {behind:,} events still to forward (they wait here)")


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command()(forward)
