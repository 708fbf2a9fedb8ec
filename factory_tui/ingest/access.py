"""Who may talk to the ingest listener, and how fast.

The access rules, each small and testable on its own: TLS contexts for the listener and for
`send`/`simulate` (`server_tls_context`, `client_tls_context`), the IP allow-list
(`AllowList`), connections counted per address (`PeerCounts`), the per-connection rate limit
(`TokenBucket`, `HeldLines`), and `TlsHandshake`, the protocol a TLS listener accepts with: it
screens the peer's address before any TLS byte is parsed, runs the handshake, and only then
hands the encrypted transport to the real connection, so a failed handshake is seen (and
audited) with the address it came from.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol

from factory_tui.config import IngestSettings
from factory_tui.ingest.protocol import Line, rejected

BURST_S: Final = 0.1
"""A token bucket holds this many seconds' worth of tokens: bursts stay short, so a peer is
held to its rate within a few percent over a second or more."""


class AccessError(Exception):
    """A certificate, key or CA file cannot be used; the message says which and why."""


# --- TLS ----------------------------------------------------------------------------------------


def server_tls_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """The listener's TLS context (TLS 1.2 or later); with `client_ca`, peers must present a
    certificate it signed (mTLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key, "ingest.tls_cert / ingest.tls_key")
    if client_ca is not None:
        _load_ca(context, client_ca, "ingest.tls_client_ca")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_tls_context(
    cafile: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A camera's TLS context: the listener is checked against `cafile` (default: the system's
    CAs); `cert` and `key` are presented when the listener asks for a client certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cafile is not None:
        _load_ca(context, cafile, "--cafile")
    if (cert is None) != (key is None):
        raise AccessError("--cert and --key go together: give both or neither")
    if cert is not None and key is not None:
        _load_chain(context, cert, key, "--cert / --key")
    return context


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path, names: str) -> None:
    for path in (cert, key):
        if not Path(path).is_file():
            raise AccessError(f"{names}: {path} does not exist")
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as error:
        raise AccessError(
            f"{names}: cannot use {cert} with {key} ({_reason(error)}); both must be PEM and "
            "the key must match the certificate"
        ) from None


def _load_ca(context: ssl.SSLContext, cafile: Path, name: str) -> None:
    if not Path(cafile).is_file():
        raise AccessError(f"{name}: {cafile} does not exist")
    try:
        context.load_verify_locations(cafile=cafile)
    except (ssl.SSLError, OSError) as error:
        raise AccessError(
            f"{name}: {cafile} holds no usable PEM certificate ({_reason(error)})"
        ) from None


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return error.reason.lower().replace("_", " ")
    return str(getattr(error, "strerror", None) or error)


def tls_subject(transport: asyncio.BaseTransport) -> str:
    """The peer certificate's subject as `CN=..., O=...` ('' without TLS or a certificate)."""
    cert = transport.get_extra_info("peercert")
    if not cert:
        return ""
    parts = [f"{name}={value}" for rdn in cert.get("subject", ()) for name, value in rdn]
    return ", ".join(parts)


def security_of(transport: asyncio.BaseTransport, subject: str) -> str:
    """How a connection is secured: plain TCP, TLS, or TLS with a client certificate."""
    if transport.get_extra_info("sslcontext") is None:
        return "plain TCP"
    return f"TLS, client certificate {subject}" if subject else "TLS"


def peer_of(transport: asyncio.BaseTransport) -> tuple[str, str]:
    """(address, `address:port`) of the transport's peer."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple):
        return str(peer[0]), f"{peer[0]}:{peer[1]}"
    return str(peer), str(peer)


# --- the allow-list and per-address counts ------------------------------------------------------


class AllowList:
    """Addresses and networks allowed to connect; an empty list allows every address."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self._networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def allows(self, address: str) -> bool:
        """True when `address` (an IP, possibly IPv4-mapped IPv6) is on the list."""
        if not self._networks:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)


class PeerCounts:
    """Open connections per address."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, address: str) -> int:
        """Count one more connection from `address`; returns how many it now has."""
        count = self._counts.get(address, 0) + 1
        self._counts[address] = count
        return count

    def remove(self, address: str) -> None:
        """One connection from `address` has closed."""
        count = self._counts.get(address, 0) - 1
        if count > 0:
            self._counts[address] = count
        else:
            self._counts.pop(address, None)

    def __getitem__(self, address: str) -> int:
        return self._counts.get(address, 0)


# --- the rate limit -------------------------------------------------------------------------------


class TokenBucket:
    """`rate_per_s` tokens a second, holding at most `burst`. Time is an argument, so the
    bucket is exactly testable."""

    def __init__(self, rate_per_s: float, burst: float | None = None, *, now: float = 0.0) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be above 0, got {rate_per_s:g}")
        self.rate_per_s = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s * BURST_S)
        self._tokens = self.burst
        self._at = now

    def grant(self, wanted: int, now: float) -> int:
        """Spend up to `wanted` whole tokens; returns how many were spent."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def wait_s(self) -> float:
        """How long until the next whole token, as of the last `grant`."""
        return max(0.0, (1 - self._tokens) / self.rate_per_s)


class HeldLines:
    """A connection's lines read past its rate (`[ingest] max_events_per_s`), handed on as the
    token bucket refills. The connection stops reading while any are held, so this holds at
    most one read chunk, and the peer is slowed by TCP, not dropped."""

    def __init__(self, rate_per_s: float, *, now: float) -> None:
        self.bucket = TokenBucket(rate_per_s, now=now)
        self._lines: deque[Line] = deque()
        self._bytes = 0

    @classmethod
    def per_connection(cls, rate_per_s: float | None, now: float) -> HeldLines | None:
        """The held lines of one connection (None: no limit configured)."""
        return None if rate_per_s is None else cls(rate_per_s, now=now)

    def __len__(self) -> int:
        return len(self._lines)

    def hold(self, items: Sequence[Line], nbytes: int) -> None:
        """Queue lines just read (`nbytes` of input)."""
        self._lines.extend(items)
        self._bytes += nbytes

    def release(self, now: float, *, everything: bool = False) -> tuple[list[Line], int]:
        """The lines the bucket lets through now (all of them with `everything`), and their
        share of the input bytes."""
        count = len(self._lines) if everything else self.bucket.grant(len(self._lines), now)
        if not count:
            return [], 0
        share = self._bytes if count == len(self._lines) else self._bytes * count // len(self)
        self._bytes -= share
        return [self._lines.popleft() for _ in range(count)], share

    def wait_s(self) -> float:
        """How long until the next line may go."""
        return self.bucket.wait_s()


# --- the TLS handshake ahead of a connection ----------------------------------------------------


class TlsGate(Protocol):
    """What `TlsHandshake` asks of its listener."""

    def screen(self, address: str, peer: str) -> str | None:
        """The refusal a peer gets before TLS (its address is not allowed, too many
        handshakes), or None."""

    def handshake_failed(self, peer: str, reason: str) -> None:
        """A TLS handshake failed (a plain-TCP peer, a refused client certificate, a timeout)."""

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a handshake task until it ends (stop cancels those still running)."""


class TlsHandshake(asyncio.Protocol):
    """Accepts one TCP connection of a TLS listener: screen, handshake, hand over."""

    def __init__(
        self,
        gate: TlsGate,
        context: ssl.SSLContext,
        make_protocol: Callable[[], asyncio.Protocol],
        timeout_s: float,
    ) -> None:
        self._gate = gate
        self._context = context
        self._make_protocol = make_protocol
        self._timeout_s = timeout_s

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        # Nothing is read until the handshake takes the transport over.
        transport.pause_reading()
        address, peer = peer_of(transport)
        refusal = self._gate.screen(address, peer)
        if refusal is not None:
            transport.write(rejected(refusal))
            transport.close()
            return
        task = asyncio.get_running_loop().create_task(self._handshake(transport, peer))
        self._gate.track(task)

    def data_received(self, data: bytes) -> None:
        """Nothing arrives here: reading is paused until the TLS protocol takes over."""

    async def _handshake(self, transport: asyncio.Transport, peer: str) -> None:
        loop = asyncio.get_running_loop()
        front = _TlsFront()
        try:
            tls = await loop.start_tls(
                transport,
                front,
                self._context,
                server_side=True,
                ssl_handshake_timeout=self._timeout_s,
            )
        except asyncio.CancelledError:
            transport.abort()
            raise
        except Exception as error:  # an SSL error, a reset, a timeout: the peer is not let in
            transport.abort()
            self._gate.handshake_failed(peer, _handshake_reason(error))
            return
        if tls is None:  # the peer went away as the handshake ended
            transport.abort()
            return
        front.hand_over(self._make_protocol(), tls)


class _TlsFront(asyncio.Protocol):
    """What the TLS transport calls, in front of the connection.

    asyncio hands the first decrypted bytes (even the peer's EOF) to the protocol as the
    handshake completes, before `start_tls` returns the transport the connection needs: they
    are kept here and replayed once the connection is made. After that every call is passed
    on, except that EOF is never answered "keep the socket open" (TLS cannot half-close, and
    asyncio warns on every such answer).
    """

    def __init__(self) -> None:
        self._target: asyncio.Protocol | None = None
        self._early: list[bytes] = []
        self._eof = False
        self._lost: tuple[Exception | None] | None = None

    def hand_over(self, target: asyncio.Protocol, transport: asyncio.Transport) -> None:
        """Make `target` the connection of `transport`, with whatever came meanwhile."""
        self._target = target
        target.connection_made(transport)
        early, self._early = self._early, []
        for data in early:
            target.data_received(data)
        if self._eof:
            target.eof_received()
        if self._lost is not None:
            target.connection_lost(self._lost[0])

    def data_received(self, data: bytes) -> None:
        if self._target is None:
            self._early.append(data)
        else:
            self._target.data_received(data)

    def eof_received(self) -> bool:
        if self._target is None:
            self._eof = True
        else:
            self._target.eof_received()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._target is None:
            self._lost = (exc,)
        else:
            self._target.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._target is not None:
            self._target.pause_writing()

    def resume_writing(self) -> None:
        if self._target is not None:
            self._target.resume_writing()


def _handshake_reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        reason = error.reason or str(error)
        return f"TLS handshake failed: {reason.lower().replace('_', ' ')}"
    if isinstance(error, TimeoutError):
        return "TLS handshake failed: timed out"
    return f"TLS handshake failed: {type(error).__name__} {error}".rstrip()


def describe_tls(settings: IngestSettings) -> str:
    """How the listener is secured, in a few words, for its start-up log line."""
    if settings.tls_cert is None:
        return "plain TCP"
    return "TLS with client certificates" if settings.tls_client_ca else "TLS"
