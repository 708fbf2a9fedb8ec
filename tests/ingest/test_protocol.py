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
    AUTH_MISSING,
    AUTH_WRONG,
    AUTHENTICATED,
    DUPLICATE,
    EXCERPT_CHARS,
    MAX_COUNT,
    TOO_MANY_CONNECTIONS,
    LineFramer,
    Refused,
    _fast_row,
    auth_line,
    decode_reply,
    excerpt,
    parse_row,
    read_auth,
    refusal_of,
    rejected,
    too_long_error,
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


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, int]:
    """A limit and lines of about that length (one under, at, one over, and others), so one
    stream mixes lines that pass with lines that are refused."""
    limit = draw(st.integers(min_value=1, max_value=20))
    lengths = st.sampled_from([0, limit - 1, limit, limit + 1, 2 * limit + 3]) | st.integers(0, 50)
    lines = [
        draw(st.binary(min_size=size, max_size=size)).replace(b"\n", b"~")
        for size in draw(st.lists(lengths, max_size=8))
    ]
    data = b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))
    return data, limit


@given(stream=streams(), cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_framing_of_lines_around_the_limit(stream: tuple[bytes, int], cuts: list[int]) -> None:
    data, limit = stream
    points = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    framed = frame(chunks, limit)
    assert [None if isinstance(item, Refused) else item for item in framed] == reference(
        data, limit
    )
    for item, line in zip(framed, data.split(b"\n"), strict=False):
        if isinstance(item, Refused):
            # The head is what was buffered when the line passed the limit.
            assert line.startswith(item.head)
            assert limit < len(item.head) <= EXCERPT_CHARS
            assert item.error == f"line: longer than {limit} bytes (discarded)"


def test_a_line_of_exactly_the_limit_passes() -> None:
    framer = LineFramer(4)
    assert not framer.holds_partial_line
    assert framer.feed(b"abcd\nabcde\n") == [b"abcd", Refused(b"abcde", too_long_error(4))]
    assert framer.feed(b"ab") == []
    assert framer.holds_partial_line
    assert framer.feed(b"cd") == []
    assert framer.finish() == [b"abcd"]
    assert not framer.holds_partial_line
    assert framer.finish() == []


def test_a_refused_tail_is_skipped_up_to_its_newline_even_across_chunks() -> None:
    framer = LineFramer(3)
    (marker,) = framer.feed(b"ok\nabcdef")[1:]
    assert marker == Refused(b"abcdef", "line: longer than 3 bytes (discarded)")
    assert framer.feed(b"ghi") == []
    assert framer.holds_partial_line
    assert framer.feed(b"\nxy") == []  # the rest of the long line ends; "xy" starts a line
    assert framer.feed(b"\n") == [b"xy"]
    assert framer.feed(b"\n") == [b""]  # an empty line is a line (it gets a reply)


def test_finishing_inside_a_refused_line_gives_nothing_more() -> None:
    framer = LineFramer(2)
    assert len(framer.feed(b"toolong")) == 1
    assert framer.finish() == []
    assert not framer.holds_partial_line
    assert framer.feed(b"ab\n") == [b"ab"]  # the framer is usable again


def test_the_refused_head_keeps_at_most_the_excerpt() -> None:
    long_line = bytes(range(65, 91)) * 10  # 260 bytes
    (whole,) = LineFramer(10).feed(long_line + b"\nok\n")[:1]
    assert whole == Refused(long_line[:EXCERPT_CHARS], too_long_error(10))
    (tail,) = LineFramer(10).feed(long_line)
    assert tail == Refused(long_line[:EXCERPT_CHARS], too_long_error(10))


def test_reply_lines_are_compact_json_byte_for_byte() -> None:
    assert rejected('bad "x"') == b'{"status":"rejected","error":"bad \\"x\\""}\n'
    assert auth_line("tok") == b'{"auth":"tok"}\n'
    assert ACCEPTED == b'{"status":"accepted"}\n'
    assert decode_reply(DUPLICATE) == {"status": "duplicate"}
    assert decode_reply(AUTHENTICATED + b"\r") == {"status": "authenticated"}
    assert decode_reply(b' {"status": "accepted"}\r\n') == {"status": "accepted"}


def test_a_decoded_reply_is_a_copy() -> None:
    first = decode_reply(ACCEPTED)
    first["status"] = "changed"
    assert decode_reply(ACCEPTED) == {"status": "accepted"}


@pytest.mark.parametrize("line", [b"[1, 2]", b'["status"]', b'{"error": "x"}', b'"status"'])
def test_a_line_that_is_not_a_reply_object_is_refused(line: bytes) -> None:
    with pytest.raises(ValueError, match="^not a reply line: ") as caught:
        decode_reply(line + b"\n")
    assert str(caught.value) == f"not a reply line: {line[:80]!r}"


def test_the_not_a_reply_message_shows_the_first_80_bytes() -> None:
    line = b"[" + b"1," * 60 + b"1]"
    with pytest.raises(ValueError, match="^not a reply line: ") as caught:
        decode_reply(line)
    assert str(caught.value) == f"not a reply line: {line[:80]!r}"


@pytest.mark.parametrize(
    ("reply", "refusal"),
    [
        ({"status": "rejected", "error": AUTH_WRONG}, AUTH_WRONG),
        ({"status": "rejected", "error": AUTH_MISSING}, AUTH_MISSING),
        (
            {"status": "rejected", "error": TOO_MANY_CONNECTIONS + " (limit 64)"},
            TOO_MANY_CONNECTIONS + " (limit 64)",
        ),
        ({"status": "rejected", "error": "confidence: must be between 0 and 1"}, None),
        ({"status": "rejected"}, None),
        ({"status": "accepted", "error": AUTH_WRONG}, None),
        ({"error": AUTH_WRONG}, None),
    ],
)
def test_refusals_are_told_from_validation_errors(
    reply: dict[str, str], refusal: str | None
) -> None:
    assert refusal_of(reply) == refusal


@pytest.mark.parametrize(
    ("line", "limit", "shown"),
    [
        (b"short line\r\n", 120, "short line"),
        (b"\r\nlead", 120, "\r\nlead"),  # only the end is trimmed
        (b"TAX \r\n", 120, "TAX "),  # ... and only of line ends
        (b"TAX\n", 120, "TAX"),
        (b"x" * 10, 10, "x" * 10),  # exactly the limit: whole
        (b"x" * 11, 10, "x" * 7 + "..."),
        (b"caf\xc3\xa9 \xff!", 120, "caf\u00e9 \ufffd!"),  # bad UTF-8 replaced, not raised
        ("\U0001f600".encode() * 10, 10, "\U0001f600" * 10),  # 40 bytes, 10 characters
    ],
)
def test_excerpt_is_a_short_printable_rendering(line: bytes, limit: int, shown: str) -> None:
    assert excerpt(line, limit) == shown


def test_excerpt_defaults_to_the_excerpt_length() -> None:
    assert excerpt(b"y" * 500) == "y" * (EXCERPT_CHARS - 3) + "..."
    assert excerpt(b"y" * EXCERPT_CHARS) == "y" * EXCERPT_CHARS


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


@pytest.mark.long
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


EDGE_EVENT = {
    "timestamp": "2024-05-01T10:00:00Z",
    "worker_id": "W",
    "workstation_id": "S" * 64,
    "event_type": "working",
    "confidence": 0.0,
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"confidence": 1.0},
        {"event_type": "product_count", "count": 1},
        {"event_type": "product_count", "count": MAX_COUNT},
        {"count": 0, "model_version": "m", "camera_id": "C" * 64},
    ],
)
def test_fast_path_takes_valid_lines_at_the_edges(changes: dict[str, object]) -> None:
    """Ids of 1 and 64 characters, confidence 0 and 1, counts 1 and the int64 maximum."""
    line = json.dumps({**EDGE_EVENT, **changes}).encode()
    fast = _fast_row(line, UTC, 7)
    assert fast is not None
    assert fast == prepare_row(parse_event(line), 7)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"confidence": 1.5}, "confidence: must be between 0 and 1, got 1.5"),
        ({"confidence": 2}, "confidence: must be between 0 and 1, got 2"),
        ({"confidence": -0.5, "count": 0}, "confidence: must be between 0 and 1, got -0.5"),
        ({"count": -1}, "count: must be 0 or more, got -1"),
        ({"count": 1}, "count: must be 0 or absent for working, got 1"),
        ({"event_type": "product_count"}, "count: product_count needs count >= 1, got 0"),
        ({"event_type": "product_count", "count": 2**63}, f"count: must be at most {MAX_COUNT}"),
        ({"model_version": ""}, "model_version: string should have at least 1 character"),
        ({"worker_id": "W" * 65}, "worker_id: string should have at most 64 characters"),
    ],
)
def test_fast_path_leaves_invalid_lines_to_pydantic(changes: dict[str, object], error: str) -> None:
    line = json.dumps({**EDGE_EVENT, **changes}).encode()
    assert _fast_row(line, UTC, 0) is None
    with pytest.raises(EventError) as caught:
        parse_row(line, UTC, 0)
    assert str(caught.value).startswith(error)


@pytest.mark.parametrize("changes", [{"model_version": " m1 "}, {"camera_id": "caméra"}])
def test_fast_path_leaves_ids_pydantic_would_change_to_it(changes: dict[str, object]) -> None:
    line = json.dumps({**EDGE_EVENT, **changes}, ensure_ascii=False).encode()
    assert _fast_row(line, UTC, 0) is None
    assert parse_row(line, UTC, 0) == prepare_row(parse_event(line), 0)


@pytest.mark.parametrize("line", [b"", b"  \t "])
def test_an_empty_line_is_named(line: bytes) -> None:
    with pytest.raises(EventError) as caught:
        parse_row(line, UTC, 0)
    assert str(caught.value) == "line: empty (one JSON object per line)"


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


# --- the dedup hash pinned to hand-written canonical text (docs/testing.md) -------------------

PINNED = [
    (
        '{"timestamp":"2026-03-02T10:00:00Z","worker_id":"W1","workstation_id":"S1",'
        '"event_type":"working","confidence":0.9}',
        UTC,
        '[1772445600000000,"W1","S1","working","0.9",0,null]',
        "2dff7b56bdd9d0e7b7818e93d1779ea80bea3ed5a558c76f3191947db878e618",
    ),
    (
        '{"timestamp":"2026-03-02T11:00:00.000001+01:00","worker_id":"W1","workstation_id":"S1",'
        '"event_type":"product_count","confidence":1,"count":12,"model_version":"yolo-v8",'
        '"camera_id":"CAM-7"}',
        UTC,
        '[1772445600000001,"W1","S1","product_count","1.0",12,"yolo-v8"]',
        "db2d20fbb9d409319baf0cb2abbd4395b5ce21f90eca75b1eadfea0d92d0fa00",
    ),
    (
        '{"timestamp":"2026-07-01T08:00:00","worker_id":"Zoë","workstation_id":"S\\"1",'
        '"event_type":"idle","confidence":1e-7,"model_version":"modèle-β"}',
        ZoneInfo("Europe/Lisbon"),
        '[1782889200000000,"Zo\\u00eb","S\\"1","idle","1e-07",0,"mod\\u00e8le-\\u03b2"]',
        "985ddaaf5dea300ad3238f4100e64c102da78c05adaf05e8e8e5c2dbe806e5ed",
    ),
    (
        '{"timestamp":"2026-07-01T03:00:00.25-04:00","worker_id":"W1","workstation_id":"S1",'
        '"event_type":"absent","confidence":0.30000000000000004,"count":0}',
        UTC,
        '[1782889200250000,"W1","S1","absent","0.30000000000000004",0,null]',
        "bdd02e07320d0a87bb650b5830e205eb14a64b4737fd85ff62ddff238480c6ac",
    ),
]


@pytest.mark.parametrize(("line", "tz", "canonical", "digest"), PINNED)
def test_event_hash_is_the_sha256_of_the_documented_canonical_text(
    line: str, tz: tzinfo, canonical: str, digest: str
) -> None:
    """The canonical text and digest were written by hand (DESIGN.md's dedup key: UTC µs, ids,
    type, confidence as the repr of the parsed float, count, model_version; camera_id left out)
    and are pinned, so a change of the canonical form cannot pass unnoticed."""
    event = parse_event(line, tz)
    assert event.canonical() == canonical
    assert event.event_hash() == digest
    # Both paths of the listener give that hash: the fast path for plain lines, pydantic for
    # the rest (the third line's ids are not ASCII).
    assert parse_row(line.encode(), tz, 0).event_hash == digest
    fast = _fast_row(line.encode(), tz, 0)
    assert (fast is None) == (not line.isascii())


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:15:42.2332586+02:00",  # pydantic's path (seven decimals)
        "0001-01-01T00:15:42+02:00",  # the fast path's spelling
        "9999-12-31T23:50:00-02:00",  # after year 9999 in UTC
    ],
)
def test_a_timestamp_outside_years_1_to_9999_in_utc_is_rejected_cleanly(timestamp: str) -> None:
    """Found by `make mutation` (hypothesis seed 0): the conversion to UTC raised
    OverflowError, which is not an EventError, so the writer would have failed the whole
    batch instead of rejecting one line."""
    line = json.dumps({**EDGE_EVENT, "timestamp": timestamp}).encode()
    with pytest.raises(EventError, match="timestamp"):
        parse_row(line, UTC, 0)
