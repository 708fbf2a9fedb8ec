"""`factory-tui simulate --mqtt URL` publishes the simulated fleet to a real broker: a
subscriber stores the same events as the same simulation written to a file."""

from __future__ import annotations

import uuid
from pathlib import Path

from typer.testing import CliRunner

from factory_tui.cli import app
from factory_tui.ingest.listener import Listener
from factory_tui.ingest.mqtt_ingest import MqttIngest
from tests.ingest.conftest import make_settings, run_cli, wait_until
from tests.ingest.test_mqtt_ingest import stored_events

SIMULATION = ("--workers", "3", "--seed", "7", "--start", "2024-05-01T10:00:00Z")
SPAN = ("--speed", "1200", "--duration", "4m")


async def test_simulate_mqtt_publishes_what_simulate_writes_to_a_file(
    tmp_path: Path, mqtt_url: str
) -> None:
    name = f"ft-test-{uuid.uuid4().hex[:12]}"
    (tmp_path / "mqtt").mkdir()
    settings = make_settings(
        tmp_path / "mqtt",
        ingest__mqtt__url=mqtt_url,
        ingest__mqtt__topic=f"{name}/+/events",
        ingest__mqtt__client_id=f"{name}-subscriber",
        ingest__mqtt__session_expiry_s=60,
    )
    async with Listener(settings) as over_mqtt:
        ingest = MqttIngest(over_mqtt)
        ingest.start()
        try:
            await wait_until(lambda: ingest.subscribed)
            code, out, err = await run_cli(
                "simulate", *SIMULATION, *SPAN, "--mqtt", mqtt_url,
                "--mqtt-topic", f"{name}/{{camera}}/events",
            )  # fmt: skip
            assert code == 0, err
            assert f"-> MQTT {mqtt_url} on {name}/{{camera}}/events" in err
            published = int(out.split()[1])
            assert published > 0
            assert "acknowledged by the broker" in out
            # Every line published is answered by the subscriber's listener (some duplicates).
            await wait_until(lambda: _answered(over_mqtt) == published)
            await wait_until(lambda: ingest.state().in_flight == 0)
        finally:
            await ingest.stop()
        assert over_mqtt.stats().rejected == 0
    # The same simulation written to a file, stored through a listener in-process.
    lines_file = tmp_path / "same.jsonl"
    result = CliRunner().invoke(
        app, ["simulate", *SIMULATION, "--duration", "4m", "-o", str(lines_file)]
    )
    assert result.exit_code == 0, result.output
    lines = lines_file.read_bytes().splitlines()
    assert len(lines) == published
    (tmp_path / "file").mkdir()
    async with Listener(make_settings(tmp_path / "file")) as from_file:
        await from_file.submit(lines)
    from_mqtt = stored_events(tmp_path / "mqtt" / "factory.db")
    assert len(from_mqtt) > 0
    assert from_mqtt == stored_events(tmp_path / "file" / "factory.db")


def _answered(listener: Listener) -> int:
    stats = listener.stats()
    return stats.accepted + stats.duplicates + stats.rejected


def test_simulate_mqtt_says_why_it_cannot_publish() -> None:
    result = CliRunner().invoke(app, ["simulate", "--mqtt", "http://example"])
    assert result.exit_code != 0
    assert "mqtt://host:1883" in result.output
    result = CliRunner().invoke(
        app, ["simulate", "--mqtt", "mqtt://127.0.0.1:1", "--mqtt-topic", "a/+/b"]
    )
    assert result.exit_code != 0
    assert "wildcards" in result.output
    result = CliRunner().invoke(app, ["simulate", "--mqtt", "mqtt://127.0.0.1:1", "-o", "x.jsonl"])
    assert result.exit_code != 0
    assert "--to-file" in result.output
