"""Natural order for ids: W2 before W10, the way people count.

One definition for every list of ids the program shows: the engine's Snapshot (workers and
stations), the drift figures' models, the reports that follow them, and the console's views
(`factory_tui.view_models` re-exports it for the widgets and screens)."""

from __future__ import annotations

import functools
import re
from typing import Final

_DIGITS: Final = re.compile(r"(\d+)")


@functools.lru_cache(maxsize=4096)
def natural_key(text: str) -> tuple[str | int, ...]:
    """Sort key that orders numbers inside text by value: W2 before W10, W10 before W100.

    Letters compare without case (w2 before W10). Ids that read the same that way but differ
    as text ("W01" and "W1", "w1" and "W1") are ordered by the text itself, so a sort by this
    key is one order whatever order the ids came in. Kept per text: the console's tiles are
    sorted every tick by name and id (400 keys at 200 workers)."""
    parts = _DIGITS.split(text.casefold())
    # Text and numbers alternate (text first and last), so keys compare like with like at each
    # place. Then -1, in a number's place: a key that runs out of parts sorts before one that
    # goes on (W before W1) as a shorter tuple would, and two keys with the same parts reach
    # the text, which decides.
    return (*(int(part) if index % 2 else part for index, part in enumerate(parts)), -1, text)
