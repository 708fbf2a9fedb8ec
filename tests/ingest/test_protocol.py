"""Line framing and reply encoding, without sockets."""

from __future__ import annotations

import json
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory_tui.ingest.protocol import (
    ACCEPTED,
    MAX_COUNT,
    LineFramer,
    Refused,
    _fast_row,
    auth_line,
    decode_reply,
    parse_row,
    read_auth,
    rejected,
)
from factory_tui.models import EventError, NewEventRow, canonical_form, parse_event, prepare_row


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


# --- the fast path and pydantic agree ---------------------------------------------------------

ZONES = [UTC, ZoneInfo("Europe/Lisbon"), ZoneInfo("America/New_York")]


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    # Mostly real dates and times, sometimes impossible ones (month 13, 25:61:61...).
    real = draw(st.integers(0, 3)) > 0
    month = draw(st.integers(1, 12) if real else st.integers(0, 13))
    day = draw(st.integers(1, 28) if real else st.integers(0, 32))
    date = f"{draw(st.integers(1, 9999)):04d}-{month:02d}-{day:02d}"
    clock = (
        f"{draw(st.integers(0, 23) if real else st.integers(0, 25)):02d}:"
        f"{draw(st.integers(0, 59) if real else st.integers(0, 61)):02d}:"
        f"{draw(st.integers(0, 59) if real else st.integers(0, 61)):02d}"
    )
    digits = draw(st.integers(0, 9))
    fraction = "." + draw(st.text("0123456789", min_size=digits, max_size=digits)) if digits else ""
    zone = draw(
        st.sampled_from(
            ["", "Z", "Z", "+00:00", "+02:00", "-05:30", "-00:00", "z", "+0200", "+02", "+24:00"]
        )
    )
    separator = draw(st.sampled_from(["T", "T", "T", "T", "t", " "]))
    return date + separator + clock + fraction + zone


IDS = st.one_of(
    st.sampled_from(["W1", "S1", "cam-7", "v3.1"]),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=70),
    st.sampled_from(["W1", "S1"]).map(lambda text: f" {text}\t"),
    st.text(max_size=70),
)
NUMBERS = st.one_of(
    st.sampled_from(
        [
            "0.9",
            "0.90",
            "9e-1",
            "90E-2",
            "1",
            "0",
            "-0",
            "-0.0",
            "1.0",
            "1e0",
            "2",
            "-1",
            "0.3333333333333333333333",
            "1.0000000000000002",
            "true",
            "null",
            '"0.9"',
            "1e400",
        ]
    ),
    st.floats(min_value=0, max_value=1).map(repr),
)
COUNTS = st.one_of(
    st.sampled_from(["0", "1", "-1", "1.0", "true", "null", '"3"', str(2**63 - 1), str(2**63)]),
    st.integers(0, 10**6).map(str),
)


VALID_NUMBERS = st.one_of(
    st.sampled_from(["0.9", "0.90", "9e-1", "90E-2", "1", "0", "-0", "-0.0", "1.0", "1e0"]),
    st.floats(min_value=0, max_value=1).map(repr),
)


@st.composite
def wire_lines(draw: st.DrawFn) -> bytes:
    """Event-like JSON objects in many spellings: half of them valid, the rest anything."""
    tidy = draw(st.booleans())
    event_type = draw(st.sampled_from(["working", "idle", "absent", "product_count", "Idle"]))
    if tidy:
        event_type = event_type.lower()
    ids = st.sampled_from(["W1", "S1", "cam-7", "v3.1"]) if tidy else IDS
    fields: list[tuple[str, str]] = [
        ("timestamp", json.dumps(draw(timestamps()), ensure_ascii=draw(st.booleans()))),
        ("worker_id", json.dumps(draw(ids), ensure_ascii=draw(st.booleans()))),
        ("workstation_id", json.dumps(draw(ids))),
        ("event_type", json.dumps(event_type)),
        ("confidence", draw(VALID_NUMBERS if tidy else NUMBERS)),
    ]
    if tidy and event_type == "product_count":
        fields.append(("count", str(draw(st.integers(1, 2**63 - 1)))))
    elif draw(st.booleans()):
        fields.append(("count", "0" if tidy else draw(COUNTS)))
    for name in ("model_version", "camera_id"):
        choice = draw(st.integers(0, 3))
        if choice == 1:
            fields.append((name, "null"))
        elif choice >= 2:
            fields.append((name, json.dumps(draw(ids))))
    if not tidy and draw(st.integers(0, 9)) == 0:
        fields.append(("extra", "1"))
    if draw(st.integers(0, 9)) == 0:
        fields.append(draw(st.sampled_from(fields)))  # a repeated key
    order = draw(st.permutations(fields))
    space = draw(st.sampled_from(["", " ", "\t"]))
    text = "{" + f",{space}".join(f'"{k}":{space}{v}' for k, v in order) + "}"
    return text.encode("utf-8", errors="surrogatepass")


def slow_row(line: bytes, tz: tzinfo) -> NewEventRow | str:
    try:
        event = parse_event(line, tz)
    except EventError as error:
        return str(error)
    return prepare_row(event, 0)


@settings(max_examples=1500, deadline=None)
@given(line=wire_lines(), tz=st.sampled_from(ZONES))
def test_fast_path_accepts_a_subset_of_pydantic_with_the_same_row(line: bytes, tz: tzinfo) -> None:
    fast = _fast_row(line, tz, 0)
    slow = slow_row(line, tz)
    if fast is not None:
        assert fast == slow
    # And the public entry point always answers like pydantic, up to the int64 guard.
    if isinstance(slow, str):
        with pytest.raises(EventError) as caught:
            parse_row(line, tz, 0)
        assert str(caught.value) == slow
    elif slow[5] > MAX_COUNT:
        with pytest.raises(EventError, match="count: must be at most"):
            parse_row(line, tz, 0)
    else:
        assert parse_row(line, tz, 0) == slow


def test_fast_path_takes_the_usual_lines() -> None:
    line = b'{"timestamp":"2024-05-01T10:00:00.5+02:00","worker_id":"W1","workstation_id":"S1",'
    line += b'"event_type":"product_count","confidence":1,"count":3,"model_version":"v2"}'
    fast = _fast_row(line, UTC, 7)
    assert fast is not None
    assert fast == prepare_row(parse_event(line), 7)


@given(
    ts=st.integers(0, 2**62),
    names=st.lists(st.text(), min_size=3, max_size=3),
    confidence=st.floats(min_value=0, max_value=1),
    count=st.integers(0, 2**63 - 1),
    model=st.one_of(st.none(), st.text()),
)
def test_canonical_form_is_the_json_dumps_it_documents(
    ts: int, names: list[str], confidence: float, count: int, model: str | None
) -> None:
    expected = json.dumps(
        [ts, names[0], names[1], names[2], repr(float(confidence)), count, model],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    worker, station, kind = names
    assert canonical_form(ts, worker, station, kind, confidence, count, model) == expected
