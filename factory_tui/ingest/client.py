"""The camera-side client: send JSON lines to a listener and read one reply per line."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from factory_tui.ingest.protocol import (
    TOO_MANY_CONNECTIONS,
    auth_line,
    decode_reply,
    refusal_of,
)

#: Lines written per write()+drain(): large enough to be cheap, small enough to interleave
#: with reading the replies.
WRITE_CHUNK_LINES: Final = 2_000
READ_CHUNK_BYTES: Final = 1 << 16


class ClientError(Exception):
    """The listener could not be reached, refused us, or the connection broke.

    `replies` holds the replies received before it broke, in order: lines past them were not
    answered and may be sent again (the listener deduplicates).
    """

    def __init__(
        self, message: str, replies: Sequence[dict[str, Any]] = (), *, fatal: bool = False
    ) -> None:
        super().__init__(message)
        self.replies: list[dict[str, Any]] = list(replies)
        self.fatal = fatal
        """True when sending again cannot help (the token was refused)."""


class IngestClient:
    """One connection to an ingest listener; `send` pipelines lines and returns their replies."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or None
        self.timeout_s = timeout_s
        """Longest wait for the connection, or for the next reply while some are due."""
        self.tls = tls
        """Speak TLS with this context (`access.client_tls_context`); None: plain TCP."""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buffer = b""
        self._answered = 0
        """Replies received on this connection so far (the token's included)."""

    @property
    def connected(self) -> bool:
        """True between a successful `connect` and `close` (or a broken connection)."""
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        """Open the connection and, when a token is set, authenticate."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.tls), self.timeout_s
            )
        except TimeoutError:
            raise ClientError(f"cannot connect to {self.host}:{self.port}: timed out") from None
        except ssl.SSLCertVerificationError as error:
            # The listener is not who it should be (or --cafile is wrong): retrying cannot help.
            raise ClientError(
                f"cannot connect to {self.host}:{self.port}: TLS: the listener's certificate is "
                f"not trusted ({error.verify_message}); check --cafile and that the "
                "certificate names this host",
                fatal=True,
            ) from None
        except ssl.SSLError as error:
            raise ClientError(
                f"cannot connect to {self.host}:{self.port}: TLS: {_tls_reason(error)} (is "
                "the listener using TLS, and does it want a client certificate: --cert/--key?)",
                fatal=True,
            ) from None
        except OSError as error:
            reason = error.strerror or str(error)
            raise ClientError(f"cannot connect to {self.host}:{self.port}: {reason}") from None
        self._reader, self._writer = reader, writer
        self._buffer = b""
        self._answered = 0
        if self.token is None:
            return
        writer.write(auth_line(self.token))
        try:
            (reply,) = await self._read_replies(1)
        except ClientError:
            await self.close()
            raise
        if reply.get("status") != "authenticated":
            await self.close()
            raise ClientError(f"the listener did not accept the token: {reply}", fatal=True)

    async def send(self, lines: Sequence[bytes]) -> list[dict[str, Any]]:
        """Send lines (without their newline) and return one reply per line, in order.

        Writing and reading run together, so a large batch cannot deadlock against the
        listener's backpressure. On a broken connection raises ClientError carrying the
        replies received so far; the connection is then closed (`connect` opens a new one).
        """
        writer = self._writer
        if writer is None or self._reader is None:
            raise ClientError("not connected (call connect() first)")
        if not lines:
            return []
        if any(b"\n" in line for line in lines):
            raise ValueError("a line passed to send() contains a newline")
        reading = asyncio.create_task(self._read_replies(len(lines)))
        writing = asyncio.create_task(self._write_all(lines))
        await asyncio.wait({reading, writing}, return_when=asyncio.FIRST_EXCEPTION)
        if reading.done() and reading.exception() is None:
            await writing  # every reply came, so every line went out
            return reading.result()
        # Something broke. Stop writing; the replies already received still count.
        writing.cancel()
        (sent,) = await asyncio.gather(writing, return_exceptions=True)
        if not reading.done():
            writer.transport.abort()
        try:
            replies = await reading
        except ClientError as error:
            await self.close()
            if isinstance(sent, Exception) and not error.fatal:
                raise ClientError(
                    f"connection lost while sending: {sent}{self._earlier()}{self._tls_hint()}",
                    error.replies,
                ) from None
            raise
        # The write failed after the last line went out, and every reply still arrived.
        return replies

    def _tls_hint(self) -> str:
        """What may be wrong when a TLS listener drops us before any reply: only when nothing
        at all was answered on this connection (a listener that answered before speaks our
        protocol, and merely stopped)."""
        # A listener that wants client certificates closes a TLS connection without a good
        # one, and asyncio mostly reports its alert as a plain close or reset.
        if self._answered:
            return ""
        if self.tls is None:
            # A TLS port drops a plain client at its first line (the listener's audit says
            # "wrong version number"); nothing on this side tells that apart from a crash.
            return "; if the listener uses TLS ([ingest] tls_cert), send with --tls (--cafile)"
        return (
            "; a listener that wants a client certificate does this to a camera without one "
            "(--cert/--key) or with one its CA did not sign"
        )

    def _earlier(self) -> str:
        """`; it stopped after 61820 replies on this connection` when the listener had
        answered on it: it speaks our protocol (and TLS, if any), and stopped or dropped us."""
        if not self._answered:
            return ""
        return f"; it stopped after {self._answered} replies on this connection"

    async def _write_all(self, lines: Sequence[bytes]) -> None:
        assert self._writer is not None
        for start in range(0, len(lines), WRITE_CHUNK_LINES):
            self._writer.write(b"\n".join(lines[start : start + WRITE_CHUNK_LINES]) + b"\n")
            await self._writer.drain()

    async def _read_replies(self, count: int) -> list[dict[str, Any]]:
        assert self._reader is not None
        replies: list[dict[str, Any]] = []
        buffer = self._buffer
        while len(replies) < count:
            try:
                data = await asyncio.wait_for(self._reader.read(READ_CHUNK_BYTES), self.timeout_s)
            except TimeoutError:
                # A one-way port ([ingest] one_way_port) stores lines and answers none.
                one_way = (
                    "; a one-way port answers nothing: send to the listener's main port"
                    if not replies
                    else ""
                )
                raise ClientError(
                    f"no reply from {self.host}:{self.port} for {self.timeout_s:g} s "
                    f"({len(replies)} of {count} answered){one_way}",
                    replies,
                ) from None
            except ssl.SSLError as error:
                # A TLS alert after the handshake: with TLS 1.3 the listener checks our
                # certificate only now. Sending again would be refused the same way.
                raise ClientError(
                    f"the listener refused TLS: {_tls_reason(error)} (does it want a client "
                    "certificate signed by its CA: --cert/--key?)",
                    replies,
                    fatal=True,
                ) from None
            except (ConnectionError, OSError) as error:
                raise ClientError(
                    f"connection lost: {error}{self._earlier()}{self._tls_hint()}", replies
                ) from None
            if not data:
                self._buffer = b""
                raise ClientError(
                    f"the listener closed the connection ({len(replies)} of {count} "
                    f"lines answered){self._earlier()}{self._tls_hint()}",
                    replies,
                )
            buffer += data
            *complete, buffer = buffer.split(b"\n")
            try:
                fresh = [decode_reply(line) for line in complete]
            except ValueError as error:
                raise ClientError(
                    f"the listener sent a malformed reply: {error}", replies
                ) from None
            for reply in fresh:
                refusal = refusal_of(reply)
                if refusal is not None:
                    # That line answers no line of ours: the connection itself was refused,
                    # and the listener closes it next.
                    raise ClientError(
                        f"the listener refused the connection: {refusal}",
                        replies,
                        fatal=not refusal.startswith(TOO_MANY_CONNECTIONS),
                    )
                replies.append(reply)
                self._answered += 1
        if len(replies) > count:
            raise ClientError(
                f"the listener sent {len(replies)} replies for {count} lines", replies[:count]
            )
        self._buffer = buffer
        return replies

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        # A connection that already broke has nothing left to flush.
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()

    async def __aenter__(self) -> IngestClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _tls_reason(error: ssl.SSLError) -> str:
    """An SSL error's reason in words (`TLSV13_ALERT_CERTIFICATE_REQUIRED` -> lower case)."""
    return (error.reason or str(error)).lower().replace("_", " ")


@dataclass(slots=True)
class ReplyCounts:
    """Replies counted by status: what `send` and the simulator report to the user."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0

    def count(self, reply: dict[str, Any]) -> str | None:
        """Count one reply; for a rejection (or an unknown status), return its error text."""
        status = reply.get("status")
        if status == "accepted":
            self.accepted += 1
            return None
        if status == "duplicate":
            self.duplicate += 1
            return None
        self.rejected += 1
        return str(reply.get("error", status))

    def summary(self) -> str:
        """`accepted N, duplicate N, rejected N`."""
        return f"accepted {self.accepted}, duplicate {self.duplicate}, rejected {self.rejected}"
