"""The owner's claim on a site of a PostgreSQL database: a session advisory lock.

The lock is held by a connection of its own, kept open while the owner runs; the server drops
it when that session ends (the process exits or is killed, or the link is cut). Its key is
the schema and the site, so each site of a shared database has its own owner, and two
factory databases in two schemas of one server database do not block each other. The holder
names itself in its session's application_name, which a refused process reads back through
pg_locks and pg_stat_activity.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from typing import Any, Final, Self

import psycopg

from factory_tui.storage.base import StoreError
from factory_tui.storage.claim import OwnerTaken
from factory_tui.storage.postgres import _one_line, connect
from factory_tui.storage.urls import mask_url

NAMESPACE: Final = 0x66745455
"""The first key of every factory-tui advisory lock ("ftTU"), apart from other programs'."""
NAME_PREFIX: Final = "factory-tui: "
NAME_MAX_BYTES: Final = 63
"""PostgreSQL keeps this much of an application_name (NAMEDATALEN - 1)."""

_HOLDER: Final = (
    "SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = %s AND l.objid::bigint = %s"
)


def site_key(schema: str, site: str) -> int:
    """The second key of a site's lock: a stable 31-bit hash of its schema and id."""
    digest = hashlib.blake2b(f"{schema}\0{site}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def session_name(address: tuple[str, int] | None = None) -> str:
    """The lock's session's application_name: this process's pid, address and machine, in
    that order, so what the server cuts at NAME_MAX_BYTES is the end of the machine's name."""
    text = f"{NAME_PREFIX}pid {os.getpid()}"
    if address is not None:
        text += f" at {address[0]}:{address[1]}"
    text += f" on {socket.gethostname()}"
    return text.encode()[:NAME_MAX_BYTES].decode(errors="ignore")


class AdvisoryClaim:
    """A held advisory lock on one site (implements `OwnerClaim`)."""

    def __init__(self, conn: psycopg.Connection[Any], url: str, site: str) -> None:
        self._conn: psycopg.Connection[Any] | None = conn
        self._session = conn.info.backend_pid
        """The server session holding the lock (its backend pid)."""
        self._url = url
        self._site = site
        self._address: tuple[str, int] | None = None
        self._released = False

    @classmethod
    def take(cls, url: str, site: str) -> Self:
        """Lock the site on a connection of its own, or raise OwnerTaken naming the holder."""
        masked = mask_url(url)
        conn = connect(url, application_name=session_name())
        try:
            row = conn.execute("SELECT coalesce(current_schema(), '')").fetchone()
            key = site_key(row[0] if row else "", site)
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (NAMESPACE, key)).fetchone()
            if got is None or not got[0]:
                holder = conn.execute(_HOLDER, (NAMESPACE, key)).fetchone()
                name = str(holder[1]) if holder and holder[1] else ""
                raise OwnerTaken(
                    f"another factory-tui owns site {site!r} of {masked} "
                    f"({name.removeprefix(NAME_PREFIX) or 'a process on another session'}); "
                    "stop it first, or open the console beside it as a viewer",
                    session=int(holder[0]) if holder else None,
                )
        except psycopg.Error as error:
            conn.close()
            raise StoreError(
                f"cannot claim site {site!r} of {masked}: {_one_line(error)}"
            ) from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, url, site)

    def announce(self, host: str, port: int) -> None:
        """Name this process and its address in the lock's session (for whoever is refused)."""
        self._address = (host, port)
        if self._conn is None:
            return
        # The lock is the claim; its name is only a courtesy to whoever is refused.
        with contextlib.suppress(psycopg.Error):
            self._conn.execute(
                "SELECT set_config('application_name', %s, false)",
                (session_name((host, port)),),
            )

    def keep(self) -> str | None:
        """None while the lock is held, taking it again on a new session when its own has
        ended (a server restart, a cut link): else one line naming who took it meanwhile."""
        if self._released:
            return None
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
                return None
            except psycopg.Error:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None
        try:
            fresh = self.take(self._url, self._site)
        except OwnerTaken as error:
            if error.session == self._session:
                return None  # our old session, not yet ended on the server: it still holds it
            return str(error)
        except StoreError:
            return None  # the server cannot be reached: nobody else can take the lock there
        self._conn, self._session, fresh._conn = fresh._conn, fresh._session, None
        if self._address is not None:
            self.announce(*self._address)
        return None

    def release(self) -> None:
        """End the lock's session (the server drops the lock with it)."""
        self._released = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class AdvisoryProbe:
    """Whether a session holds a site's advisory lock, read from pg_locks without taking it
    (implements `OwnerProbe`), on a connection of its own opened at the first question."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._schema = ""

    def held(self, site: str) -> bool | None:
        """True while some session holds the site's lock; None when the server cannot be
        asked (the connection is opened again at the next question)."""
        try:
            if self._conn is None:
                conn = connect(self._url, application_name=f"{NAME_PREFIX}viewer")
                row = conn.execute("SELECT coalesce(current_schema(), '')").fetchone()
                self._conn, self._schema = conn, row[0] if row else ""
            key = site_key(self._schema, site)
            return self._conn.execute(_HOLDER, (NAMESPACE, key)).fetchone() is not None
        except (psycopg.Error, StoreError):
            self.close()
            return None

    def owned_before(self) -> bool:
        """An advisory lock leaves no trace once dropped: False."""
        return False

    def close(self) -> None:
        """Close its connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
