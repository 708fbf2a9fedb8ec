"""`factory-tui send`: stream a JSON-lines file (or stdin) to a listener, as a camera would."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Final

import typer

from factory_tui.commands.common import (
    CafileOption,
    CertOption,
    ConfigOption,
    HostOption,
    KeyOption,
    PortOption,
    TlsOption,
    TokenOption,
    client_tls,
    dotted,
    fail,
    settings_from,
)
from factory_tui.ingest.client import ClientError, IngestClient, ReplyCounts

#: Lines sent per round trip; the listener commits up to 5,000 lines per transaction.
CHUNK_LINES: Final = 5_000
READ_BYTES: Final = 1 << 16
SHOWN_REJECTIONS: Final = 5
FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 10.0

# A listener bound to every interface is reached on this machine through loopback.
_WILDCARDS: Final = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


class DeliveryError(Exception):
    """Lines could not be delivered after every retry."""


@dataclass
class Tally(ReplyCounts):
    """What the listener answered, line by line."""

    rejections: list[tuple[int, str]] = field(default_factory=list)
    """(line number, error) of the first few rejected lines."""

    def record(self, numbers: list[int], replies: list[dict[str, Any]]) -> None:
        """Count the replies to the lines with these numbers."""
        for number, reply in zip(numbers, replies, strict=False):
            error = self.count(reply)
            if error is not None and len(self.rejections) < SHOWN_REJECTIONS:
                self.rejections.append((number, error))


def send(
    file: Annotated[
        str, typer.Argument(metavar="FILE|-", help="JSON-lines file to send; - reads stdin.")
    ],
    host: HostOption = None,
    port: PortOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
    retries: Annotated[
        int,
        typer.Option(
            "--retries", min=0, help="Reconnect attempts in a row when the connection drops."
        ),
    ] = 5,
    tls: TlsOption = False,
    cafile: CafileOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
) -> None:
    """Send a JSON-lines file (or stdin) to a listener and report what it answered.

    Streams the input, reads every reply, resends unanswered lines after a dropped
    connection (safe: the listener deduplicates). Exit code 0 when every line was answered,
    1 when some could not be delivered.
    """
    settings = settings_from(
        config, **dotted(ingest__host=host, ingest__port=port, ingest__token=token)
    )
    ingest = settings.ingest
    target = _WILDCARDS.get(ingest.host, ingest.host)
    context = client_tls(tls, cafile, cert, key)
    try:
        stream: BinaryIO = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror or error}")
    tally = Tally()
    try:
        with stream:
            asyncio.run(
                deliver(
                    stream,
                    IngestClient(target, ingest.port, ingest.token or None, tls=context),
                    tally,
                    retries,
                )
            )
    except DeliveryError as error:
        _report(tally)
        fail(str(error), code=1)
    except OSError as error:
        _report(tally)
        fail(f"cannot read {file}: {error.strerror or error}", code=1)
    _report(tally)


def _report(tally: Tally) -> None:
    typer.echo(tally.summary())
    for number, error in tally.rejections:
        typer.echo(f"  line {number}: {error}")
    hidden = tally.rejected - len(tally.rejections)
    if hidden > 0:
        typer.echo(f"  ... and {hidden} more rejected lines")


async def read_lines(stream: BinaryIO) -> AsyncIterator[list[tuple[int, bytes]]]:
    """Chunks of (line number, line) from the stream, blank lines skipped, never all at once.

    Reads in a thread, so a slow pipe (`tail -f ... | factory-tui send -`) is sent as its
    lines arrive rather than when a chunk fills.
    """
    loop = asyncio.get_running_loop()
    read = getattr(stream, "read1", stream.read)
    number = 0
    tail = b""
    pending: list[tuple[int, bytes]] = []
    while True:
        data: bytes = await loop.run_in_executor(None, read, READ_BYTES)
        if not data:
            break
        *lines, tail = (tail + data).split(b"\n")
        for line in lines:
            number += 1
            if line.strip():
                pending.append((number, line))
        if len(pending) >= CHUNK_LINES or (pending and len(data) < READ_BYTES):
            yield pending
            pending = []
    if tail.strip():
        pending.append((number + 1, tail))
    if pending:
        yield pending


async def deliver(stream: BinaryIO, client: IngestClient, tally: Tally, retries: int) -> None:
    """Send every line of the stream, retrying with backoff when the connection drops."""
    try:
        async for chunk in read_lines(stream):
            await _deliver_chunk(chunk, client, tally, retries)
    finally:
        await client.close()


async def _deliver_chunk(
    chunk: list[tuple[int, bytes]], client: IngestClient, tally: Tally, retries: int
) -> None:
    failures = 0
    while chunk:
        try:
            if not client.connected:
                await client.connect()
            replies = await client.send([line for _, line in chunk])
        except ClientError as error:
            answered = len(error.replies)
            tally.record([number for number, _ in chunk[:answered]], error.replies)
            chunk = chunk[answered:]
            await client.close()
            failures = 1 if answered else failures + 1
            if error.fatal or failures > retries:
                first = chunk[0][0] if chunk else 0
                raise DeliveryError(f"could not deliver from line {first} on: {error}") from None
            delay = min(FIRST_BACKOFF_S * 2 ** max(failures - 1, 0), MAX_BACKOFF_S)
            print(
                f"factory-tui: {error}; retrying in {delay:g} s ({failures} of {retries})",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(delay)
            continue
        tally.record([number for number, _ in chunk], replies)
        return


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""
    app.command()(send)
