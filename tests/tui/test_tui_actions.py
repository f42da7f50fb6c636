"""Actions from the dashboard reach the real agent and the real supervisord: acknowledging an alert changes its
state in the agent, silencing creates a silence with the alert's labels, a restart (confirmed with the agent's
dry-run text) gives the supervisor program a new pid and leaves an audit record; a refused restart shows the
agent's reason and the dashboard carries on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import DataTable, Input
from tui_scene import BROKEN, WORKER, Scene, rendered, scene, wait_for

from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tui.actions import ConfirmModal, DurationModal
from crucible_monitor.tui.app import DashboardApp, build_app
from crucible_monitor.tui.overview import OverviewScreen

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def acted_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """An agent of these tests' own: they acknowledge, silence and restart on it."""
    with scene(tmp_path_factory.mktemp("tui-actions")) as ready:
        yield ready


def _app(scene: Scene) -> DashboardApp:
    remote = RemoteMonitor(scene.agent.base_url, scene.token)
    return build_app(remote, remote.base_url, refresh=0.5, close=remote.aclose)


async def _select(app: DashboardApp, table_id: str, key: str) -> None:
    table = app.screen.query_one(table_id, DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(key))


async def test_acknowledging_an_alert_changes_its_state_in_the_agent(acted_on: Scene) -> None:
    app = _app(acted_on)
    async with RemoteMonitor(acted_on.agent.base_url, acted_on.token) as remote:
        [alert] = [a for a in await remote.list_alerts(state="firing") if a.labels.get("service") == BROKEN]
        assert alert.acknowledgement is None
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: str(alert.id) in _keys(app, "#alerts"), "the alert listed")
            await _select(app, "#alerts", str(alert.id))
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
            assert alert.name in rendered(app.screen.query_one("Label"))
            await pilot.press("y")
            await wait_for(pilot, lambda: app.ctx.last_action is not None, "the acknowledgement done")
            after = await remote.get_alert(alert.id)
            assert after.acknowledgement is not None and after.acknowledgement.by == "default (dashboard)"
            await wait_for(
                pilot,
                lambda: "ack" in [str(c) for c in app.screen.query_one("#alerts", DataTable).get_row(str(alert.id))],
                "the row marked ack after the refresh",
            )


async def test_silencing_an_alert_for_two_hours_creates_a_silence_with_its_labels(acted_on: Scene) -> None:
    app = _app(acted_on)
    async with RemoteMonitor(acted_on.agent.base_url, acted_on.token) as remote:
        [alert] = [a for a in await remote.list_alerts(state="active") if a.labels.get("service") == BROKEN]
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: str(alert.id) in _keys(app, "#alerts"), "the alert listed")
            await _select(app, "#alerts", str(alert.id))
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, DurationModal), "the duration question")
            box = app.screen.query_one(Input)
            box.value = "forever"
            await pilot.press("enter")
            assert isinstance(app.screen, DurationModal), "a bad duration keeps the question open"
            assert "forever" in rendered(app.screen.query_one("#duration-hint"))
            box.value = "2h"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.ctx.last_action is not None, "the silence made")
        silences = [s for s in await remote.list_silences() if s.author == "default (dashboard)"]  # token (claim)
        assert len(silences) == 1 and silences[0].active
        assert f"service={BROKEN}" in silences[0].matchers and "alertname=ServiceDown" in silences[0].matchers


async def test_a_confirmed_restart_reaches_the_supervisor_program_and_is_audited(acted_on: Scene) -> None:
    pid_before = acted_on.supervisord.process_info(WORKER)["pid"]
    app = _app(acted_on)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: WORKER in _keys(app, "#services"), "the worker listed")
        await _select(app, "#services", WORKER)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        body = rendered(app.screen.query_one("#confirm-body"))
        assert "dry run: would run" in body and "supervisor" in body, body
        assert acted_on.supervisord.process_info(WORKER)["pid"] == pid_before, "nothing runs before the answer"
        await pilot.press("y")
        await wait_for(pilot, lambda: (app.ctx.last_action or "").startswith(f"restart {WORKER}"), "the restart")
        assert isinstance(app.screen, OverviewScreen)
        assert "restarted" in (app.ctx.last_action or ""), app.ctx.last_action
        assert "audit #" in (app.ctx.last_action or "")
        last = app.screen.query_one("#last-action")
        await wait_for(pilot, lambda: "last action: restart" in rendered(last), "the result on the overview")
    info = acted_on.supervisord.process_info(WORKER)
    assert info["statename"] == "RUNNING" and info["pid"] != pid_before
    async with RemoteMonitor(acted_on.agent.base_url, acted_on.token) as remote:
        records = (await remote.audit(target=WORKER)).records
    results = sorted((r.result, r.dry_run) for r in records)
    assert ("restarted", False) in results and any(dry for _, dry in results), results
    assert all(r.actor == "default" for r in records), [(r.actor, r.claimed_by) for r in records]  # the token


async def test_a_refused_restart_shows_the_agents_reason_and_the_dashboard_carries_on(acted_on: Scene) -> None:
    app = _app(acted_on)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: BROKEN in _keys(app, "#services"), "the broken program listed")
        await _select(app, "#services", BROKEN)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.ctx.last_action is not None, "the refusal")
        assert "not on the restart allowlist" in (app.ctx.last_action or "")
        assert isinstance(app.screen, OverviewScreen), "no confirmation for a refused dry run"
        assert app.screen.check_action("restart", ()) is True, "a refusal of the moment does not grey it out"
        before = app.ctx.conn.fetched_at
        await wait_for(pilot, lambda: app.ctx.conn.fetched_at != before, "the next refresh")


def _keys(app: DashboardApp, table: str) -> list[str]:
    return [str(k.value) for k in app.screen.query_one(table, DataTable).rows]
