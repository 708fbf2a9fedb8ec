"""Line framing and reply encoding, without sockets."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from factory_tui.ingest.protocol import (
    ACCEPTED,
    LineFramer,
    Refused,
    auth_line,
    decode_reply,
    read_auth,
    rejected,
)


def frame(data_chunks: list[bytes], limit: int) -> list[bytes | Refused]:
    framer = LineFramer(limit)
    out: list[bytes | Refused] = []
    for chunk in data_chunks:
        out.extend(framer.feed(chunk))
    out.extend(framer.finish())
    return out


def reference(data: bytes, limit: int) -> list[bytes | None]:
    """What framing must give: every line, None for one over the limit."""
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return [part if len(part) <= limit else None for part in parts]


@given(
    data=st.binary(max_size=400).map(lambda b: b.replace(b"\x00", b"\n")),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    limit=st.integers(min_value=1, max_value=40),
)
def test_framing_does_not_depend_on_how_the_stream_is_cut(
    data: bytes, cuts: list[int], limit: int
) -> None:
    points = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    framed = frame(chunks, limit)
    assert [None if isinstance(item, Refused) else item for item in framed] == reference(
        data, limit
    )


def test_oversize_line_is_reported_as_soon_as_it_passes_the_limit() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"0123456") == []
    (marker,) = framer.feed(b"89abcdef")
    assert isinstance(marker, Refused)
    assert marker.head == b"012345689abcdef"
    assert "longer than 10 bytes" in marker.error
    assert framer.holds_partial_line
    # The rest of that line is skipped; the next line is intact.
    assert framer.feed(b"zzzzzzzzzzzzzzzzzzzzzz") == []
    assert framer.feed(b"zz\nok\n") == [b"ok"]
    assert not framer.holds_partial_line


def test_reply_lines_round_trip() -> None:
    assert decode_reply(ACCEPTED) == {"status": "accepted"}
    line = rejected('confidence: must be between 0 and 1, got 1.5 "quoted"\nsecond')
    assert line.count(b"\n") == 1
    assert decode_reply(line)["error"].endswith("second")
    assert read_auth(auth_line("tok")) == "tok"
    assert read_auth(b'{"auth": "tok", "x": 1}') is None
    assert read_auth(b"\xff") is None
    assert json.loads(auth_line('we"ird')) == {"auth": 'we"ird'}
