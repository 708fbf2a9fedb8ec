"""What TLS and the rate limit cost the ingest listener, each beside plain TCP in the same run.

The listener runs here (a fresh temp database per case); the camera load runs in a child
process with `IngestClient`, as a camera on another machine would. Cases:

- events/s over one connection: plain TCP, TLS, and TLS with client certificates (mTLS),
  first line sent to last reply read; each printed with its ratio to plain TCP;
- connections/s: connect (the TLS handshake) and close, one after another, plain and TLS (the
  listener audits each connection opened and closed either way);
- the rate limit: one connection writing as fast as it can against `max_events_per_s`;
  the rate it was answered at beside the limit.

    python benchmarks/access.py            # best of 3 rounds, about a minute on 2 cores
    python benchmarks/access.py --quick    # smaller cases, one round
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import event_line as shared_event_line  # noqa: E402  (benchmarks/ingest.py)

from factory_tui.config import load_settings  # noqa: E402
from factory_tui.ingest.access import client_tls_context  # noqa: E402
from factory_tui.ingest.client import IngestClient  # noqa: E402
from factory_tui.ingest.listener import Listener  # noqa: E402

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
CHUNK = 5_000


def event_line(n: int) -> bytes:
    """A valid wire event, unique for every n (ids are auto-registered)."""
    return shared_event_line(n, workers=6)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A listener certificate, a camera CA and a camera certificate it signed."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", *EC, "-keyout", "server.key", "-out", "server.pem", "-subj",
            "/CN=listener", "-addext", "subjectAltName=IP:127.0.0.1")  # fmt: skip
    openssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=ca")
    openssl("req", *EC[:-2], "-keyout", "cam.key", "-out", "cam.csr", "-subj", "/CN=cam")
    openssl("x509", "-req", "-in", "cam.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "cam.pem", "-days", "2")  # fmt: skip
    names = ("server.pem", "server.key", "ca.pem", "cam.pem", "cam.key")
    return {name: folder / name for name in names}


# --- the camera side (a child process) ----------------------------------------------------------


async def camera(spec: dict[str, Any]) -> dict[str, float]:
    """Run one load case against the listener; returns its figures."""
    tls = None
    if spec.get("cafile"):
        tls = client_tls_context(
            Path(spec["cafile"]),
            Path(spec["cert"]) if spec.get("cert") else None,
            Path(spec["key"]) if spec.get("key") else None,
        )
    port, count, first = spec["port"], spec["count"], spec["first"]
    if spec["kind"] == "connections":
        started = time.perf_counter()
        for _ in range(count):
            client = IngestClient("127.0.0.1", port, tls=tls)
            await client.connect()
            await client.close()
        return {"seconds": time.perf_counter() - started}
    lines = [event_line(first + n) for n in range(count)]
    async with IngestClient("127.0.0.1", port, tls=tls, timeout_s=120) as client:
        started = time.perf_counter()
        replies = []
        for start in range(0, count, CHUNK):
            replies += await client.send(lines[start : start + CHUNK])
        seconds = time.perf_counter() - started
    assert sum(reply["status"] == "accepted" for reply in replies) == count
    return {"seconds": seconds}


# --- the listener side ----------------------------------------------------------------------


async def run_case(folder: Path, name: str, spec: dict[str, Any], **ingest: Any) -> float:
    """Start a listener with `ingest` settings, run the camera child, return its seconds."""
    db = folder / f"{name}.db"
    overrides = {"store.path": db, "ingest.port": 0, "ingest.auto_register": True}
    overrides.update({f"ingest.{key}": value for key, value in ingest.items()})
    listener = Listener(load_settings(None, environ={}, overrides=overrides))
    await listener.start()
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--camera", json.dumps({**spec, "port": listener.port}),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await child.communicate()
        assert child.returncode == 0, f"{name}: the camera process failed"
        seconds: float = json.loads(out)["seconds"]
        return seconds
    finally:
        await listener.stop()


async def best(rounds: int, folder: Path, cases: dict[str, tuple[dict[str, Any], dict[str, Any]]]
               ) -> dict[str, float]:  # fmt: skip
    """The best seconds of each case over `rounds` rounds, the cases interleaved in each round
    (a shared machine's load then weighs on every case alike)."""
    seconds: dict[str, float] = {}
    for round_ in range(rounds):
        for name, (spec, ingest) in cases.items():
            took = await run_case(folder, f"{name}-{round_}", spec, **ingest)
            seconds[name] = min(seconds.get(name, took), took)
    return seconds


async def main(quick: bool, rounds: int) -> None:
    events = 20_000 if quick else 100_000
    connections = 100 if quick else 300
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        pem = make_certificates(folder)
        tls = {"tls_cert": pem["server.pem"], "tls_key": pem["server.key"]}
        trust = {"cafile": str(pem["server.pem"])}
        mtls_client = {**trust, "cert": str(pem["cam.pem"]), "key": str(pem["cam.key"])}
        mtls = {**tls, "tls_client_ca": pem["ca.pem"]}
        load = {"kind": "events", "count": events, "first": 0}
        print(f"one connection, {events:,} events, first line to last reply (best of {rounds}):")
        took = await best(
            rounds,
            folder,
            {
                "plain TCP": (load, {}),
                "TLS": ({**load, **trust}, tls),
                "mTLS": ({**load, **mtls_client}, mtls),
            },
        )
        plain_s = took.pop("plain TCP")
        print(f"  plain TCP   {events / plain_s:>9,.0f} events/s  (the yardstick)")
        for name, seconds in took.items():
            print(
                f"  {name:<10}  {events / seconds:>9,.0f} events/s  "
                f"{plain_s / seconds:.2f} of plain TCP"
            )
        setup = {"kind": "connections", "count": connections, "first": 0}
        print(f"{connections} connections one after another, connect and close (best of {rounds}):")
        took = await best(
            rounds, folder, {"plain TCP": (setup, {}), "TLS": ({**setup, **trust}, tls)}
        )
        print(f"  plain TCP   {connections / took['plain TCP']:>9,.0f} connections/s  (yardstick)")
        print(
            f"  TLS         {connections / took['TLS']:>9,.0f} connections/s  "
            f"{took['plain TCP'] / took['TLS']:.2f} of plain TCP"
        )
        limit = 1_000
        limited = {"kind": "events", "count": 5 * limit, "first": 0}
        seconds = await run_case(folder, "limited", limited, max_events_per_s=limit)
        print(
            f"max_events_per_s = {limit:,}, one connection writing {5 * limit:,} lines at once: "
            f"answered at {5 * limit / seconds:,.0f}/s, {5 * limit / seconds / limit:.3f} of the "
            "limit"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller cases, one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds to take the best of")
    parser.add_argument("--camera", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.camera:
        print(json.dumps(asyncio.run(camera(json.loads(args.camera)))))
    else:
        asyncio.run(main(args.quick, 1 if args.quick else args.rounds))
