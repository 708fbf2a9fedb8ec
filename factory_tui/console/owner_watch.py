"""A viewer's check that someone still owns the database it shows.

A viewer only reads: the owner (`serve`, or the console that claimed the database) listens for
the cameras. When the owner is gone (stopped, crashed, `kill -9`), the floor a viewer shows
freezes while its ticks keep succeeding, so without this check it would go on saying LIVE.
Every `OWNER_CHECK_S`, in the tick thread, the viewer asks whether the owner's claim is held,
without taking it (`storage.probe_owner`): an flock probe on SQLite (microseconds), one
pg_locks query on PostgreSQL (a connection of the probe's own).

A database no owner ever ran on (a central database filled by `forward`, which is not an
owner) has nobody to miss: it is not reported. An owner has run when the claim's file
`<db>.owner` exists (SQLite; it outlives its owners) or the `meta` table names one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from factory_tui.storage import OwnerProbe

OWNER_CHECK_S: Final = 5.0
"""How often a viewer checks that the database has an owner."""


class OwnerWatch:
    """Whether the database a viewer shows has an owner, asked every `every_s`.

    `site()` is the site on screen (on PostgreSQL each site has its own owner); `recorded()`
    says whether an owner ever recorded itself in the database. `poll` runs in the tick thread.
    """

    def __init__(
        self,
        probe: OwnerProbe,
        site: Callable[[], str],
        recorded: Callable[[], bool],
        *,
        every_s: float | None = None,
    ) -> None:
        self._probe = probe
        self._site = site
        self._recorded = recorded
        self._every_s = OWNER_CHECK_S if every_s is None else every_s
        self._next_s: float | None = None
        self.unowned = False
        """The last check found no owner (of a database one had owned)."""

    def poll(self, now_s: float) -> bool | None:
        """Check when due (the first call checks at once): the new `unowned` when it changed,
        else None."""
        if self._next_s is not None and now_s < self._next_s:
            return None
        self._next_s = now_s + self._every_s
        held = self._probe.held(self._site())
        if held is None:
            return None  # cannot tell (the server is away): the ticks say so themselves
        unowned = not held and self._recorded()
        if unowned == self.unowned:
            return None
        self.unowned = unowned
        return unowned

    def close(self) -> None:
        """Close the probe's connection, if it keeps one."""
        self._probe.close()
