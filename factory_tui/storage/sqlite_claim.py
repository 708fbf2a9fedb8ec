"""The owner's claim on a SQLite database: an flock on `<db>.owner`, beside the file.

The kernel drops an flock when the last descriptor of its open file goes, so a killed owner
leaves no claim behind; the file itself stays (it holds only a line naming the last owner,
and is safe to delete while nothing runs). The descriptor is opened close-on-exec: a child
process (an alert action's command) never inherits it and so never holds the claim.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Final, Self

from factory_tui.storage.base import StoreError
from factory_tui.storage.claim import OwnerTaken, describe_meta, describe_self

SUFFIX: Final = ".owner"
HOLDER_MAX_BYTES: Final = 512
"""The most of the file a refused process reads (one line naming the owner)."""
TAKE_TRIES: Final = 3
"""Opens tried when the file is replaced between open and lock (a person deleting it)."""
BUSY_TRIES: Final = 3
BUSY_WAIT_S: Final = 0.02
"""A lock found held is tried again this many times, this far apart, before the claim is
refused: a viewer's probe (`FileProbe`) holds a shared lock for a few microseconds."""


def owner_file(db: Path) -> Path:
    """Where the claim on `db` lives: `<db>.owner`, beside it."""
    return db.with_name(db.name + SUFFIX)


class FileClaim:
    """A held flock on `<db>.owner` (implements `OwnerClaim`)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def take(cls, db: Path) -> Self:
        """Lock `<db>.owner` (creating it), or raise OwnerTaken naming who holds it."""
        if db.parent and not db.parent.exists():
            raise StoreError(f"cannot create database {db}: folder {db.parent} does not exist")
        path = owner_file(db)
        for _ in range(TAKE_TRIES):
            fd = _open(db, path)
            try:
                _lock_exclusive(fd)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise OwnerTaken(
                    f"another factory-tui owns {db} ({holder or _meta_owner(db)}); "
                    "stop it first, or open the console beside it as a viewer"
                ) from None
            except OSError as error:
                os.close(fd)
                raise StoreError(
                    f"cannot open database {db}: its owner file {path.name}: {error.strerror}"
                ) from None
            if _same_file(fd, path):
                claim = cls(path, fd)
                claim._record(describe_self())
                return claim
            os.close(fd)  # deleted or replaced after we opened it: lock the one there now
        raise StoreError(f"cannot lock {path}: it keeps being replaced")

    def announce(self, host: str, port: int) -> None:
        """Name this process and its address in the file (for whoever is refused)."""
        self._record(describe_self((host, port)))

    def keep(self) -> str | None:
        """Always held: an flock lasts as long as its descriptor, which only `release` closes."""
        return None

    def release(self) -> None:
        """Unlock (closing the descriptor drops the flock); the file stays."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _record(self, text: str) -> None:
        if self._fd is None:
            return
        # Best effort: the lock is the claim, this line only names its holder.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, (text + "\n").encode(), 0)


class FileProbe:
    """Whether an owner holds `<db>.owner`, asked with a shared lock held for an instant
    (implements `OwnerProbe`). The file is opened afresh each time: one deleted and made
    again by a new owner is the one asked about."""

    def __init__(self, db: Path) -> None:
        self.path = owner_file(db)

    def held(self, site: str) -> bool | None:
        """True while a process holds the flock (every site of a file has the one owner)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False  # no owner has run here (or the file was deleted while none ran)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        finally:
            os.close(fd)  # drops the shared lock, if taken
        return False

    def owned_before(self) -> bool:
        """The claim's file exists: an owner has run here (and its file was not deleted)."""
        return self.path.exists()

    def close(self) -> None:
        """Nothing is kept open between two questions."""


def _lock_exclusive(fd: int) -> None:
    """flock(LOCK_EX), tried again for a moment: a probe's shared lock is not an owner.
    Raises BlockingIOError when another process holds it."""
    for attempt in range(BUSY_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == BUSY_TRIES - 1:
                raise
            time.sleep(BUSY_WAIT_S)


def _open(db: Path, path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise StoreError(
            f"cannot open database {db}: its owner file {path.name}: {error.strerror}"
        ) from None


def _read(fd: int) -> str:
    try:
        data = os.pread(fd, HOLDER_MAX_BYTES, 0)
    except OSError:
        return ""
    return data.decode(errors="replace").strip().splitlines()[0] if data.strip() else ""


def _same_file(fd: int, path: Path) -> bool:
    """The locked descriptor is still the file at `path` (not one deleted meanwhile)."""
    try:
        here, there = os.fstat(fd), path.stat()
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _meta_owner(db: Path) -> str:
    """The owner as the database's meta table names it (its holder's line was not written yet)."""
    from factory_tui.storage.sqlite import SqliteStore

    try:
        with SqliteStore.open(db, read_only=True) as store:
            return describe_meta(store.owner())
    except StoreError:
        return describe_meta(None)
