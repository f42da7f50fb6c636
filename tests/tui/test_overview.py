"""The dashboard driven by Textual's pilot against a real agent watching a real supervisord: the overview leads
with the agent's own headline, lists the services and the firing alert, draws sparklines that grow with each
refresh; Enter drills into a service and an alert; the process list sorts and filters; the history charts load;
``--read-only`` hides the actions."""

from __future__ import annotations

import httpx
import pytest
from textual.widgets import DataTable, Input, Log, Sparkline
from tui_scene import BROKEN, BROKEN_SAYS, DOWN_CHECK, UP_CHECK, WORKER, Scene, rendered, wait_for

from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tui.app import DashboardApp, build_app
from crucible_monitor.tui.details import AlertScreen, CheckScreen, ProcessScreen, ServiceScreen
from crucible_monitor.tui.history import HistoryScreen
from crucible_monitor.tui.overview import OverviewScreen

pytestmark = pytest.mark.anyio


def _app(scene: Scene, *, read_only: bool = False, refresh: float = 0.5) -> tuple[DashboardApp, RemoteMonitor]:
    remote = RemoteMonitor(scene.agent.base_url, scene.token)
    return build_app(remote, remote.base_url, refresh=refresh, read_only=read_only, close=remote.aclose), remote


def _rows(app: DashboardApp, table: str) -> list[str]:
    return [str(key.value) for key in app.screen.query_one(table, DataTable).rows]


async def test_the_overview_shows_the_agents_headline_services_and_firing_alert(watched: Scene) -> None:
    summary = httpx.get(
        f"{watched.agent.base_url}/api/v1/status", headers={"Authorization": f"Bearer {watched.token}"}
    ).json()
    app, _ = _app(watched)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
        assert isinstance(app.screen, OverviewScreen)
        headline = rendered(app.screen.query_one("#headline"))
        assert headline.startswith(summary["status"].upper()), headline
        assert summary["headline"].split(";")[0] in " ".join(headline.split())
        await wait_for(pilot, lambda: {WORKER, BROKEN} <= set(_rows(app, "#services")), "both programs listed")
        services = app.screen.query_one("#services", DataTable)
        worker = [str(c) for c in services.get_row(WORKER)]
        assert worker[:4] == [WORKER, "queue", "supervisor", "running"] or worker[3] == "running", worker
        broken = [str(c) for c in services.get_row(BROKEN)]
        assert broken[3] == "exited"
        alerts = app.screen.query_one("#alerts", DataTable)
        cells = [" ".join(str(c) for c in alerts.get_row(key)) for key in alerts.rows]
        assert any("critical" in row and "ServiceDown" in row and BROKEN in row for row in cells), cells
        assert BROKEN in rendered(app.screen.query_one("#findings")), "the findings name the broken program"


async def test_sparklines_start_from_history_and_grow_with_each_refresh(watched: Scene) -> None:
    app, _ = _app(watched, refresh=0.3)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
        seeded = len(app.ctx.trends.values("memory"))
        assert seeded >= 2, "the history operation seeds the sparkline"
        await wait_for(pilot, lambda: len(app.ctx.trends.values("memory")) >= seeded + 3, "three more refreshes")
        line = app.screen.query_one("#vital-memory Sparkline", Sparkline)
        assert list(line.data or []) == app.ctx.trends.values("memory")


async def test_enter_on_a_service_opens_its_details_events_and_log(watched: Scene) -> None:
    app, _ = _app(watched)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: BROKEN in _rows(app, "#services"), "the services listed")
        services = app.screen.query_one("#services", DataTable)
        services.focus()
        services.move_cursor(row=services.get_row_index(BROKEN))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ServiceScreen), "the service screen")
        screen = app.screen
        assert isinstance(screen, ServiceScreen)
        await wait_for(pilot, lambda: screen.detail is not None, "the service's details")
        assert "exited" in rendered(screen.query_one("#title"))
        assert screen.detail is not None
        assert _rows(app, "#events") == [str(e.id) for e in screen.detail.recent_events]
        log = screen.query_one("#log", Log)
        await wait_for(pilot, lambda: any(BROKEN_SAYS in line for line in log.lines), "the program's log line")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), "back on the overview")


async def test_enter_on_an_alert_shows_its_transitions(watched: Scene) -> None:
    app, _ = _app(watched)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: len(_rows(app, "#alerts")) > 0, "the alerts listed")
        app.screen.query_one("#alerts", DataTable).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertScreen), "the alert screen")
        screen = app.screen
        assert isinstance(screen, AlertScreen)
        await wait_for(pilot, lambda: screen.alert is not None, "the alert's details")
        assert screen.alert is not None
        kinds = [str(screen.query_one("#transitions", DataTable).get_row(k)[1]) for k in _rows(app, "#transitions")]
        assert kinds == [str(t.kind) for t in screen.alert.history] and kinds, kinds
        assert BROKEN in rendered(screen.query_one("#title"))


async def test_the_process_list_sorts_by_memory_and_filters(watched: Scene) -> None:
    app, _ = _app(watched)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(
            pilot,
            lambda: app.ctx.conn.data is not None and app.ctx.conn.data.system.top_processes is not None,
            "a process snapshot",
        )
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ProcessScreen), "the process screen")
        await wait_for(pilot, lambda: len(_rows(app, "#processes")) > 1, "processes listed")
        await pilot.press("m")
        table = app.screen.query_one("#processes", DataTable)
        snapshot = app.ctx.conn.data.system.top_processes if app.ctx.conn.data else None
        assert snapshot is not None
        memory = {p.pid: p.memory_bytes for p in [*snapshot.by_cpu, *snapshot.by_memory]}
        order = [memory[int(k)] for k in _rows(app, "#processes")]
        assert order == sorted(order, reverse=True), "largest resident memory first"
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"sleep")
        await wait_for(
            pilot,
            lambda: all(
                "sleep" in " ".join(str(c) for c in table.get_row(k)).lower() for k in _rows(app, "#processes")
            ),
            "only matching processes",
        )


async def test_the_history_screen_charts_stored_points_and_moves_back_in_time(watched: Scene) -> None:
    app, _ = _app(watched)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await wait_for(pilot, lambda: bool(screen.loaded), "the history loaded")
        assert screen.loaded[0].metric == "cpu_usage_ratio" and screen.loaded[0].series
        assert "CPU" in rendered(screen.query_one("#history-title"))
        await pilot.press("n")
        await wait_for(pilot, lambda: screen.loaded[0].metric == "memory_used_ratio", "the memory chart")
        await wait_for(pilot, lambda: [f.resource for f in screen.forecasts] == ["memory"], "the memory forecast")
        assert screen.forecasts[0].note in rendered(screen.query_one("#history-title"))
        await pilot.press("2", "left_square_bracket")
        assert screen.back == 1 and screen.span == 1
        await wait_for(pilot, lambda: "ending now" not in rendered(screen.query_one("#history-title")), "moved back")
        await pilot.press("right_square_bracket")
        assert screen.back == 0


async def test_read_only_hides_the_actions_and_the_palette_finds_a_service(watched: Scene) -> None:
    app, _ = _app(watched, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
        shown = {
            b.binding.action
            for b in app.screen.active_bindings.values()
            if app.screen.check_action(b.binding.action, ())
        }
        assert not {"acknowledge", "silence", "restart"} & shown
        await pilot.press("r")
        assert isinstance(app.screen, OverviewScreen), "no confirmation opens"
        await pilot.press("ctrl+p")
        await pilot.press(*f"go to service {WORKER}")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ServiceScreen), "the service screen from the palette")
        assert isinstance(app.screen, ServiceScreen) and app.screen.service == WORKER


async def test_question_mark_shows_the_key_bindings_and_t_switches_the_theme(watched: Scene) -> None:
    app, _ = _app(watched)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: bool(app.screen.query("HelpPanel")), "the help panel")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: not app.screen.query("HelpPanel"), "the help panel closed")
        dark = app.theme
        await pilot.press("t")
        assert app.theme != dark and "light" in app.theme
        await pilot.press("t")
        assert app.theme == dark


async def test_checks_show_status_and_latency_and_enter_lists_a_failing_checks_failures(watched: Scene) -> None:
    app, _ = _app(watched)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: {UP_CHECK, DOWN_CHECK} <= set(_rows(app, "#checks")), "both checks listed")
        checks = app.screen.query_one("#checks", DataTable)
        up, down = ([str(c) for c in checks.get_row(name)] for name in (UP_CHECK, DOWN_CHECK))
        assert up[1:3] == ["up", "200"] and up[3].endswith(" ms"), up
        assert down[1:3] == ["status", "503"], down
        checks.focus()
        checks.move_cursor(row=checks.get_row_index(DOWN_CHECK))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckScreen), "the check screen")
        screen = app.screen
        assert isinstance(screen, CheckScreen)
        await wait_for(pilot, lambda: bool(screen.events), "the check's failure events")
        assert screen.events is not None and {e.kind for e in screen.events} >= {"check_failed"}
        assert _rows(app, "#check-events") == [str(e.id) for e in screen.events]
        assert "503" in rendered(screen.query_one("#title"))
