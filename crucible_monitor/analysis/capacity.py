"""Capacity: robust trends of memory, filesystem and inode use, when each resource fills, and the report of all."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crucible_monitor.analysis.forecast import Trend, fit_trend
from crucible_monitor.config import AnalysisConfig
from crucible_monitor.errors import QueryError
from crucible_monitor.models import iso
from crucible_monitor.schemas import CapacityReport, FillForecast, FitQuality, Forecast, ThresholdEta
from crucible_monitor.storage.store import History
from crucible_monitor.units import human_ratio

__all__ = ["Capacity"]

_DAY = 86400.0
_THRESHOLDS = (0.9, 1.0)  # the used ratios a forecast gives times for: nearly full, full


@dataclass(frozen=True, slots=True)
class _Projection:
    """A resource's trend with what both views of it need: the API's forecast and alerting's fill time."""

    metric: str
    labels: dict[str, str]
    current: float | None
    trend: Trend
    horizon_end: float


class Capacity:
    """Forecasts when resources fill, from the metric store's used ratios.

    Args:
        store: the metric store.
        config: the ``analysis`` settings (``forecast_history``, ``forecast_horizon``, ``step``); may be replaced.
        clock: Unix seconds now.
    """

    def __init__(self, store: History, config: AnalysisConfig, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self._clock = clock

    def resources(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Forecastable resources: name → (metric, labels)."""
        out: dict[str, tuple[str, dict[str, str]]] = {}
        if self.store.latest("memory_used_ratio"):
            out["memory"] = ("memory_used_ratio", {})
        for prefix, metric in (("filesystem", "filesystem_used_ratio"), ("inodes", "filesystem_inodes_used_ratio")):
            for point in self.store.latest(metric):
                mount = point.labels.get("mountpoint")
                if mount:
                    out[f"{prefix}:{mount}"] = (metric, {"mountpoint": mount})
        return dict(sorted(out.items()))

    def forecast(self, resource: str, horizon: float | None = None) -> Forecast:
        """When ``resource`` (``memory``, ``filesystem:<mountpoint>``, ``inodes:<mountpoint>``) fills, with a
        robust trend, its interval, and how far to trust it.

        Raises:
            QueryError: an unknown resource (the message lists the valid ones) or a non-positive horizon.
        """
        resources = self.resources()
        if resource not in resources:
            raise QueryError(f"unknown resource {resource!r}; valid: {', '.join(resources) or 'none seen yet'}")
        horizon = self.config.forecast_horizon.total_seconds() if horizon is None else horizon
        if horizon <= 0:
            raise QueryError("the horizon must be positive, e.g. 30d")
        return self._view(resource, self._project(*resources[resource], horizon))

    def report(self, horizon: float | None = None) -> CapacityReport:
        """Forecasts for every resource, soonest to reach 90 % first."""
        forecasts = [self.forecast(name, horizon) for name in self.resources()]
        forecasts.sort(key=lambda f: (f.thresholds[0].days is None, f.thresholds[0].days or 0.0, -(f.current or 0.0)))
        return CapacityReport(
            generated_at=iso(self._clock()),
            horizon_days=round((horizon or self.config.forecast_horizon.total_seconds()) / _DAY, 2),
            forecasts=forecasts,
        )

    def fill_forecasts(self) -> list[FillForecast]:
        """When each resource is expected to be full, as alerting's forecast rules read it (Unix seconds).

        The quality is the fit's R² when a date can be trusted (a fair or good fit), else 0.
        """
        horizon = self.config.forecast_horizon.total_seconds()
        out = []
        for metric, labels in self.resources().values():
            projection = self._project(metric, labels, horizon)
            trend = projection.trend
            full_at, _, _ = trend.time_to(1.0)
            quality = round(trend.r_squared, 4) if trend.quality in ("fair", "good") else 0.0
            out.append(FillForecast(metric, labels, full_at, quality))
        return out

    def _project(self, metric: str, labels: dict[str, str], horizon: float) -> _Projection:
        now = self._clock()
        step = self.config.step.total_seconds()
        history = self.config.forecast_history.total_seconds()
        bucket = max(step, history / 400)
        series = self.store.query(metric, start=now - history, end=now + step, step=bucket, agg="avg", labels=labels)
        stamps = np.array(series[0].timestamps if series else [], dtype=np.float64)
        values = np.array(series[0].values if series else [], dtype=np.float64)
        latest = self.store.latest(metric, labels)
        current = latest[0].value if latest else (float(values[-1]) if len(values) else None)
        return _Projection(metric, labels, current, fit_trend(stamps + bucket / 2, values), now + horizon)

    def _view(self, resource: str, projection: _Projection) -> Forecast:
        now = self._clock()
        trend = projection.trend
        predicted: tuple[float | None, float | None, float | None] = (None, None, None)
        if trend.quality != "insufficient":
            value, low, high = (min(1.0, max(0.0, v)) for v in trend.at(projection.horizon_end))
            predicted = (value, low, high)
        etas = []
        for threshold in _THRESHOLDS:
            expected, earliest, latest = trend.time_to(threshold)
            etas.append(
                ThresholdEta(
                    threshold=threshold,
                    eta=iso(expected) if expected is not None else None,
                    earliest=iso(earliest) if earliest is not None else None,
                    latest=iso(latest) if latest is not None else None,
                    days=round((expected - now) / _DAY, 2) if expected is not None else None,
                )
            )
        return Forecast(
            resource=resource,
            metric=projection.metric,
            labels=projection.labels,
            current=projection.current,
            slope_per_day=trend.slope * _DAY,
            slope_per_day_low=trend.slope_low * _DAY,
            slope_per_day_high=trend.slope_high * _DAY,
            horizon_end=iso(projection.horizon_end),
            predicted=predicted[0],
            predicted_low=predicted[1],
            predicted_high=predicted[2],
            thresholds=etas,
            fit_quality=trend.quality,
            r_squared=round(trend.r_squared, 4),
            points=trend.points,
            history_hours=round(trend.span_seconds / 3600, 2),
            note=_note(resource, projection.current, trend.quality, trend.slope * _DAY, etas),
        )


def _note(resource: str, current: float | None, quality: FitQuality, per_day: float, etas: list[ThresholdEta]) -> str:
    now_text = f"{human_ratio(current)} used" if current is not None else "no current value"
    if quality == "insufficient":
        return f"{resource}: {now_text}; not enough history for a trend yet."
    if quality == "no_trend":
        return f"{resource}: {now_text}; no significant trend (the slope's interval includes 0)."
    trend = f"changing {per_day * 100:+.2f} points/day"
    if quality == "poor":
        return f"{resource}: {now_text}, {trend}, but the line fits poorly, so no date is given."
    reach = [
        f"{e.threshold:.0%} around {e.eta} (between {e.earliest} and {e.latest or 'never'})" for e in etas if e.eta
    ]
    return f"{resource}: {now_text}, {trend} ({quality} fit)" + (f"; reaches {'; '.join(reach)}." if reach else ".")
