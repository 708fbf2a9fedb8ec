"""Headings that wrap between their parts, never inside one (a narrow terminal, 80x24).

A view's heading is a few parts ("Event log", "1.4 ev/s", "accepted 3,884", ...). Left to
Textual it wraps at any space, so a part like "as of 06:05:52" could be cut in two across
lines. These pack whole parts greedily: a part goes on the current line if it fits.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.content import Content


def pack_text(parts: Sequence[Text], width: int, separator: str = " · ") -> Text:
    """Rich text parts joined by `separator`, a new line instead where the next would not fit."""
    out = Text(no_wrap=True, overflow="ellipsis")
    line = 0
    for index, part in enumerate(parts):
        if index and line + len(separator) + part.cell_len > width:
            out.append("\n")
            line = 0
        elif index:
            out.append(separator, "dim")
            line += len(separator)
        out.append_text(part)
        line += part.cell_len
    return out


def pack_content(parts: Sequence[Content], width: int, separator: str = " · ") -> Content:
    """Textual content parts, packed the same way (styles such as `$text-muted` kept)."""
    pieces: list[Content] = []
    line = 0
    for index, part in enumerate(parts):
        if index and line + len(separator) + part.cell_length > width:
            pieces.append(Content("\n"))
            line = 0
        elif index:
            pieces.append(Content.styled(separator, "$text-muted"))
            line += len(separator)
        pieces.append(part)
        line += part.cell_length
    return Content.assemble(*pieces)


def wrap_parts(text: Text, width: int, separator: str = " · ") -> Text:
    """`text`, whose parts are joined by `separator`, re-packed to `width` (see `pack_text`)."""
    plain = text.plain
    offsets: list[int] = []
    start = plain.find(separator)
    while start != -1:
        offsets += [start, start + len(separator)]
        start = plain.find(separator, start + len(separator))
    pieces = text.divide(offsets)
    return pack_text(list(pieces)[::2], width, separator)
