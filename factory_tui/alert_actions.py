"""Alert actions (`[[alerts.actions]]`): a command run or a webhook called when an alert is
raised and when it clears.

The console's tick only queues what happened (`ActionRunner.submit` never waits); one worker
thread runs the actions, each bounded by its `timeout_s`, so a hung command or a dead receiver
never holds up the tick or the listener. The queue is bounded too: past `QUEUE_SIZE` waiting
alerts, new ones are dropped and that is reported like any other failure. Failures are logged
and the last few are kept for the alerts view.

A command runs without a shell; it gets the alert as JSON on stdin and as FACTORY_TUI_ALERT_*
environment variables. A webhook gets the same JSON in a POST (urllib: no new dependency),
with `[alerts] webhook_token` as a bearer token, retried after a network error, a timeout or an
HTTP 5xx/429, waiting `retry_delay_s`, then twice as long each time.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from factory_tui.config import AlertAction, Settings
from factory_tui.engine.alerts import Evidence
from factory_tui.models import iso_utc, now_us
from factory_tui.view_models import ActionFailure

log = logging.getLogger("factory_tui.alerts")

QUEUE_SIZE: Final = 256
"""Alert events waiting for their actions; more are dropped (and reported)."""
FAILURES_KEPT: Final = 20
"""Failed actions kept for the alerts view, newest last."""
CLOSE_WAIT_S: Final = 5.0
"""How long closing waits for queued actions to finish before leaving them."""
ERROR_CHARS: Final = 200
"""A failure's text is cut to this length (a command's stderr can be long)."""
ENV_PREFIX: Final = "FACTORY_TUI_ALERT_"

Phase = Literal["raised", "cleared"]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert raised or cleared, as its actions receive it."""

    phase: Phase
    kind: str
    subject: str
    details: str
    site: str
    started_us: int
    at_us: int
    """When it was raised or cleared (the tick's instant)."""
    evidence: Evidence = ()

    def payload(self) -> dict[str, Any]:
        """The JSON object a command reads on stdin and a webhook receives."""
        return {
            "event": self.phase,
            "kind": self.kind,
            "subject": self.subject,
            "details": self.details,
            "site": self.site,
            "started_at": iso_utc(self.started_us),
            "cleared_at": iso_utc(self.at_us) if self.phase == "cleared" else None,
            "at": iso_utc(self.at_us),
            "evidence": dict(self.evidence),
        }

    def environment(self) -> dict[str, str]:
        """The FACTORY_TUI_ALERT_* variables a command gets (the evidence stays in the JSON)."""
        payload = self.payload()
        return {
            f"{ENV_PREFIX}{key.upper()}": "" if value is None else str(value)
            for key, value in payload.items()
            if key != "evidence"
        }

    def describe(self) -> str:
        """`camera_dark W3 raised`."""
        return f"{self.kind} {self.subject} {self.phase}"


class ActionFailed(Exception):
    """An action did not complete; the message says why in a few words."""


class ActionRunner:
    """Runs the configured actions of alert events on a worker thread of its own."""

    def __init__(
        self,
        actions: Sequence[AlertAction],
        *,
        token: str = "",
        clock: Callable[[], int] = now_us,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.actions = tuple(actions)
        self.token = token
        self._clock = clock
        self._queue_size = queue_size
        # Unbounded underneath: the bound is enforced in `submit`, so `close` can always
        # put its sentinel without waiting.
        self._queue: queue.Queue[AlertEvent | None] = queue.Queue()
        self._failures: deque[ActionFailure] = deque(maxlen=FAILURES_KEPT)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = 0
        """Actions that completed (for tests and logs)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ActionRunner | None:
        """The runner of `[[alerts.actions]]`, or None when there are none."""
        alerts = settings.alerts
        if not alerts.actions:
            return None
        return cls(alerts.actions, token=alerts.webhook_token)

    def submit(self, event: AlertEvent) -> None:
        """Queue the actions of `event` (returns at once; dropped and reported when full)."""
        if not any(event.kind in action.on for action in self.actions):
            return
        with self._lock:
            if self._stopping.is_set():
                return
            if self._queue.qsize() >= self._queue_size:
                self._fail(None, event, f"not run: {self._queue_size} alerts already waiting")
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="factory-tui alert actions", daemon=True
                )
                self._thread.start()
            self._queue.put(event)

    def failures(self) -> tuple[ActionFailure, ...]:
        """The last failed actions, newest last."""
        with self._lock:
            return tuple(self._failures)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every queued alert's actions have run (True) or `timeout_s` passed."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout_s)

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Stop taking events; let queued ones run for up to `wait_s` (no retry waits)."""
        with self._lock:
            self._stopping.set()
            thread = self._thread
            self._queue.put(None)
        if thread is None:
            return
        thread.join(wait_s)
        if thread.is_alive():
            log.warning("alert actions: stopped with %d alert(s) not handled", self._queue.qsize())

    # --- the worker thread --------------------------------------------------------------------

    def _work(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._run_all(event)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _run_all(self, event: AlertEvent) -> None:
        for action in self.actions:
            if event.kind not in action.on:
                continue
            try:
                self._run(action, event)
            except ActionFailed as error:
                self._fail(action, event, str(error))
            except Exception as error:  # a bug must not stop every later action
                log.exception("alert action %s crashed", action.describe())
                self._fail(action, event, f"crashed: {error!r}")
            else:
                self.done += 1
                log.info("alert action %s: %s done", action.describe(), event.describe())

    def _run(self, action: AlertAction, event: AlertEvent) -> None:
        body = json.dumps(event.payload(), ensure_ascii=False).encode()
        if action.command is not None:
            run_command(action.command, body, event.environment(), action.timeout_s)
            return
        assert action.webhook is not None
        delay = action.retry_delay_s
        for attempt in range(action.retries + 1):
            try:
                post_json(action.webhook, body, self.token, action.timeout_s)
                return
            except RetryableError as error:
                last = error
            if attempt == action.retries or self._stopping.wait(delay):
                break
            delay *= 2
        tries = attempt + 1
        raise ActionFailed(f"{last} ({tries} {'try' if tries == 1 else 'tries'})")

    def _fail(self, action: AlertAction | None, event: AlertEvent, error: str) -> None:
        what = "alert actions" if action is None else action.describe()
        error = error[:ERROR_CHARS]
        log.warning("alert action %s failed for %s: %s", what, event.describe(), error)
        failure = ActionFailure(self._clock(), what, event.describe(), error)
        if action is None:  # called under the lock already, from submit
            self._failures.append(failure)
            return
        with self._lock:
            self._failures.append(failure)


class RetryableError(ActionFailed):
    """A webhook failure worth trying again (network, timeout, HTTP 5xx or 429)."""


def run_command(
    command: Sequence[str], stdin: bytes, env: Mapping[str, str], timeout_s: float
) -> None:
    """Run `command` (no shell) with `stdin` and `env` added to ours; raises ActionFailed on a
    non-zero exit, a timeout (the command's process group is killed) or a missing program."""
    try:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            start_new_session=True,  # its own process group: a timeout kills its children too
        )
    except OSError as error:
        raise ActionFailed(f"cannot run {command[0]}: {error.strerror or error}") from None
    try:
        _, stderr = process.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise ActionFailed(f"timed out after {timeout_s:g} s (killed)") from None
    if process.returncode != 0:
        last = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        detail = f": {last[0]}" if last[0] else ""
        raise ActionFailed(f"exit status {process.returncode}{detail}")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.communicate()


def post_json(url: str, body: bytes, token: str, timeout_s: float) -> None:
    """POST `body` as JSON; raises RetryableError or ActionFailed unless the answer is 2xx."""
    headers = {"Content-Type": "application/json", "User-Agent": "factory-tui"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as error:
        why = f"HTTP {error.code} {error.reason}"
        if error.code >= 500 or error.code == 429:
            raise RetryableError(why) from None
        raise ActionFailed(why) from None
    except TimeoutError:
        raise RetryableError(f"no answer in {timeout_s:g} s") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise RetryableError(f"no answer in {timeout_s:g} s") from None
        raise RetryableError(f"cannot reach {url}: {reason}") from None
    except OSError as error:
        raise RetryableError(f"cannot reach {url}: {error}") from None
