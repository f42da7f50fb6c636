"""The history charts' baseline band: median ± 3 MADs by hour of the day (UTC) once an hour holds enough values
from two days, else over every value, with the agent's MAD floor; the points outside it are marked. The pilot test
draws it on the CPU chart of a real agent."""

from __future__ import annotations

import pytest
from textual_plotext import PlotextPlot
from tui_scene import Scene, rendered, wait_for

from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tui.app import build_app
from crucible_monitor.tui.baseline import Band, fit_band, outside
from crucible_monitor.tui.history import HistoryScreen

HOUR, DAY = 3600, 86400


def _days(count: int, value_at: dict[int, float], default: float, per_hour: int = 6) -> list[tuple[float, float]]:
    """``per_hour`` points in every hour of ``count`` days; hour ``h`` has value_at[h] (else ``default``), with a
    small alternating wobble so the MAD is not zero."""
    points = []
    for day in range(count):
        for hour in range(24):
            for i in range(per_hour):
                wobble = 0.1 if i % 2 else -0.1
                ts = 10 * DAY + day * DAY + hour * HOUR + i * (HOUR // per_hour)
                points.append((float(ts), value_at.get(hour, default) + wobble))
    return points


def test_the_band_follows_the_hour_of_the_day_once_two_days_are_known() -> None:
    band = fit_band(_days(3, {3: 10.0}, 1.0))
    assert band is not None and band.hourly()
    low, median, high = band.at(10 * DAY + 3 * HOUR + 60)
    assert median == pytest.approx(10.0) and low == pytest.approx(10.0 - 3 * 0.1) and high == pytest.approx(10.3)
    assert band.at(10 * DAY + 5 * HOUR)[1] == pytest.approx(1.0)


def test_one_day_of_history_gives_one_flat_band_over_every_value() -> None:
    band = fit_band(_days(1, {3: 10.0}, 1.0))
    assert band is not None and not band.hourly()
    assert band.at(10 * DAY + 3 * HOUR)[1] == band.at(10 * DAY + 5 * HOUR)[1] == pytest.approx(1.1)


def test_a_series_that_never_moved_gets_the_floor_and_a_spike_lies_outside() -> None:
    flat = [(float(10 * DAY + i * 600), 0.25) for i in range(3 * 144)]
    band = fit_band(flat, min_mad=0.02)
    assert band is not None
    low, _, high = band.at(flat[0][0])
    assert (low, high) == pytest.approx((0.25 - 0.06, 0.25 + 0.06))
    spike = (flat[5][0], 0.9)
    assert outside([*flat[:5], spike, (flat[6][0], 0.2)], band) == [spike]


def test_no_finite_value_gives_no_band() -> None:
    assert fit_band([]) is None
    assert fit_band([(0.0, float("nan")), (1.0, float("inf"))]) is None
    band = fit_band([(0.0, float("nan")), (1.0, 2.0)])
    assert isinstance(band, Band) and band.overall.median == 2.0 and band.overall.count == 1


@pytest.mark.anyio
async def test_the_cpu_chart_draws_the_baseline_band_of_a_real_agents_history(watched: Scene) -> None:
    remote = RemoteMonitor(watched.agent.base_url, watched.token)
    app = build_app(remote, remote.base_url, refresh=0.5, close=remote.aclose)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await wait_for(pilot, lambda: screen.band is not None, "the band learnt")
        assert screen.band is not None and not screen.band.hourly(), "minutes of history: one band for all hours"
        cpu = [v for s in screen.loaded[0].series for _, v in s.points]
        low, median, high = screen.band.at(screen.loaded[0].series[0].points[-1][0])
        assert low < median < high and min(cpu) <= median <= max(cpu)
        await wait_for(pilot, lambda: "baseline ±3 MAD" in rendered(screen.query_one(PlotextPlot)), "the band drawn")
        assert "baseline band (cpu total)" in rendered(screen.query_one("#history-title"))
