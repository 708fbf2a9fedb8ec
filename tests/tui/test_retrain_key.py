"""The alerts view's `r`: a supervisor raises retrain_suggested for the model highlighted in
the drift table, the alert actions get it with its evidence, and `r` again withdraws it."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

from textual.widgets import DataTable, Static

from factory_tui.config import AlertAction, AlertSettings
from factory_tui.console.app import make_app
from factory_tui.console.health import fixed_health
from factory_tui.console.pipeline import TickPipeline
from factory_tui.console.screens.alerts_screen import AlertsScreen
from factory_tui.engine.alerts import RETRAIN_SUGGESTED
from tests.tui.conftest import READING, SetClock
from tests.tui.floor import floor_settings
from tests.tui.test_drilldown import SIZE, alerts_of, open_view, row_text, settle


async def test_r_raises_retrain_suggested_by_hand_and_again_withdraws_it(
    floor_db: Path, clock: SetClock, tmp_path: Path
) -> None:
    got = tmp_path / "pipeline.jsonl"
    script = f"import sys; open({str(got)!r}, 'a').write(sys.stdin.read() + '\\n')"
    settings = floor_settings(str(floor_db), port=0, tick_s=60.0)
    settings.alerts = AlertSettings(
        actions=[AlertAction(on=[RETRAIN_SUGGESTED], command=[sys.executable, "-c", script])]
    )
    app = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "4", AlertsScreen)
        assert "r" in screen.active_bindings  # shown in the footer as "Retrain"
        drift = screen.query_one("#alerts-drift", DataTable)
        assert row_text(drift, "yolo-v8.2")[-1] == "ok"  # no drift: only a person asks
        await pilot.press("r")
        await pilot.pause()
        await settle(app, pilot)
        (alert,) = alerts_of(floor_db, RETRAIN_SUGGESTED, "yolo-v8.2")
        assert alert.cleared_us is None
        assert alert.details.endswith("raised by hand")
        active = screen.query_one("#alerts-active", DataTable)
        assert "RETRAIN SUGGESTED" in [row_text(active, key)[0] for key in (str(alert.id),)]
        await pilot.press("r")
        await pilot.pause()
        await settle(app, pilot)
        (withdrawn,) = alerts_of(floor_db, RETRAIN_SUGGESTED, "yolo-v8.2")
        assert withdrawn.cleared_us == clock.now_us
    # Leaving the console waits for queued actions: the command got both.
    raised, cleared = (json.loads(line) for line in got.read_text().splitlines())
    assert (raised["event"], cleared["event"]) == ("raised", "cleared")
    assert raised["kind"] == RETRAIN_SUGGESTED
    assert raised["subject"] == "yolo-v8.2"
    assert raised["evidence"]["by_hand"] is True
    assert raised["evidence"]["model_version"] == "yolo-v8.2"
    assert raised["evidence"]["baseline_confidence"] == 0.9


async def test_a_failed_action_is_listed_in_the_alerts_view(
    floor_db: Path, clock: SetClock
) -> None:
    with socket.socket() as closed:  # a port nobody listens on: the webhook is refused
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    settings = floor_settings(str(floor_db), port=0, tick_s=60.0)
    settings.alerts = AlertSettings(
        actions=[AlertAction(on=[RETRAIN_SUGGESTED], webhook=dead, retries=0, timeout_s=5)]
    )
    app = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await open_view(app, pilot, "4", AlertsScreen)
        failed = screen.query_one("#actions-failed", Static)
        assert not failed.display  # nothing failed: no section
        await pilot.press("r")
        await pilot.pause()
        await settle(app, pilot)  # the tick that raises it hands it to the actions
        assert isinstance(app.pipeline, TickPipeline)
        runner = app.pipeline.alerts.actions
        assert runner is not None
        assert await asyncio.to_thread(runner.wait_idle, 30)
        await settle(app, pilot)  # the next tick shows the failure
        assert failed.display
        text = str(failed.render())
        assert "Failed alert actions (1)" in text
        assert f"webhook {dead}: retrain_suggested yolo-v8.2 raised: cannot reach" in text


async def test_a_viewer_beside_the_owner_lists_its_failed_actions(
    floor_db: Path, clock: SetClock
) -> None:
    """The owner (serve, or a console) stores each failed action in the audit trail; a console
    viewing beside it lists them under its alerts view too."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    settings = floor_settings(str(floor_db), port=0, tick_s=60.0)
    settings.alerts = AlertSettings(
        actions=[AlertAction(on=[RETRAIN_SUGGESTED], webhook=dead, retries=0, timeout_s=5)]
    )
    owner = make_app(settings, clock=clock, health=fixed_health(READING), animations=False)
    async with owner.run_test(size=SIZE) as pilot:
        await settle(owner, pilot)
        await open_view(owner, pilot, "4", AlertsScreen)
        await pilot.press("r")
        await pilot.pause()
        await settle(owner, pilot)
        assert isinstance(owner.pipeline, TickPipeline)
        runner = owner.pipeline.alerts.actions
        assert runner is not None
        assert await asyncio.to_thread(runner.wait_idle, 30)
        await settle(owner, pilot)  # the owner's next tick stores the failure
        assert owner.listener is not None
        viewing = floor_settings(str(floor_db), port=owner.listener.port, tick_s=60.0)
        viewer = make_app(viewing, clock=clock, health=fixed_health(READING), animations=False)
        async with viewer.run_test(size=SIZE) as seen:
            await settle(viewer, seen)
            assert viewer.role == "viewer"
            screen = await open_view(viewer, seen, "4", AlertsScreen)
            await settle(viewer, seen)
            failed = screen.query_one("#actions-failed", Static)
            assert failed.display
            text = str(failed.render())
            assert "Failed alert actions (1)" in text
            assert f"webhook {dead}: retrain_suggested yolo-v8.2 raised: cannot reach" in text
