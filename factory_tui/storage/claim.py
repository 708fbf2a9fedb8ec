"""One owner per database: the claim a process takes before it listens, and holds while it runs.

The owner is the one process that ingests, forwards, runs retention and raises alerts for a
database (for each site, on a shared PostgreSQL). Its claim is a lock the operating system or
the server drops with the process, so a process killed with SIGKILL never leaves a stale owner:
on SQLite an flock on a small file beside the database (`<db>.owner`, `sqlite_claim.py`), on
PostgreSQL a session advisory lock keyed by schema and site (`postgres_claim.py`). A process
that cannot take it gets `OwnerTaken`, naming the owner as far as it is known.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Protocol

from factory_tui.storage.base import StoreError
from factory_tui.storage.urls import is_postgres_url


class OwnerTaken(StoreError):
    """Another process owns the database (or the site): the message names it as far as known."""

    def __init__(self, message: str, *, session: int | None = None) -> None:
        super().__init__(message)
        self.session = session
        """The server session that holds the claim (PostgreSQL's backend pid), when known."""


class OwnerClaim(Protocol):
    """A held claim: `announce` records where the owner listens, `release` gives it up."""

    def announce(self, host: str, port: int) -> None:
        """Record the owner's listening address for whoever is refused (blocking)."""

    def keep(self) -> str | None:
        """None while the claim is held (taken again if it was lost without another process
        taking it); else one line naming the process that owns the database now. Blocking:
        the owner calls it every few seconds."""

    def release(self) -> None:
        """Give the claim up (idempotent; the process ending gives it up too)."""


class OwnerProbe(Protocol):
    """Whether some process holds the claim, asked without taking it (a viewer's check)."""

    def held(self, site: str) -> bool | None:
        """True while a process owns the database (on PostgreSQL, its site `site`), False
        when none does, None when it cannot be told (the server cannot be reached).
        Blocking, and cheap: a viewer asks every few seconds."""

    def owned_before(self) -> bool:
        """An owner has run on the database, as far as the claim's own trace tells: the
        `<db>.owner` file exists (it outlives its owners). On PostgreSQL the lock leaves no
        trace: False (the `meta` table's owner says more)."""

    def close(self) -> None:
        """Let go of what the probe keeps open (idempotent)."""


def claim_owner(location: Path | str, site: str) -> OwnerClaim:
    """Take the claim on the database at `location` (on PostgreSQL: on its site `site`).

    Raises OwnerTaken when another process holds it, StoreError when it cannot be taken at
    all (a folder that does not exist, a server that cannot be reached). Blocking.
    """
    if is_postgres_url(location):
        from factory_tui.storage.postgres_claim import AdvisoryClaim

        return AdvisoryClaim.take(str(location), site)
    from factory_tui.storage.sqlite_claim import FileClaim

    return FileClaim.take(Path(location))


def probe_owner(location: Path | str) -> OwnerProbe:
    """A probe of the claim on the database at `location` that never takes it (so an owner
    starting meanwhile is not refused). Opens nothing yet."""
    if is_postgres_url(location):
        from factory_tui.storage.postgres_claim import AdvisoryProbe

        return AdvisoryProbe(str(location))
    from factory_tui.storage.sqlite_claim import FileProbe

    return FileProbe(Path(location))


def describe_self(address: tuple[str, int] | None = None) -> str:
    """How a refused process names this one: its pid and machine, and where it listens."""
    text = f"pid {os.getpid()} on {socket.gethostname()}"
    if address is not None:
        text += f", listening on {address[0]}:{address[1]}"
    return text


def describe_meta(owner: tuple[int, str, int] | None) -> str:
    """The owner as the `meta` table records it (the last listener that started)."""
    if owner is None:
        return "another factory-tui process"
    pid, host, port = owner
    return f"pid {pid}, listening on {host}:{port}"
