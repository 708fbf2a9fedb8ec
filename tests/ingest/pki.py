"""Certificates made for a test with the `openssl` command: a listener's certificate, a CA
that signs cameras' client certificates, a camera signed by it and a stranger signed by no one
the listener trusts. Elliptic-curve keys: each takes milliseconds."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    """Paths of PEM files in the test's folder."""

    server_cert: Path
    """Self-signed, for 127.0.0.1 and localhost: also the CA a client checks it against."""
    server_key: Path
    camera_ca: Path
    """Signs `camera_cert`: the listener's `tls_client_ca`."""
    camera_cert: Path
    """CN=camera-7, signed by `camera_ca`."""
    camera_key: Path
    stranger_cert: Path
    """CN=stranger, self-signed: no listener here trusts it."""
    stranger_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(folder: Path) -> Pki:
    """Make the certificates in `folder` (skipped when openssl is missing; failed under CI)."""
    if not Path(OPENSSL).exists():
        message = "openssl not found: install it (apt-get install openssl) to run the TLS tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    folder.mkdir(parents=True, exist_ok=True)
    self_signed = ["req", "-x509", *_EC, "-days", "2"]
    _openssl(
        *self_signed,
        *("-keyout", "server.key", "-out", "server.pem", "-subj", "/CN=listener"),
        *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        cwd=folder,
    )
    _openssl(
        *self_signed,
        *("-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=camera-ca"),
        cwd=folder,
    )
    _openssl("req", *_EC, "-keyout", "camera.key", "-out", "camera.csr", "-subj",
             "/CN=camera-7", cwd=folder)  # fmt: skip
    _openssl(
        *("x509", "-req", "-in", "camera.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-out", "camera.pem", "-days", "2"),
        cwd=folder,
    )
    _openssl(
        *self_signed,
        *("-keyout", "stranger.key", "-out", "stranger.pem", "-subj", "/CN=stranger"),
        cwd=folder,
    )
    return Pki(
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        camera_ca=folder / "ca.pem",
        camera_cert=folder / "camera.pem",
        camera_key=folder / "camera.key",
        stranger_cert=folder / "stranger.pem",
        stranger_key=folder / "stranger.key",
    )
