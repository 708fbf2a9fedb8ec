"""The listener over real TCP sockets on 127.0.0.1: replies, validation, dedup, limits, auth."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import pytest

from factory_tui.ingest import protocol, writer
from factory_tui.ingest.listener import Listener, ListenerError, PortInUseError
from factory_tui.models import NewEventRow, to_utc_us
from factory_tui.storage import SqliteStore, Store
from tests.ingest.conftest import Peer, make_event, make_settings, wait_until

Start = Callable[..., Any]


def stored(listener: Listener) -> Store:
    """A second connection on the listener's database (read-only), as a viewer would open."""
    return SqliteStore.open(listener.store_path, read_only=True)


async def test_each_line_gets_one_reply_in_order(listener: Listener, peer: Peer) -> None:
    lines = [make_event(1), b"not json", make_event(2), make_event(1)]
    await peer.send(b"\n".join(lines) + b"\n")
    replies = await peer.replies(4)
    assert [reply["status"] for reply in replies] == [
        "accepted",
        "rejected",
        "accepted",
        "duplicate",
    ]
    with stored(listener) as store:
        assert store.count_events() == 2


async def test_crlf_lines_get_one_reply_each(listener: Listener, peer: Peer) -> None:
    """Windows line ends: `\\r\\n` is a line end like `\\n`, alone or mixed in one stream."""
    await peer.send(
        make_event(1) + b"\r\n" + make_event(2) + b"\r\n" + b"nope\r\n" + make_event(1) + b"\r\n"
    )
    assert [reply["status"] for reply in await peer.replies(4)] == [
        "accepted",
        "accepted",
        "rejected",
        "duplicate",
    ]
    # Mixed, with a CRLF cut between two packets and a bad line whose error must not carry
    # the carriage return.
    await peer.send(make_event(3) + b"\n" + make_event(4) + b"\r")
    await peer.send(b"\n" + b'{"oops": 1}\r\n' + make_event(2) + b"\n" + make_event(5) + b"\r\n")
    replies = await peer.replies(5)
    assert [reply["status"] for reply in replies] == [
        "accepted",
        "accepted",
        "rejected",
        "duplicate",
        "accepted",
    ]
    assert replies[2]["error"].startswith("oops: unknown field")
    assert "\r" not in replies[2]["error"]
    with stored(listener) as store:
        assert store.count_events() == 5
        timestamps = sorted(record.ts_us for record in store.iter_since(0))
    # Every stored event is one of ours, its timestamp read without the \r.
    assert timestamps == [to_utc_us(datetime(2024, 5, 1, 10, tzinfo=UTC)) + n for n in range(1, 6)]


async def test_same_event_in_several_spellings_is_one_event(listener: Listener, peer: Peer) -> None:
    spellings = [
        b'{"timestamp":"2024-05-01T10:00:00Z","worker_id":"W1","workstation_id":"S1",'
        b'"event_type":"working","confidence":0.9}',
        # another offset of the same instant, other key order, whitespace, 0.90
        b'{ "confidence" : 0.90, "event_type": "working", "workstation_id": "S1",\t'
        b'"worker_id": "W1", "timestamp": "2024-05-01T12:00:00+02:00" }',
        # naive: read in the configured zone (UTC); an explicit count of 0
        b'{"timestamp":"2024-05-01T10:00:00.000000","worker_id":"W1","workstation_id":"S1",'
        b'"event_type":"working","confidence":9e-1,"count":0}',
        b'{"timestamp":"2024-05-01T10:00:00+00:00","worker_id":" W1 ","workstation_id":"S1",'
        b'"event_type":"working","confidence":0.9000}\r',
    ]
    # All in one batch first: inside one transaction, the first copy wins.
    await peer.send(b"\n".join(spellings) + b"\n")
    first = await peer.replies(len(spellings))
    assert [reply["status"] for reply in first] == ["accepted"] + ["duplicate"] * 3
    # And again, each in a later batch.
    for line in spellings:
        await peer.send(line + b"\n")
        assert (await peer.replies(1))[0]["status"] == "duplicate"
    with stored(listener) as store:
        assert store.count_events() == 1
    stats = listener.stats()
    assert (stats.accepted, stats.duplicates, stats.rejected) == (1, 7, 0)


BAD_LINES: list[tuple[bytes, str]] = [
    (b"\xff\xfe{}", "invalid UTF-8"),
    (b'{"timestamp": "2024-05-01T10:00:00Z",', "invalid JSON"),
    (b"[1, 2, 3]", "line must be a JSON object"),
    (b'"just a string"', "line must be a JSON object"),
    (b"42", "line must be a JSON object"),
    (b"", "line: empty"),
    (b"   ", "line: empty"),
    (make_event(confidence=1.5), "confidence:"),
    (make_event(confidence="high"), "confidence:"),
    (make_event(event_type="sleeping"), "event_type:"),
    (make_event(timestamp="yesterday"), "timestamp:"),
    (make_event(timestamp=1714557600), "timestamp:"),
    (make_event(event_type="product_count"), "count:"),
    (make_event(count=-1), "count:"),
    (make_event(event_type="product_count", count=2**70), "count: must be at most"),
    (make_event(wokrer_id="W1"), "wokrer_id: unknown field"),
    (b'{"worker_id":"W1","workstation_id":"S1","event_type":"idle","confidence":1}', "timestamp:"),
    (make_event(worker_id="W99"), "worker_id: 'W99' is not in the roster"),
    (make_event(workstation_id="S99"), "workstation_id: 'S99' is not in the roster"),
]


@pytest.mark.parametrize(("line", "expected"), BAD_LINES)
async def test_bad_lines_are_rejected_and_the_connection_stays_usable(
    listener: Listener, peer: Peer, line: bytes, expected: str
) -> None:
    await peer.send(line + b"\n" + make_event(7) + b"\n")
    bad, good = await peer.replies(2)
    assert bad["status"] == "rejected"
    assert expected in bad["error"]
    assert "\n" not in bad["error"]
    assert good == {"status": "accepted"}
    recent = listener.stats().recent_rejections
    assert recent[-1].error == bad["error"]
    assert recent[-1].peer.startswith("127.0.0.1:")


async def test_oversize_line_is_discarded_while_streaming_then_next_line_works(
    start_listener: Start,
) -> None:
    listener: Listener = await start_listener(ingest__max_line_bytes=1024)
    peer = await Peer.open(listener.port)
    # 200 KiB with no newline, in pieces: the listener must answer before the line even ends.
    for _ in range(50):
        await peer.send(b"x" * 4096)
    (reply,) = await peer.replies(1)
    assert reply["status"] == "rejected"
    assert "longer than 1024 bytes" in reply["error"]
    await peer.send(b"y" * 4096 + b"\n" + make_event(1) + b"\n")
    assert await peer.replies(1) == [{"status": "accepted"}]
    # A line of exactly the limit is still a line.
    exact = make_event(2, camera_id="c")
    exact = exact[:-1] + b" " * (1024 - len(exact)) + b"}"
    assert len(exact) == 1024
    await peer.send(exact + b"\n")
    assert await peer.replies(1) == [{"status": "accepted"}]
    await peer.close()


async def test_concurrent_connections_are_batched_together(start_listener: Start) -> None:
    listener: Listener = await start_listener()
    peers = [await Peer.open(listener.port) for _ in range(8)]

    async def camera(index: int, peer: Peer) -> list[str]:
        lines = [make_event(index * 1000 + n) for n in range(300)]
        await peer.send(b"\n".join(lines) + b"\n")
        return [reply["status"] for reply in await peer.replies(300)]

    results = await asyncio.gather(*(camera(i, p) for i, p in enumerate(peers)))
    assert all(statuses == ["accepted"] * 300 for statuses in results)
    assert listener.stats().connections == 8
    with stored(listener) as store:
        assert store.count_events() == 2400
    for peer in peers:
        await peer.close()


async def test_unknown_ids_are_registered_with_auto_register(start_listener: Start) -> None:
    listener: Listener = await start_listener(ingest__auto_register=True)
    replies = await listener.submit([make_event(1, worker_id="W77", workstation_id="S77")])
    assert replies == [{"status": "accepted"}]
    with stored(listener) as store:
        assert "W77" in store.workers()
        assert "S77" in store.workstations()


async def test_roster_is_reread_before_an_unknown_id_is_rejected(listener: Listener) -> None:
    assert (await listener.submit([make_event(1, worker_id="W8")]))[0]["status"] == "rejected"
    with SqliteStore.open(listener.store_path) as other:
        other.register_ids(["W8"], [])
    assert await listener.submit([make_event(1, worker_id="W8")]) == [{"status": "accepted"}]


async def test_configured_roster_is_written_to_the_store(listener: Listener) -> None:
    with stored(listener) as store:
        assert store.workers()["W1"] == "Ana Silva"
        assert store.owner() is not None
        assert store.owner()[2] == listener.port  # type: ignore[index]


async def test_one_connection_over_the_limit_gets_one_line_and_is_closed(
    start_listener: Start,
) -> None:
    listener: Listener = await start_listener(ingest__max_connections=2)
    first, second = await Peer.open(listener.port), await Peer.open(listener.port)
    await first.send(make_event(1) + b"\n")
    await second.send(make_event(2) + b"\n")
    await first.replies(1)
    await second.replies(1)
    third = await Peer.open(listener.port)
    (reply,) = await third.replies(1)
    assert reply["status"] == "rejected"
    assert "too many connections" in reply["error"]
    assert await third.at_eof()
    # The two that fit keep working; when one leaves, a new one fits.
    await first.close()
    await wait_until(lambda: listener.stats().connections == 1)
    fourth = await Peer.open(listener.port)
    await fourth.send(make_event(3) + b"\n")
    assert await fourth.replies(1) == [{"status": "accepted"}]
    await second.close()
    await third.close()
    await fourth.close()


async def test_half_sent_line_times_out(start_listener: Start) -> None:
    listener: Listener = await start_listener(ingest__idle_timeout_s=0.3)
    peer = await Peer.open(listener.port)
    await peer.send(make_event(1) + b"\n" + make_event(2)[:20])
    accepted, timed_out = await peer.replies(2)
    assert accepted == {"status": "accepted"}
    assert timed_out["status"] == "rejected"
    assert "not finished within 0.3 s" in timed_out["error"]
    assert await peer.at_eof()
    await peer.close()


async def test_last_line_without_newline_is_answered_at_eof(listener: Listener, peer: Peer) -> None:
    await peer.send(make_event(1) + b"\n" + make_event(2))
    peer.writer.write_eof()
    assert await peer.replies(2) == [{"status": "accepted"}] * 2
    assert await peer.at_eof()


async def test_token_auth(start_listener: Start) -> None:
    listener: Listener = await start_listener(ingest__token="s3cret")
    good = await Peer.open(listener.port)
    await good.send(b'{"auth":"s3cret"}\n' + make_event(1) + b"\n")
    assert await good.replies(2) == [{"status": "authenticated"}, {"status": "accepted"}]
    await good.close()

    for first_line, error in [
        (b'{"auth":"guess"}', "auth: wrong token"),
        (make_event(2), "auth: first line must be"),
        (b'{"auth": 123}', "auth: first line must be"),
    ]:
        bad = await Peer.open(listener.port)
        await bad.send(first_line + b"\n" + make_event(3) + b"\n")
        (reply,) = await bad.replies(1)
        assert reply["status"] == "rejected"
        assert error in reply["error"]
        assert await bad.at_eof()
        await bad.close()
    with stored(listener) as store:
        assert store.count_events() == 1


async def test_auth_line_without_a_configured_token_is_answered(
    listener: Listener, peer: Peer
) -> None:
    await peer.send(b'{"auth":"anything"}\n' + make_event(1) + b"\n")
    assert await peer.replies(2) == [{"status": "authenticated"}, {"status": "accepted"}]


async def test_refuses_public_address_without_token(tmp_path: Path) -> None:
    listener = Listener(make_settings(tmp_path, ingest__host="0.0.0.0"))
    with pytest.raises(ListenerError, match="without an ingest token"):
        await listener.start()
    assert not (tmp_path / "factory.db").exists()


async def test_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listener = Listener(make_settings(tmp_path, ingest__port=port))
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            await listener.start()
    # Nothing was written: a second console that finds the port taken can be a viewer.
    assert not (tmp_path / "factory.db").exists()


async def test_a_database_that_cannot_be_opened_is_one_sentence(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, store__path=tmp_path / "missing" / "factory.db")
    with pytest.raises(ListenerError, match="folder .*missing does not exist"):
        await Listener(settings).start()


async def test_submit_takes_the_same_path_as_tcp(listener: Listener, peer: Peer) -> None:
    replies = await listener.submit([make_event(1), b"{", make_event(1), b"x" * 70_000])
    assert [reply["status"] for reply in replies] == [
        "accepted",
        "rejected",
        "duplicate",
        "rejected",
    ]
    assert "longer than 65536 bytes" in replies[3]["error"]
    await peer.send(make_event(1) + b"\n")
    assert await peer.replies(1) == [{"status": "duplicate"}]
    assert listener.stats().recent_rejections[0].peer == "in-process"


async def test_stats_count_and_rate(listener: Listener) -> None:
    await listener.submit([make_event(n) for n in range(50)] + [b"[]"])
    stats = listener.stats()
    assert (stats.accepted, stats.duplicates, stats.rejected, stats.pending) == (50, 0, 1, 0)
    assert stats.rate_per_s > 0
    assert stats.recent_rejections[-1].line == "[]"


async def test_stop_answers_every_line_already_received(start_listener: Start) -> None:
    # A long batch delay holds the lines in the queue, so stop() is what commits them.
    listener: Listener = await start_listener(batch_delay_s=30.0)
    peer = await Peer.open(listener.port)
    await peer.send(b"\n".join(make_event(n) for n in range(50)) + b"\n")
    await wait_until(lambda: listener.stats().pending == 50)
    await listener.stop()
    assert await peer.replies(50) == [{"status": "accepted"}] * 50
    assert await peer.at_eof()
    with stored(listener) as store:
        assert store.count_events() == 50
    await peer.close()
    with pytest.raises(ListenerError):
        await listener.submit([make_event(99)])


async def test_rejection_of_odd_text_is_one_valid_json_line(listener: Listener, peer: Peer) -> None:
    await peer.send(b'{"weird": "\\u2028\xc3\xa9"}\n')
    (reply,) = await peer.replies(1)
    assert reply["status"] == "rejected"
    assert json.loads(json.dumps(reply)) == reply


async def test_a_row_sqlite_cannot_store_costs_only_its_own_line(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation lets no such row through; the writer must still isolate one if it happens.
    real = protocol.parse_row

    def parse_with_a_bad_row(line: bytes, tz: tzinfo, received_us: int) -> NewEventRow:
        row = real(line, tz, received_us)
        return (2**64, *row[1:]) if line == make_event(2) else row

    monkeypatch.setattr(writer, "parse_row", parse_with_a_bad_row)
    replies = await listener.submit([make_event(1), make_event(2), make_event(3)])
    assert replies[0] == replies[2] == {"status": "accepted"}
    assert replies[1]["status"] == "rejected"
    assert replies[1]["error"].startswith("line: cannot be stored")
    with stored(listener) as store:
        assert store.count_events() == 2


async def test_a_batch_that_cannot_be_committed_is_not_acknowledged(
    listener: Listener, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(rows: object) -> list[str]:
        raise sqlite3.OperationalError("database is locked")

    for insert in ("insert_rows", "insert_fresh_rows"):
        monkeypatch.setattr(listener._writer.store, insert, locked)
    with pytest.raises(ListenerError, match="database is locked"):
        await listener.submit([make_event(1)])
    # A camera gets no reply at all, only a dropped connection: it will send again.
    await peer.send(make_event(2) + b"\n")
    assert await peer.reader.read() == b""
    monkeypatch.undo()
    assert await listener.submit([make_event(1), make_event(2)]) == [{"status": "accepted"}] * 2


async def test_the_next_batch_is_validated_while_one_is_stored_and_replies_keep_order(
    start_listener: Start,
) -> None:
    """Two stages: batch B is prepared (parse thread) while batch A is stored (writer thread);
    batch C waits in its queue until B goes to the writer; replies come in line order, and a
    line of B that repeats one of A is a duplicate (A committed first). Batches are cut by
    size alone (two lines), however the lines are split into reads."""
    listener: Listener = await start_listener(batch_max_lines=2, batch_delay_s=30.0)
    release = threading.Event()
    prepared: list[int] = []
    stored_batches: list[int] = []
    prepare, store_batch = listener._writer.prepare, listener._writer.store_batch

    def counted_prepare(lines: Any) -> writer.Prepared:
        prepared.append(len(lines))
        return prepare(lines)

    def held_store(batch: writer.Prepared) -> writer.BatchOutcome:
        stored_batches.append(len(batch.lines))
        if len(stored_batches) == 1:
            release.wait(10)
        return store_batch(batch)

    listener._writer.prepare = counted_prepare  # type: ignore[method-assign]
    listener._writer.store_batch = held_store  # type: ignore[method-assign]
    peer = await Peer.open(listener.port)
    try:
        await peer.send(make_event(1) + b"\n" + make_event(2) + b"\n")
        await wait_until(lambda: stored_batches == [2])
        await peer.send(make_event(1) + b"\n" + make_event(3) + b"\n")
        await wait_until(lambda: prepared == [2, 2])
        await peer.send(make_event(4) + b"\n" + make_event(5) + b"\n")
        await wait_until(lambda: listener.stats().pending == 6)
        assert stored_batches == [2]
        assert prepared == [2, 2]  # C waits in its queue for B to be stored
        release.set()
        replies = await peer.replies(6)
    finally:
        release.set()
        await peer.close()
    statuses = [reply["status"] for reply in replies]
    assert statuses == ["accepted", "accepted", "duplicate", "accepted", "accepted", "accepted"]
    assert stored_batches == prepared == [2, 2, 2]
