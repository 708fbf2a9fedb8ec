"""MQTT ingest over TLS (`mqtts://`, `ca_file`) against a Mosquitto of the test's own with a TLS
listener and a certificate made by openssl for it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from factory_tui.ingest.listener import Listener
from factory_tui.ingest.mqtt_client import MqttPublisher
from factory_tui.ingest.mqtt_ingest import MqttIngest
from tests.ingest.conftest import event_at, make_settings, wait_until
from tests.ingest.pki import Pki, make_pki
from tests.ingest.test_mqtt_ingest import unique


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Pki]]:
    """A Mosquitto with one TLS listener on a free port (its certificate: `pki.server_cert`)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        message = "mosquitto not found: install it (apt-get install mosquitto) for the TLS test"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"user root\npersistence false\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {pki.server_cert}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
    )
    broker = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        for _ in range(500):  # bounded: 5 s
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                if broker.poll() is not None:
                    assert broker.stderr is not None
                    pytest.fail(f"mosquitto did not start: {broker.stderr.read().decode()}")
                time.sleep(0.01)
        yield port, pki
    finally:
        broker.terminate()
        broker.wait(10)


async def test_events_over_mqtts_are_stored(tmp_path: Path, tls_broker: tuple[int, Pki]) -> None:
    port, pki = tls_broker
    url = f"mqtts://127.0.0.1:{port}"
    name = unique()
    (tmp_path / "db").mkdir()
    settings = make_settings(
        tmp_path / "db",
        ingest__mqtt__url=url,
        ingest__mqtt__topic=f"{name}/+/events",
        ingest__mqtt__client_id=name,
        ingest__mqtt__ca_file=str(pki.server_cert),
    )
    async with Listener(settings) as listener:
        ingest = MqttIngest(listener)
        ingest.start()
        try:
            await wait_until(lambda: ingest.subscribed)
            publisher = MqttPublisher(url, unique(), ca_file=pki.server_cert)
            await publisher.connect()
            await publisher.publish(f"{name}/cam1/events", event_at(1))
            await publisher.close()
            await wait_until(lambda: listener.stats().accepted == 1)
        finally:
            await ingest.stop()


async def test_a_broker_whose_certificate_is_not_trusted_stays_down(
    tmp_path: Path, tls_broker: tuple[int, Pki]
) -> None:
    port, _pki = tls_broker
    (tmp_path / "db").mkdir()
    # No ca_file: the system's CAs, which never signed the test's certificate.
    settings = make_settings(
        tmp_path / "db",
        ingest__mqtt__url=f"mqtts://127.0.0.1:{port}",
        ingest__mqtt__client_id=unique(),
    )
    async with Listener(settings) as listener:
        ingest = MqttIngest(listener)
        ingest.start()
        try:
            await wait_until(lambda: bool(ingest.state().error))
            assert ingest.state().down_s is not None
            assert "certificate verify failed" in ingest.state().error  # says why
            assert not ingest.subscribed
        finally:
            await ingest.stop()
