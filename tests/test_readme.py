"""The README's command blocks, run as a newcomer would: in an empty folder, offline.

Every line of every ```sh block runs, in README order, unless SKIPPED names it with the reason
(a long-running console, a PostgreSQL server, root, a browser). A line ending in `&` is started,
must print `listening on HOST:PORT` on stdout, and is stopped with Ctrl-C at the end of its block;
a block that sends to a listener without starting one gets a `serve` of the test's own. Ports
7878 and 7879 become a free port, 8080 (HTTP ingest) another. The folder starts as the
first-run screen suggests: `factory-tui init`, then a day of simulated events (2024-05-01)
in events.jsonl.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BIN = str(Path(sys.executable).parent)
WAIT_S = 120.0
"""Bound on each command (the machine is shared and may be slow)."""

SKIPPED: tuple[tuple[str, str], ...] = (
    (r"^make ", "make demo opens the console, make test is this suite"),
    (r"\[--", "a synopsis of options, not a command"),
    (r"^factory-tui demo\b", "the demo console runs until q (tests/tui/test_cli_console.py)"),
    (r"postgresql://|^createdb ", "needs a PostgreSQL server"),
    (r"/srv/", "writes outside the folder (a central box's path)"),
    (r"^sudo |^systemctl |^journalctl ", "installs a system service (root, systemd)"),
    (r"^tail -f ", "follows a log forever"),
    (r"--speed 60 --duration 8h", "paces 8 simulated hours over 8 real minutes"),
    (r"--rate 5000 --duration 60s", "a load test of 60 s"),
    (r"--site pune", "needs a database of several sites (factory-tui demo --sites 3)"),
    (r"mqtt://|^mosquitto_", "needs an MQTT broker (tests/ingest/test_mqtt_*.py use a real one)"),
    *([(r"^socat ", "needs socat (apt-get install socat)")] if not shutil.which("socat") else []),
)
SCALED: dict[str, str] = {
    # A whole shift of 1500 cameras is a million lines: the same command, smaller.
    "--workers 1500 --duration 8h": "--workers 10 --duration 1h",
}
SENDS = re.compile(r"factory-tui (send|simulate(?!.*--to-file))|\bnc ")


@dataclass
class Line:
    """One command of a block, with the output the README shows under it."""

    command: str
    expected: list[str]


def sh_blocks(text: str) -> list[list[Line]]:
    """The ```sh blocks: commands with continuations joined, comments dropped."""
    blocks: list[list[Line]] = []
    for body in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        lines: list[Line] = []
        pending = ""
        for raw in body.splitlines():
            stripped = raw.strip()
            if pending:
                pending += " " + stripped.removesuffix("\\").strip()
                if not stripped.endswith("\\"):
                    lines.append(Line(pending, []))
                    pending = ""
                continue
            if raw.startswith(" ") and lines:  # a synopsis' second line
                lines[-1].command += " " + stripped
                continue
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("{") and lines:  # output the README shows
                lines[-1].expected.append(stripped)
                continue
            if stripped.endswith("\\"):
                pending = stripped.removesuffix("\\").strip()
                continue
            lines.append(Line(stripped, []))
        blocks.append(lines)
    return blocks


def skip_reason(command: str) -> str | None:
    return next((why for pattern, why in SKIPPED if re.search(pattern, command)), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Folder:
    """The newcomer's folder, an environment without their FACTORY_TUI_* variables, a port."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.http_port = free_port()  # the HTTP ingest examples' 8080
        self.one_way_port = free_port()  # the log shippers' one-way port 7880
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FACTORY_TUI_", "COLUMNS"))}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["FACTORY_TUI_PORT"] = str(self.port)
        self.env = env

    def prepare(self, command: str) -> str:
        for long, short in SCALED.items():
            command = command.replace(long, short)
        command = re.sub(r"\b8080\b", str(self.http_port), command)
        command = re.sub(r"\b7880\b", str(self.one_way_port), command)
        return re.sub(r"\b787[89]\b", str(self.port), command)

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", self.prepare(command)],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=False,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        return result

    def start(self, command: str) -> subprocess.Popen[str]:
        """Start a listener (`... &`) and wait for its `listening on` line on stdout."""
        process = subprocess.Popen(
            # `env` lets the command start with VAR=value settings, as a shell line may.
            ["bash", "-c", "exec env " + self.prepare(command)],
            cwd=self.path,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        first = process.stdout.readline()  # serve writes nothing else to stdout
        assert first.strip() == f"listening on 127.0.0.1:{self.port}", (command, first)
        return process


def stop(process: subprocess.Popen[str]) -> None:
    """Ctrl-C, as a user stops it; it must end cleanly."""
    process.send_signal(signal.SIGINT)
    try:
        assert process.wait(WAIT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_readme_parses_into_blocks_and_every_skip_still_matches() -> None:
    commands = [line.command for block in sh_blocks(README.read_text()) for line in block]
    assert len(commands) > 20
    for pattern, why in SKIPPED:
        assert any(re.search(pattern, command) for command in commands), (pattern, why)
    for long in SCALED:
        assert any(long in command for command in commands), long


@pytest.mark.long
def test_every_readme_command_that_runs_offline_runs(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.run("factory-tui init")
    folder.run(
        "factory-tui simulate --to-file events.jsonl --workers 2 --start 2024-05-01T06:00 "
        "--duration 16h"
    )
    ran: list[str] = []
    for block in sh_blocks(README.read_text()):
        runnable = [line for line in block if skip_reason(line.command) is None]
        started: list[subprocess.Popen[str]] = []
        try:
            starts = any(line.command.endswith("&") for line in runnable)
            if not starts and any(SENDS.search(line.command) for line in runnable):
                started.append(folder.start("factory-tui serve"))
            for line in runnable:
                command = line.command
                if command.endswith("&"):
                    started.append(folder.start(command.removesuffix("&").strip()))
                    continue
                if re.search(r"\|\s*nc ", command) and shutil.which("nc") is None:
                    # The README's own fallback, a line further down.
                    command = re.sub(r"\|\s*nc .*$", "| factory-tui send - --port 7878", command)
                    result = folder.run(command)
                    assert "accepted 1" in result.stdout or "duplicate 1" in result.stdout
                else:
                    result = folder.run(command)
                    for expected in line.expected:
                        assert expected in result.stdout, (command, result.stdout)
                ran.append(command)
        finally:
            for process in started:
                stop(process)
    assert any(command.startswith("factory-tui report --at") for command in ran)
    assert any(command.startswith("factory-tui send events.jsonl") for command in ran)
    # The README's `report --at` example is inside a shift, so its window has work in it.
    example = next(c for c in ran if c.startswith("factory-tui report --at"))
    at = example.split()[3]
    report = json.loads(folder.run(f"factory-tui report --at {at} --format json").stdout)
    assert report["window"]["label"] == "A"
    assert sum(worker["active_s"] or 0 for worker in report["workers"]) > 0


@pytest.mark.parametrize(
    "command",
    [
        line.command
        for block in sh_blocks(README.read_text())
        for line in block
        if skip_reason(line.command) is not None
    ],
)
def test_skipped_readme_command(command: str) -> None:
    """Listed so a run shows what the README test leaves out, and why."""
    pytest.skip(f"{skip_reason(command)}: {command}")
