"""The history screen: one chart of a family of series (textual-plotext) over 1 h, 24 h, 7 d or 30 d from the
history operation (the agent picks the raw or rolled-up tier); ``[`` ``]`` move the window back and forth. The
chart's first series has its baseline band (:mod:`~crucible_monitor.tui.baseline`, learnt from the
:data:`BASELINE_SPAN` before the window's end) with the points outside it marked, and red lines where anomalies
started."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from crucible_monitor.errors import CrucibleError
from crucible_monitor.remote import AgentUnavailable
from crucible_monitor.schemas import AnomalyView, Forecast, MetricHistory
from crucible_monitor.tui.baseline import BAND_MADS, Band, fit_band, outside
from crucible_monitor.tui.source import Context
from crucible_monitor.tui.widgets import Banner
from crucible_monitor.units import human

__all__ = ["BASELINE_SPAN", "BASELINE_STEP", "CHARTS", "RANGES", "Chart", "HistoryScreen"]

RANGES: tuple[tuple[str, float], ...] = (("1h", 3600.0), ("24h", 86400.0), ("7d", 7 * 86400.0), ("30d", 30 * 86400.0))
POINTS = 120
"""Buckets per chart: the step is the window over this."""
BASELINE_SPAN = 7 * 86400.0
"""Seconds of history before the window's end that the baseline band is learnt from."""
BASELINE_STEP = 600.0
"""The step of that history (six values per hour of each day)."""


@dataclass(frozen=True)
class Chart:
    """One chart: a title, its series as (legend, metric, label filter, agg), the capacity forecast it extends
    into the future (``memory``, or ``filesystem`` for every mountpoint charted), and the smallest spread of its
    first series that counts for the baseline band (the agent's ``min_mad`` for that key series)."""

    title: str
    series: tuple[tuple[str, str, dict[str, str] | None, str | None], ...]
    forecast: str | None = None
    min_mad: float = 0.0


CHARTS: tuple[Chart, ...] = (
    Chart("CPU", (("cpu", "cpu_usage_ratio", {"cpu": "total"}, None),), min_mad=0.02),
    Chart(
        "Memory and swap",
        (("memory", "memory_used_ratio", None, None), ("swap", "swap_used_ratio", None, None)),
        forecast="memory",
        min_mad=0.005,
    ),
    Chart(
        "Load",
        (("1m", "load1", None, None), ("5m", "load5", None, None), ("15m", "load15", None, None)),
        min_mad=0.1,
    ),
    Chart("Disk used", (("", "filesystem_used_ratio", None, None),), forecast="filesystem", min_mad=0.005),
    Chart(
        "Network",
        (
            ("rx", "network_receive_bytes_total", None, "rate"),
            ("tx", "network_transmit_bytes_total", None, "rate"),
        ),
        min_mad=16384,
    ),
)


class HistoryScreen(Screen[None]):
    """Charts of the stored history; ``1``–``4`` pick the range, ``[`` ``]`` move it, ``n``/``N`` change chart."""

    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("left_square_bracket", "move(-1)", "Earlier", key_display="["),
        Binding("right_square_bracket", "move(1)", "Later", key_display="]"),
        Binding("n", "chart(1)", "Next chart"),
        Binding("N", "chart(-1)", "Prev chart", show=False),
        Binding("1", "range(0)", "1h"),
        Binding("2", "range(1)", "24h"),
        Binding("3", "range(2)", "7d"),
        Binding("4", "range(3)", "30d"),
        Binding("plus", "zoom(-1)", "Zoom in", key_display="+", show=False),
        Binding("minus", "zoom(1)", "Zoom out", key_display="-", show=False),
    ]

    def __init__(self, ctx: Context, chart: int = 0) -> None:
        """Args:
        ctx: the dashboard's shared state.
        chart: which of :data:`CHARTS` to show first.
        """
        super().__init__()
        self.ctx = ctx
        self.chart = chart
        self.span = 0
        self.back = 0
        """Windows back from now (0: the window ends now)."""
        self.loaded: list[MetricHistory] = []
        self.forecasts: list[Forecast] = []
        """The capacity forecasts drawn past the end of a window that ends now."""
        self.anomalies: list[AnomalyView] = []
        """The anomalies that started in the window, marked as vertical lines."""
        self.band: Band | None = None
        """The baseline band of the chart's first series (None: no history to learn it from)."""
        self.banded: tuple[str, dict[str, str]] | None = None
        """That series: its legend and labels."""
        self._bands: dict[tuple[int, int], tuple[Band | None, dict[str, str]]] = {}
        """The band learnt, by chart and hour of the window's end: learnt again once an hour, not at each refresh."""

    def compose(self) -> ComposeResult:
        yield Banner()
        yield Static(id="history-title")
        yield PlotextPlot(id="chart")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def show(self, fresh: bool = True) -> None:
        """Redraw the banner; a window that ends now follows the refreshes."""
        now = time.time()
        conn = self.ctx.conn
        self.query_one(Banner).show_state(conn, now, self.ctx.stale_after)
        if fresh and self.back == 0:
            self.reload()

    def window(self, now: float) -> tuple[float, float]:
        """The start and end of the window shown."""
        width = RANGES[self.span][1]
        end = now - self.back * width
        return end - width, end

    def action_move(self, direction: int) -> None:
        self.back = max(0, self.back - direction)
        self.reload()

    def action_chart(self, step: int) -> None:
        self.chart = (self.chart + step) % len(CHARTS)
        self.reload()

    def action_range(self, index: int) -> None:
        self.span, self.back = index, 0
        self.reload()

    def action_zoom(self, step: int) -> None:
        self.span = min(len(RANGES) - 1, max(0, self.span + step))
        self.reload()

    @work(exclusive=True, group="history")
    async def reload(self) -> None:
        with contextlib.suppress(NoMatches):  # the screen went away while the agent answered
            chart = CHARTS[self.chart]
            start, end = self.window(time.time())
            step = max(1.0, (end - start) / POINTS)
            try:
                loaded = list(
                    await asyncio.gather(
                        *(
                            self.ctx.ops.history(metric, start=start, end=end, step=step, agg=agg, labels=labels)
                            for _, metric, labels, agg in chart.series
                        )
                    )
                )
                anomalies = [a for a in await self.ctx.ops.list_anomalies(since=start, limit=50) if _ts(a.start) <= end]
                forecasts = await self._forecasts(chart, end - start, loaded) if self.back == 0 else []
                band, banded = await self._band(chart, end, loaded)
            except CrucibleError as exc:
                self.query_one("#history-title", Static).update(Text(str(exc), style="bold red"))
                return
            # all at once, after the last answer: what the screen holds is always what it draws
            self.loaded, self.anomalies, self.forecasts, self.band, self.banded = (
                loaded,
                anomalies,
                forecasts,
                band,
                banded,
            )
            self.draw(chart, start, end)

    async def _band(
        self, chart: Chart, end: float, loaded: list[MetricHistory]
    ) -> tuple[Band | None, tuple[str, dict[str, str]] | None]:
        """Learn (or recall) the baseline band of the chart's first series from the :data:`BASELINE_SPAN` before
        ``end``: the series charted first of its metric (the first mountpoint, the first interface); with the
        series' legend and labels."""
        key = (self.chart, int(end // 3600))
        if key not in self._bands:
            _, metric, labels, agg = chart.series[0]
            history = await self.ctx.ops.history(
                metric, start=end - BASELINE_SPAN, end=end, step=BASELINE_STEP, agg=agg, labels=labels
            )
            charted = [s for s in loaded[0].series if s.points] if loaded else []
            wanted = charted[0].labels if charted else None
            learnt = next((s for s in history.series if wanted is None or s.labels == wanted), None)
            band = fit_band(learnt.points, min_mad=chart.min_mad) if learnt is not None else None
            self._bands = {key: (band, learnt.labels if learnt is not None else {})}
        band, labels_of = self._bands[key]
        return band, (chart.series[0][0], labels_of) if band is not None else None

    async def _forecasts(self, chart: Chart, horizon: float, loaded: list[MetricHistory]) -> list[Forecast]:
        """The chart's forecasts over ``horizon`` seconds ahead; a resource the agent cannot forecast is left out."""
        if chart.forecast is None:
            return []
        resources = ["memory"]
        if chart.forecast == "filesystem":
            mounts = {s.labels.get("mountpoint") for h in loaded for s in h.series}
            resources = [f"filesystem:{m}" for m in sorted(m for m in mounts if m)]
        found = []
        for resource in resources:
            try:
                found.append(await self.ctx.ops.forecast_capacity(resource, horizon=horizon))
            except AgentUnavailable:
                raise
            except CrucibleError:  # too little history yet: the chart shows the past only
                continue
        return found

    def draw(self, chart: Chart, start: float, end: float) -> None:
        """Plot what :meth:`reload` read: every series of every metric of ``chart``, legends by label."""
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        unit = self.loaded[0].unit if self.loaded else ""
        ratio = unit == "ratio"
        points, peak = 0, 0.0
        name, width = RANGES[self.span]
        unit_name, unit_seconds = ("minutes", 60.0) if width <= 3600 else ("hours", 3600.0)
        if width > 2 * 86400:
            unit_name, unit_seconds = "days", 86400.0
        for (legend, _, _, _), history in zip(chart.series, self.loaded, strict=True):
            for series in history.series:
                if not series.points:
                    continue
                xs = [(ts - end) / unit_seconds for ts, _ in series.points]
                ys = [v * 100 if ratio else v for _, v in series.points]
                labels = ",".join(f"{v}" for k, v in sorted(series.labels.items()) if k not in ("host",))
                plt.plot(xs, ys, label=" ".join(p for p in (legend, labels) if p) or history.metric, marker="braille")
                points += len(xs)
                peak = max(peak, *ys)
        peak = max(peak, self._draw_band(plt, end, unit_seconds, ratio))
        for forecast in self.forecasts:
            if forecast.current is None or forecast.predicted is None:
                continue
            ahead = (_ts(forecast.horizon_end) - end) / unit_seconds
            label = f"forecast {forecast.resource} ({forecast.fit_quality})"
            plt.plot([0.0, ahead], [forecast.current * 100, forecast.predicted * 100], label=label, marker="dot")
        for anomaly in self.anomalies:
            plt.vline((_ts(anomaly.start) - end) / unit_seconds, "red")
        plt.xlabel(f"{unit_name} before the end of the window (red lines: anomalies, x: outside the baseline)")
        plt.ylabel("%" if ratio else unit)
        if ratio:  # from 0, to a little above the highest point: a 5 % line is not flat on the floor
            plt.ylim(0, min(100.0, max(10.0, peak * 1.25)))
        plot.refresh()
        ending = "now" if self.back == 0 else time.strftime("%Y-%m-%d %H:%M", time.localtime(end))
        tiers = sorted({t for h in self.loaded for t in h.tiers})
        last = _last_values(self.loaded)
        title = Text.assemble(
            (f"{chart.title} ", "bold"),
            f"· {name} ending {ending} · {points} points from {', '.join(tiers) or 'no tier'} · ",
            (last, "dim"),
            ("  (n: next chart, 1-4: range, [ ]: move)", "dim"),
        )
        notes = [Text(f.note, style="italic") for f in self.forecasts]
        if self.band is not None:
            notes.append(Text(_band_note(self.band, self.banded), style="dim"))
        self.query_one("#history-title", Static).update(Group(title, *notes))

    def _draw_band(self, plt: Any, end: float, unit_seconds: float, ratio: bool) -> float:
        """The band's edges along the charted series' timestamps, and that series' points outside it; returns the
        highest edge drawn (the y range must hold it: plotext fails on a labelled line wholly outside its range).
        The edges stay within what the metric can be: from 0 (every charted metric), to 100 % for a ratio."""
        if self.band is None or self.banded is None or not self.loaded:
            return 0.0
        labels = self.banded[1]
        series = next((s for s in self.loaded[0].series if s.labels == labels and s.points), None)
        if series is None:
            return 0.0
        scale, cap = (100.0, 100.0) if ratio else (1.0, float("inf"))
        xs = [(ts - end) / unit_seconds for ts, _ in series.points]
        edges = [self.band.at(ts) for ts, _ in series.points]
        high = [min(cap, max(0.0, e[2] * scale)) for e in edges]
        plt.plot(xs, high, label=f"baseline ±{BAND_MADS:g} MAD", color="gray", marker="dot")
        plt.plot(xs, [min(cap, max(0.0, e[0] * scale)) for e in edges], color="gray", marker="dot")
        out = outside(series.points, self.band)
        if out:
            plt.scatter(
                [(ts - end) / unit_seconds for ts, _ in out],
                [v * scale for _, v in out],
                label="outside the baseline",
                color="red",
                marker="x",
            )
        return max(high)


def _band_note(band: Band, banded: tuple[str, dict[str, str]] | None) -> str:
    """What the band is: whose, learnt how."""
    legend, labels = banded or ("", {})
    who = " ".join(p for p in (legend, ",".join(v for k, v in sorted(labels.items()) if k != "host")) if p)
    how = "by hour of the day" if band.hourly() else "over all hours (too little history for hourly)"
    days = f"{BASELINE_SPAN / 86400:g} days"
    return f"baseline band ({who or 'first series'}): median ± {BAND_MADS:g} MAD {how}, from the {days} before"


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _last_values(loaded: list[MetricHistory]) -> str:
    parts = [human(s.points[-1][1], h.unit) for h in loaded for s in h.series[:4] if s.points]
    return "last " + ", ".join(parts) if parts else "no data in this window"
