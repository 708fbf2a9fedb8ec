"""Run the real `factory-tui` command in a pseudo-terminal, the way an SSH session does."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

FACTORY_TUI = str(Path(sys.executable).parent / "factory-tui")
SAFETY_S = 120.0
"""Every wait below ends on an event (output, end of output, the child's exit); this bound only
stops a test from hanging on a console that never draws or never exits."""


class Terminal:
    """A child process on its own pty: read what it draws, type keys, hang up."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        size: tuple[int, int] = (80, 24),
        *,
        ignore_hangup: bool = False,
        term: str = "xterm-256color",
        no_color: bool = False,
    ) -> None:
        """`ignore_hangup`: start the child with SIGHUP ignored, as `nohup` does; `term` and
        `no_color`: the terminal it is told it runs on."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TEXTUAL")}
        env["TERM"] = term
        env.pop("NO_COLOR", None)
        if no_color:
            env["NO_COLOR"] = "1"
        pid, fd = pty.fork()
        if pid == 0:  # the child: set the window size on its tty, then become factory-tui
            try:
                if ignore_hangup:
                    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # kept across exec
                columns, rows = size
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
                os.chdir(cwd)
                os.execve(args[0], args, env)
            finally:
                os._exit(127)
        self.pid = pid
        self.fd: int | None = fd
        self.pidfd = os.pidfd_open(pid)
        self.output = bytearray()
        self.status: int | None = None

    def read_until(self, needle: bytes, timeout: float = SAFETY_S) -> bool:
        """Read output until `needle` has appeared (True) or the child ended (or, as a safety
        net, the time is up)."""
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.fd is None:
                return False
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return False
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                return needle in self.output
            if not chunk:
                return needle in self.output
            self.output += chunk
        return True

    def drain(self, timeout: float = SAFETY_S) -> None:
        """Read until the child closes its terminal."""
        self.read_until(b"\0never\0", timeout)

    def running(self) -> bool:
        """The child has not ended (asked now, without waiting)."""
        ready, _, _ = select.select([self.pidfd], [], [], 0)
        return not ready

    def send(self, keys: bytes) -> None:
        """Type into the terminal."""
        assert self.fd is not None
        os.write(self.fd, keys)

    def hang_up(self) -> None:
        """Close our end of the terminal, as sshd does when the connection drops."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def wait(self, timeout: float = SAFETY_S) -> int | None:
        """The child's wait status once it has ended (None if it is still running)."""
        ready, _, _ = select.select([self.pidfd], [], [], timeout)
        if not ready:
            return None
        _, self.status = os.waitpid(self.pid, 0)
        return self.status

    def close(self) -> None:
        """Kill the child if it is still running and release the descriptors."""
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.hang_up()
        os.close(self.pidfd)
