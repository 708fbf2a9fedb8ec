"""Arbitrary bytes over TCP: every line gets exactly one reply, and the listener lives on."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory_tui.ingest.listener import Listener
from tests.ingest.conftest import ThreadedListener, make_event, make_settings

MAX_LINE = 256
STATUSES = {"accepted", "duplicate", "rejected", "authenticated"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedListener]:
    path: Path = tmp_path_factory.mktemp("fuzz")
    listener = Listener(make_settings(path, ingest__max_line_bytes=MAX_LINE), batch_delay_s=0.002)
    with ThreadedListener(listener) as running:
        yield running


def exchange(port: int, data: bytes) -> list[bytes]:
    """Send `data`, half-close, and read every reply until the listener closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(1 << 16):
            received += chunk
    assert received == b"" or received.endswith(b"\n")
    return received.splitlines()


def expected_lines(data: bytes) -> int:
    """How many lines the wire carries: newline-terminated ones plus an unterminated tail."""
    parts = data.split(b"\n")
    return len(parts) - (1 if parts[-1] == b"" else 0)


FRAGMENT_SAMPLES = [
    b"\n",
    b"\r\n",
    make_event(1) + b"\n",
    make_event(2, count=3, event_type="product_count") + b"\n",
    b'{"auth":"x"}\n',
    b"{}",
    b"[",
    b"\xff\xfe",
    b"x" * (MAX_LINE + 1),
]
FRAGMENTS = st.one_of(st.binary(max_size=2 * MAX_LINE), st.sampled_from(FRAGMENT_SAMPLES))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(FRAGMENTS, max_size=12).map(b"".join))
def test_arbitrary_bytes_get_one_reply_per_line(live: ThreadedListener, data: bytes) -> None:
    replies = exchange(live.listener.port, data)
    assert len(replies) == expected_lines(data)
    for reply in replies:
        decoded = json.loads(reply)
        assert decoded["status"] in STATUSES
        if decoded["status"] == "rejected":
            assert decoded["error"]


def test_a_listener_serves_on_after_every_kind_of_bad_input(tmp_path: Path) -> None:
    """Self-contained (not "after the test above", which random order may run later): a fresh
    listener gets every fragment, alone, all at once, and cut at every few bytes over several
    connections, some dropped mid-line; then a new connection's valid event is accepted."""
    samples = [
        b"\xff" * 3,
        b"\x00\x01\x02",
        b"{" * (2 * MAX_LINE),
        *FRAGMENT_SAMPLES,
    ]
    everything = b"".join(samples)
    listener = Listener(
        make_settings(tmp_path, ingest__max_line_bytes=MAX_LINE), batch_delay_s=0.002
    )
    with ThreadedListener(listener) as running:
        port = running.listener.port
        for data in [*samples, everything]:
            assert len(exchange(port, data)) == expected_lines(data)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            for start in range(0, len(everything), 7):  # many small packets
                sock.sendall(everything[start : start + 7])
            sock.shutdown(socket.SHUT_WR)
            received = b"".join(iter(lambda: sock.recv(1 << 16), b""))
        assert len(received.splitlines()) == expected_lines(everything)
        for cut in (1, len(everything) // 2, len(everything) - 1):  # gone mid-line
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(everything[:cut])
        replies = exchange(port, make_event(999_999) + b"\n")
        assert [json.loads(reply)["status"] for reply in replies] == ["accepted"]
