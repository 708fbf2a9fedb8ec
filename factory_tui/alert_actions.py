"""Alert actions (`[[alerts.actions]]`): a command run or a webhook called when an alert is
raised and when it clears.

The console's tick only queues what happened (`ActionRunner.submit` never waits). Each action
has a worker thread and a queue of its own and runs bounded by its `timeout_s`, so a hung command
or a dead receiver never holds up the tick, the listener or the other actions (it delays only its
own deliveries, which keep their order). Each queue is bounded too: past `QUEUE_SIZE` alerts
waiting for an action, new ones are dropped for that action and that is reported like any other
failure. Failures are logged, the last few are kept for the alerts view, and the process that
owns the database stores each in the audit trail (kind `action_failed`) for its viewers.

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
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from factory_tui.config import ALERT_ENV_FIELDS, ALERT_ENV_PREFIX, AlertAction, Settings
from factory_tui.engine.alerts import Evidence
from factory_tui.models import iso_utc, now_us
from factory_tui.records import ACTION_FAILED, AuditEntry, AuditRecord
from factory_tui.view_models import ActionFailure

log = logging.getLogger("factory_tui.alerts")

QUEUE_SIZE: Final = 256
"""Alert events waiting for one action; more are dropped for it (and reported)."""
FAILURES_KEPT: Final = 20
"""Failed actions kept for the alerts view, newest last."""
CLOSE_WAIT_S: Final = 5.0
"""How long closing waits for queued actions to finish before leaving them."""
ERROR_CHARS: Final = 200
"""A failure's text is cut to this length (a command's stderr can be long)."""

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
            f"{ALERT_ENV_PREFIX}{key.upper()}": "" if payload[key] is None else str(payload[key])
            for key in ALERT_ENV_FIELDS
        }

    def describe(self) -> str:
        """`camera_dark W3 raised`."""
        return f"{self.kind} {self.subject} {self.phase}"


class ActionFailed(Exception):
    """An action did not complete; the message says why in a few words."""


class ActionRunner:
    """Runs the configured actions of alert events, each action on a worker thread of its own.

    Every action has its own worker and its own bounded queue, so a dead webhook delays only
    its own deliveries (a command beside it still runs at once), and each action gets the
    alerts in the order they were raised and cleared.
    """

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
        self._lanes = tuple(_Lane(action) for action in self.actions)
        self._failures: deque[ActionFailure] = deque(maxlen=FAILURES_KEPT)
        self._unstored: deque[ActionFailure] = deque(maxlen=QUEUE_SIZE)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
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
        """Queue `event` for each action it concerns (returns at once; an action whose queue
        is full drops it, and that is reported)."""
        with self._lock:
            if self._stopping.is_set():
                return
            for lane in self._lanes:
                if event.kind not in lane.action.on:
                    continue
                if lane.queue.qsize() >= self._queue_size:
                    self._fail_locked(
                        lane.action, event, f"not run: {self._queue_size} alerts already waiting"
                    )
                    continue
                if lane.thread is None:
                    lane.thread = threading.Thread(
                        target=self._work,
                        args=(lane,),
                        name=f"factory-tui alert action {lane.action.describe()}",
                        daemon=True,
                    )
                    lane.thread.start()
                lane.queue.put(event)

    def failures(self) -> tuple[ActionFailure, ...]:
        """The last failed actions, newest last."""
        with self._lock:
            return tuple(self._failures)

    def take_unstored(self) -> tuple[ActionFailure, ...]:
        """The failures not handed out yet (to be stored in the audit trail), oldest first."""
        with self._lock:
            taken = tuple(self._unstored)
            self._unstored.clear()
            return taken

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every queued alert's actions have run (True) or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        return all(lane.wait_idle(max(0.0, deadline - time.monotonic())) for lane in self._lanes)

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Stop taking events; let queued ones run for up to `wait_s` in all (no retry waits)."""
        with self._lock:
            self._stopping.set()
            for lane in self._lanes:
                lane.queue.put(None)
        deadline = time.monotonic() + wait_s
        for lane in self._lanes:
            if lane.thread is None:
                continue
            lane.thread.join(max(0.0, deadline - time.monotonic()))
            if lane.thread.is_alive():
                log.warning(
                    "alert actions: stopped with %d alert(s) not handled by %s",
                    lane.queue.qsize(),
                    lane.action.describe(),
                )

    # --- the worker threads -------------------------------------------------------------------

    def _work(self, lane: _Lane) -> None:
        while (event := lane.queue.get()) is not None:
            try:
                self._run_one(lane.action, event)
            finally:
                lane.queue.task_done()
        lane.queue.task_done()

    def _run_one(self, action: AlertAction, event: AlertEvent) -> None:
        try:
            self._run(action, event)
        except ActionFailed as error:
            self._fail(action, event, str(error))
        except Exception as error:  # a bug must not stop every later action
            log.exception("alert action %s crashed", action.describe())
            self._fail(action, event, f"crashed: {error!r}")
        else:
            with self._lock:
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

    def _fail(self, action: AlertAction, event: AlertEvent, error: str) -> None:
        with self._lock:
            self._fail_locked(action, event, error)

    def _fail_locked(self, action: AlertAction, event: AlertEvent, error: str) -> None:
        what = action.describe()
        error = error[:ERROR_CHARS]
        log.warning("alert action %s failed for %s: %s", what, event.describe(), error)
        failure = ActionFailure(self._clock(), what, event.describe(), error)
        self._failures.append(failure)
        self._unstored.append(failure)


class _Lane:
    """One action's worker: its queue (unbounded underneath: the bound is enforced in
    `submit`, so `close` can always put its sentinel without waiting) and its thread."""

    __slots__ = ("action", "queue", "thread")

    def __init__(self, action: AlertAction) -> None:
        self.action = action
        self.queue: queue.Queue[AlertEvent | None] = queue.Queue()
        self.thread: threading.Thread | None = None

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until this action has run every queued alert (True) or `timeout_s` passed."""
        with self.queue.all_tasks_done:
            return self.queue.all_tasks_done.wait_for(
                lambda: self.queue.unfinished_tasks == 0, timeout_s
            )


def audit_entry(failure: ActionFailure) -> AuditEntry:
    """A failed action as the audit trail keeps it (kind `action_failed`)."""
    return AuditEntry(
        failure.at_us, ACTION_FAILED, failure.action, f"{failure.alert}: {failure.error}"
    )


def failure_of(record: AuditRecord) -> ActionFailure:
    """The failed action an `action_failed` audit entry stands for."""
    alert, _, error = record.detail.partition(": ")
    for phase in (" raised: ", " cleared: "):  # a subject may hold ": " itself
        head, found, tail = record.detail.partition(phase)
        if found:
            alert, error = head + phase[:-2], tail
            break
    return ActionFailure(record.at_us, record.peer, alert, error)


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
