"""Snapshots of the main screens (pytest-textual-snapshot) at 80×24 and 160×48: the overview, the history chart
with its baseline band, and a failed service's drill-down with its log.

This is a recording: the dashboard runs over ``tests/tui/recorded/dashboard.json``, the answers a real agent watching
a real supervisord gave it (recorded with ``tests/tui/dashboard_replay.py``), with its clock frozen at the recording's
time and the time zone UTC, so that every run draws the same screen. After a deliberate change of a screen, run
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the SVGs under ``__snapshots__/`` before
committing them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from dashboard_replay import Replay
from textual.pilot import Pilot
from textual.widgets import DataTable
from tui_scene import BROKEN, BROKEN_SAYS, WORKER, wait_for

from crucible_monitor.tui.app import DashboardApp, build_app
from crucible_monitor.tui.details import ServiceScreen
from crucible_monitor.tui.history import HistoryScreen
from crucible_monitor.tui.logtail import LogTail
from crucible_monitor.tui.overview import OverviewScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
Compare = Callable[..., bool]


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch) -> Iterator[Replay]:
    """The recording, with the clock frozen at its time, local time UTC and colours on."""
    recording = Replay()
    monkeypatch.setattr(time, "time", lambda: recording.recorded_at)
    monkeypatch.delenv("NO_COLOR", raising=False)
    zone = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield recording
    finally:
        if zone is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = zone
        time.tzset()


def _app(replay: Replay) -> DashboardApp:
    # one refresh only: a second would add a value to each sparkline
    return build_app(replay, replay.base_url, refresh=3600.0, close=replay.aclose)


def _rows(app: DashboardApp, table: str) -> set[str]:
    return {str(key.value) for key in app.screen.query_one(table, DataTable).rows}


async def _overview_ready(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, DashboardApp)
    await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen) and app.ctx.conn.data is not None, "data")
    await wait_for(pilot, lambda: {WORKER, BROKEN} <= _rows(app, "#services"), "both programs listed")


@pytest.mark.parametrize("size", SIZES)
def test_overview(snap_compare: Compare, replay: Replay, size: tuple[int, int]) -> None:
    assert snap_compare(_app(replay), terminal_size=size, run_before=_overview_ready)


@pytest.mark.parametrize("size", SIZES)
def test_history_chart_with_its_baseline_band(snap_compare: Compare, replay: Replay, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _overview_ready(pilot)
        await pilot.press("h")
        app = pilot.app
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.band is not None, "band")

    assert snap_compare(_app(replay), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_a_failed_services_drill_down(snap_compare: Compare, replay: Replay, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _overview_ready(pilot)
        app = pilot.app
        services = app.screen.query_one("#services", DataTable)
        services.focus()
        services.move_cursor(row=services.get_row_index(BROKEN))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ServiceScreen) and app.screen.detail is not None, "it")
        log = app.screen.query_one(LogTail)
        await wait_for(pilot, lambda: any(BROKEN_SAYS in line for line in log.lines), "its log line")

    assert snap_compare(_app(replay), terminal_size=size, run_before=run_before)
