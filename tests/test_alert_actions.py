"""Alert actions: a webhook receiver on loopback gets the alert raised and cleared (with retries
after a 500, and the bearer token), a command writes what it got to a file, a hung action is
timed out, and none of it holds up the keeper's sync (the tick)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from factory_tui.alert_actions import ActionRunner, AlertEvent, audit_entry
from factory_tui.config import (
    ALERT_ACTION_KINDS,
    AlertAction,
    ConfigError,
    Settings,
    load_settings,
    unknown_env_names,
)
from factory_tui.console.alert_keeper import AlertKeeper
from factory_tui.engine.alerts import ALERT_KINDS, CAMERA_DARK, AlertCondition
from factory_tui.engine.snapshot import FactoryMetrics, Snapshot, Window
from factory_tui.records import AuditEntry
from factory_tui.storage import SqliteStore, Store
from factory_tui.view_models import ActionFailure

S = 1_000_000
T0 = 1_800_000_000 * S
WAIT_S = 10.0
"""Upper bound of a wait for the receiver (never reached when things work)."""


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers the statuses queued in `answers` (then 200),
    records every request; a request to /hang waits for `release`."""

    answers: list[int] = field(default_factory=list)
    requests: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    got: threading.Condition = field(default_factory=threading.Condition)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def wait_for(self, count: int) -> list[tuple[str, str | None, dict[str, Any]]]:
        with self.got:
            self.got.wait_for(lambda: len(self.requests) >= count, WAIT_S)
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.got:
                state.requests.append((self.path, self.headers.get("Authorization"), body))
                status = state.answers.pop(0) if state.answers else 200
                state.got.notify_all()
            if self.path == "/hang":
                state.release.wait(WAIT_S)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll: shutdown() waits for it.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def dark(subject: str = "W3", since_s: int = 0) -> AlertCondition:
    return AlertCondition(CAMERA_DARK, subject, f"{subject}: no event for 16 min", T0 + since_s * S)


def keeper_with(store: Store, *actions: AlertAction, token: str = "") -> AlertKeeper:
    settings = Settings()
    runner = ActionRunner(actions, token=token, clock=lambda: T0)
    return AlertKeeper(settings, store, actions=runner)


def test_webhook_gets_the_alert_raised_and_cleared_with_retries_and_the_token(
    fresh_db: Store, receiver: Receiver
) -> None:
    action = AlertAction(on=[CAMERA_DARK], webhook=receiver.url + "/hook", retry_delay_s=0.01)
    keeper = keeper_with(fresh_db, action, token="s3cret")
    receiver.answers = [500, 503]  # the raise is answered 500, 503, then 200
    assert keeper.sync((dark(),), T0 + 60 * S) is None
    assert keeper.sync((dark(),), T0 + 61 * S) is None  # still held: nothing new to send
    assert keeper.sync((), T0 + 120 * S) is None
    requests = receiver.wait_for(4)
    assert keeper.actions is not None
    keeper.close()
    assert [body["event"] for _, _, body in requests] == ["raised"] * 3 + ["cleared"]
    assert {auth for _, auth, _ in requests} == {"Bearer s3cret"}
    raised, cleared = requests[2][2], requests[3][2]
    assert raised["kind"] == CAMERA_DARK
    assert raised["subject"] == "W3"
    assert raised["site"] == "main"
    assert raised["started_at"] == "2027-01-15T08:00:00Z"
    assert raised["cleared_at"] is None
    assert cleared["started_at"] == raised["started_at"]
    assert cleared["cleared_at"] == "2027-01-15T08:02:00Z"
    assert cleared["details"] == "W3: no event for 16 min"


def test_a_webhook_that_keeps_failing_is_shown_after_its_retries(
    fresh_db: Store, receiver: Receiver
) -> None:
    action = AlertAction(on=[CAMERA_DARK], webhook=receiver.url, retries=2, retry_delay_s=0.01)
    runner = ActionRunner([action], clock=lambda: T0)
    keeper = AlertKeeper(Settings(), fresh_db, actions=runner)
    receiver.answers = [500, 500, 500]
    keeper.sync((dark(),), T0)
    receiver.wait_for(3)
    runner.close()
    (failure,) = runner.failures()
    assert failure.action == f"webhook {receiver.url}"
    assert failure.alert == "camera_dark W3 raised"
    assert failure.error == "HTTP 500 Internal Server Error (3 tries)"
    assert len(receiver.requests) == 3
    # The alerts view gets it through the keeper's state.
    state = keeper.state(fresh_db, _empty_snapshot(), lambda _w: None, history=False)
    assert state.action_failures == (failure,)


def test_a_4xx_is_not_retried(receiver: Receiver) -> None:
    runner = ActionRunner([AlertAction(on=[CAMERA_DARK], webhook=receiver.url, retry_delay_s=0.01)])
    receiver.answers = [401]
    runner.submit(AlertEvent("raised", CAMERA_DARK, "W3", "dark", "main", T0, T0))
    receiver.wait_for(1)
    runner.close()
    assert len(receiver.requests) == 1
    assert runner.failures()[0].error == "HTTP 401 Unauthorized"


def test_a_command_gets_the_alert_on_stdin_and_in_its_environment(
    fresh_db: Store, tmp_path: Path
) -> None:
    out = tmp_path / "got.jsonl"
    script = (
        "import json, os, sys\n"
        "got = {'stdin': json.load(sys.stdin), 'env': {k: v for k, v in os.environ.items()"
        " if k.startswith('FACTORY_TUI_ALERT_')}}\n"
        f"open({str(out)!r}, 'a').write(json.dumps(got) + '\\n')\n"
    )
    action = AlertAction(on=["camera_dark"], command=[sys.executable, "-c", script])
    keeper = keeper_with(fresh_db, action)
    keeper.sync((dark("W7"),), T0)
    keeper.sync((), T0 + 300 * S)
    assert keeper.actions is not None
    runner = keeper.actions
    keeper.close()  # waits for the queued commands
    assert runner.failures() == ()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["stdin"]["event"] for line in lines] == ["raised", "cleared"]
    assert lines[0]["stdin"]["subject"] == "W7"
    env = lines[1]["env"]
    assert env["FACTORY_TUI_ALERT_EVENT"] == "cleared"
    assert env["FACTORY_TUI_ALERT_KIND"] == "camera_dark"
    assert env["FACTORY_TUI_ALERT_SUBJECT"] == "W7"
    assert env["FACTORY_TUI_ALERT_CLEARED_AT"] == "2027-01-15T08:05:00Z"


def test_a_command_that_runs_factory_tui_gets_no_warning_about_the_alert_variables(
    tmp_path: Path,
) -> None:
    """The FACTORY_TUI_ALERT_* variables are factory-tui's own: a command action that runs
    factory-tui (here a report) is not told they are misspelled settings."""
    db, err = tmp_path / "factory.db", tmp_path / "report.err"
    SqliteStore.open(db).close()
    report = (
        "import subprocess, sys\n"
        f"with open({str(err)!r}, 'w') as err:\n"
        f"    subprocess.run([sys.executable, '-m', 'factory_tui', 'report', '--db', {str(db)!r},"
        " '--format', 'json'], stdout=subprocess.DEVNULL, stderr=err, check=True)\n"
    )
    # A cold factory-tui start takes seconds on a loaded machine: far from these bounds.
    action = AlertAction(on=[CAMERA_DARK], command=[sys.executable, "-c", report], timeout_s=120)
    runner = ActionRunner([action])
    runner.submit(AlertEvent("raised", CAMERA_DARK, "W3", "dark", "main", T0, T0))
    assert runner.wait_idle(120)
    runner.close()
    assert runner.failures() == ()
    assert err.read_text() == ""
    # A misspelled setting still warns, however close to the alert's variables it is.
    (warning,) = unknown_env_names({"FACTORY_TUI_ALERT_IDLE_S": "60", "FACTORY_TUI_ALERT_AT": ""})
    assert warning.startswith("FACTORY_TUI_ALERT_IDLE_S is not a factory-tui setting")


def test_a_failing_or_missing_command_is_reported(tmp_path: Path) -> None:
    runner = ActionRunner(
        [
            AlertAction(
                on=[CAMERA_DARK],
                command=[sys.executable, "-c", "import sys; sys.exit('no pipeline here')"],
            ),
            AlertAction(on=[CAMERA_DARK], command=[str(tmp_path / "missing")]),
        ],
        clock=lambda: T0,
    )
    runner.submit(AlertEvent("raised", CAMERA_DARK, "W3", "dark", "main", T0, T0))
    runner.close()
    errors = sorted(failure.error for failure in runner.failures())  # two workers: any order
    assert errors == [
        f"cannot run {tmp_path / 'missing'}: No such file or directory",
        "exit status 1: no pipeline here",
    ]


def test_a_hung_command_is_timed_out() -> None:
    runner = ActionRunner(
        [
            AlertAction(
                on=[CAMERA_DARK],
                command=[sys.executable, "-c", "import time; time.sleep(60)"],
                timeout_s=0.5,
            )
        ]
    )
    runner.submit(AlertEvent("raised", CAMERA_DARK, "W3", "dark", "main", T0, T0))
    runner.close(wait_s=WAIT_S)
    assert [failure.error for failure in runner.failures()] == ["timed out after 0.5 s (killed)"]


def test_a_hung_webhook_is_timed_out(receiver: Receiver) -> None:
    runner = ActionRunner(
        [AlertAction(on=[CAMERA_DARK], webhook=receiver.url + "/hang", timeout_s=0.5, retries=0)]
    )
    runner.submit(AlertEvent("raised", CAMERA_DARK, "W3", "dark", "main", T0, T0))
    runner.close(wait_s=WAIT_S)
    assert [failure.error for failure in runner.failures()] == ["no answer in 0.5 s (1 try)"]


def test_the_tick_never_waits_for_an_action(fresh_db: Store, receiver: Receiver) -> None:
    """The receiver holds the first request until released: sync returns all the same, and
    past the queue's bound further alerts are dropped and reported, not waited for."""
    action = AlertAction(on=[CAMERA_DARK], webhook=receiver.url + "/hang", timeout_s=WAIT_S)
    runner = ActionRunner([action], clock=lambda: T0, queue_size=1)
    keeper = AlertKeeper(Settings(), fresh_db, actions=runner)
    assert keeper.sync((dark("W1"),), T0) is None
    receiver.wait_for(1)  # the worker is inside the first request, which hangs
    assert keeper.sync((dark("W1"), dark("W2")), T0 + S) is None  # queued (1 of 1)
    assert keeper.sync((dark("W1"), dark("W2"), dark("W3")), T0 + 2 * S) is None  # dropped
    assert [failure.alert for failure in runner.failures()] == ["camera_dark W3 raised"]
    assert "1 alerts already waiting" in runner.failures()[0].error
    receiver.release.set()
    receiver.wait_for(2)
    runner.close(wait_s=WAIT_S)
    assert runner.done == 2


def test_a_restart_does_not_raise_again_what_is_still_active(
    fresh_db: Store, receiver: Receiver
) -> None:
    action = AlertAction(on=[CAMERA_DARK], webhook=receiver.url, retry_delay_s=0.01)
    first = keeper_with(fresh_db, action)
    first.sync((dark("W1"), dark("W2")), T0)
    receiver.wait_for(2)
    assert first.actions is not None
    first.actions.close()
    second = keeper_with(fresh_db, action)  # a new console over the same table
    second.sync((dark("W1"),), T0 + 60 * S)  # W1 still dark, W2 ended while we were down
    requests = receiver.wait_for(3)
    assert second.actions is not None
    second.actions.close()
    assert [(body["event"], body["subject"]) for _, _, body in requests] == [
        ("raised", "W1"),
        ("raised", "W2"),
        ("cleared", "W2"),
    ]


def test_config_actions_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "factory.toml"
    path.write_text(
        '[alerts]\nwebhook_token = "t"\n[[alerts.actions]]\non = ["camera_dark"]\n'
        'webhook = "https://hooks.example/x"\n[[alerts.actions]]\non = ["retrain_suggested"]\n'
        'command = ["/bin/true"]\n'
    )
    settings = load_settings(path)
    assert [action.describe() for action in settings.alerts.actions] == [
        "webhook https://hooks.example/x",
        "command /bin/true",
    ]
    for body, message in (
        ('on = ["camera_dark"]\n', "either command"),
        ('on = ["camera_dark"]\ncommand = ["x"]\nwebhook = "https://h/"\n', "either command"),
        ('on = ["dark"]\ncommand = ["x"]\n', "unknown alert kind 'dark'"),
        ('on = ["camera_dark"]\nwebhook = "ftp://h/"\n', "http:// or https://"),
    ):
        path.write_text("[[alerts.actions]]\n" + body)
        with pytest.raises(ConfigError, match=message):
            load_settings(path)


def test_config_knows_every_alert_kind() -> None:
    assert ALERT_ACTION_KINDS == ALERT_KINDS


def _empty_snapshot() -> Snapshot:
    factory = FactoryMetrics(0.0, 0.0, 0.0, 0, None, None, None, 0, 0, 0, 0)
    return Snapshot(Window(T0, T0, "day"), T0, (), (), factory, 0, 0)


def test_a_viewer_finds_a_failure_behind_many_newer_audit_entries(fresh_db: Store) -> None:
    """A viewer reads only the action_failed entries: a busy listener's newer entries (here
    600 refusals, more than any fixed look-back) do not hide an older failure."""
    failure = ActionFailure(T0, "command /x", "camera_dark W3 raised", "exit status 1")
    fresh_db.add_audit([audit_entry(failure)])
    fresh_db.add_audit(
        [AuditEntry(T0 + i, "peer_refused", f"10.0.0.1:{i}", "not allowed") for i in range(600)]
    )
    viewer = AlertKeeper(Settings(), None)
    seen = viewer.state(fresh_db, _empty_snapshot(), lambda _w: None, history=False)
    assert seen.action_failures == (failure,)


def test_a_restart_holds_the_hand_raised_retrain_suggestions(fresh_db: Store) -> None:
    """The details' 'raised by hand' tells a new console which suggestions a person made."""
    details = "yolo-v8.2: retrain suggested: raised by hand"
    fresh_db.sync_alerts([("retrain_suggested", "yolo-v8.2", details, T0)], T0)
    keeper = AlertKeeper(Settings(), fresh_db)
    assert keeper.retrain_requested() == frozenset()
    keeper.state(fresh_db, _empty_snapshot(), lambda _w: None, history=False)
    assert keeper.retrain_requested() == {"yolo-v8.2"}
    assert keeper.request_retrain("yolo-v8.2") == "retrain suggestion for yolo-v8.2 withdrawn"
    viewer = AlertKeeper(Settings(), None)
    assert "owns the listener" in viewer.request_retrain("yolo-v8.2")


def test_a_hung_webhook_does_not_hold_up_a_command_beside_it(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Each action has its own worker: the webhook hangs on every alert, the command still
    gets every alert at once, raised before cleared."""
    out = tmp_path / "got.txt"
    script = (
        "import json, sys\n"
        "got = json.load(sys.stdin)\n"
        f"open({str(out)!r}, 'a').write(got['subject'] + ' ' + got['event'] + '\\n')\n"
    )
    hung = AlertAction(on=[CAMERA_DARK], webhook=receiver.url + "/hang", timeout_s=WAIT_S * 3)
    command = AlertAction(on=[CAMERA_DARK], command=[sys.executable, "-c", script])
    runner = ActionRunner([hung, command], clock=lambda: T0)
    events = [
        AlertEvent(phase, CAMERA_DARK, subject, "dark", "main", T0, T0)
        for subject in ("W1", "W2", "W3")
        for phase in ("raised", "cleared")
    ]
    for event in events:
        runner.submit(event)
    receiver.wait_for(1)  # the webhook's worker is stuck in its first request
    expected = [f"{event.subject} {event.phase}" for event in events]
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) == len(expected):
            break
        time.sleep(0.05)
    assert out.read_text().splitlines() == expected
    assert len(receiver.requests) == 1  # still held: the command did not wait for it
    assert runner.failures() == ()
    receiver.release.set()
    runner.close(wait_s=WAIT_S)


def test_a_viewer_lists_the_failures_the_owner_stored(fresh_db: Store, tmp_path: Path) -> None:
    """`serve` owns the database; the console beside it is a viewer and lists the failed
    actions from the audit trail (kind action_failed)."""
    action = AlertAction(on=[CAMERA_DARK], command=[str(tmp_path / "missing")])
    runner = ActionRunner([action], clock=lambda: T0)
    owner = AlertKeeper(Settings(), fresh_db, actions=runner)
    owner.sync((dark("W3"),), T0)
    assert runner.wait_idle(WAIT_S)
    # The empty snapshot has no W3: its alert clears in this tick, and the clear's action may
    # fail (and be stored) at any moment from here on; only the raise's failure is followed.
    owned = owner.state(fresh_db, _empty_snapshot(), lambda _w: None, history=False)
    (failure,) = [f for f in owned.action_failures if f.alert == "camera_dark W3 raised"]
    (entry,) = [
        e
        for e in fresh_db.audit_entries()
        if e.kind == "action_failed" and e.detail.startswith("camera_dark W3 raised")
    ]
    assert entry.peer == f"command {tmp_path / 'missing'}"
    viewer = AlertKeeper(Settings(), None)
    seen = viewer.state(fresh_db, _empty_snapshot(), lambda _w: None, history=True)
    assert failure in seen.action_failures
    # Stored once: the next tick does not write it again.
    owner.state(fresh_db, _empty_snapshot(), lambda _w: None, history=False)
    raised = [
        e
        for e in fresh_db.audit_entries()
        if e.kind == "action_failed" and e.detail.startswith("camera_dark W3 raised")
    ]
    assert len(raised) == 1
    runner.close()
