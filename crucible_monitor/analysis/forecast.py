"""Robust trends for capacity: a Theil–Sen line with Sen's confidence interval and a statement of fit quality.

The slope is the median of all pairwise slopes (robust to outliers and to a few jumps); its 95 % interval is Sen's
distribution-free one (from Kendall's S). The fit quality says whether a date can be trusted:

- ``insufficient``: fewer than ``MIN_POINTS`` points or less than ``MIN_SPAN`` of history;
- ``no_trend``: the slope's interval includes 0 (no date is given);
- ``poor``: the line explains little of the variation (R² < 0.3: the series moves, but not along a line), so dates
  are withheld;
- ``fair`` (R² < 0.7) and ``good``.

Times to a threshold come with an earliest and latest estimate from the slope's interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crucible_monitor.schemas import FitQuality

__all__ = ["MIN_POINTS", "MIN_SPAN", "FitQuality", "Trend", "fit_trend"]

Floats = npt.NDArray[np.float64]
MIN_POINTS = 12
MIN_SPAN = 3600.0
_Z95 = 1.959963984540054
_MAX_POINTS = 400  # pairwise slopes grow with the square: thin longer histories evenly


@dataclass(frozen=True, slots=True)
class Trend:
    """A fitted line ``value = level + slope × (t - origin)`` (per second), its interval and quality."""

    origin: float
    level: float
    slope: float
    slope_low: float
    slope_high: float
    r_squared: float
    residual_p95: float
    points: int
    span_seconds: float
    quality: FitQuality

    def at(self, ts: float) -> tuple[float, float, float]:
        """The predicted value at ``ts`` with a low and high bound (slope interval plus the residual spread)."""
        dt = ts - self.origin
        predicted = self.level + self.slope * dt
        ends = (self.level + self.slope_low * dt, self.level + self.slope_high * dt)
        return predicted, min(ends) - self.residual_p95, max(ends) + self.residual_p95

    def time_to(self, threshold: float) -> tuple[float | None, float | None, float | None]:
        """When the line reaches ``threshold`` (Unix seconds): expected, and earliest and latest (the slope's interval
        and the residual spread, as :meth:`at`); None where it does not.

        Only ``fair`` and ``good`` fits give times: a poor fit or no trend is not shown as a confident date.
        """
        if self.quality not in ("fair", "good"):
            return None, None, None

        def crossing(level: float, slope: float) -> float | None:
            if slope <= 0:
                return None
            return self.origin + max(0.0, (threshold - level) / slope)

        spread = self.residual_p95
        return (
            crossing(self.level, self.slope),
            crossing(self.level + spread, self.slope_high),
            crossing(self.level - spread, self.slope_low),
        )


def _sen_interval(slopes: Floats, n: int) -> tuple[float, float]:
    """Sen's 95 % interval of the median slope, from the sorted pairwise slopes."""
    pairs = len(slopes)
    spread = _Z95 * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    low = int(math.floor((pairs - spread) / 2))
    high = int(math.ceil((pairs + spread) / 2))
    return float(slopes[max(0, low - 1)]), float(slopes[min(pairs - 1, high)])


def fit_trend(timestamps: npt.ArrayLike, values: npt.ArrayLike) -> Trend:
    """Fit a Theil–Sen line to a history (non-finite values are skipped)."""
    ts = np.asarray(timestamps, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(ts) & np.isfinite(y)
    ts, y = ts[keep], y[keep]
    if len(ts) > _MAX_POINTS:
        chosen = np.unique(np.linspace(0, len(ts) - 1, _MAX_POINTS).round().astype(np.int64))
        ts, y = ts[chosen], y[chosen]
    n = len(ts)
    span = float(ts[-1] - ts[0]) if n else 0.0
    origin = float(ts[-1]) if n else 0.0
    if n < MIN_POINTS or span < MIN_SPAN:
        level = float(y[-1]) if n else math.nan
        return Trend(origin, level, 0.0, 0.0, 0.0, 0.0, 0.0, n, span, "insufficient")
    i, j = np.triu_indices(n, k=1)
    dt = ts[j] - ts[i]
    valid = dt > 0
    slopes = np.sort((y[j] - y[i])[valid] / dt[valid])
    slope = float(np.median(slopes))
    slope_low, slope_high = _sen_interval(slopes, n)
    intercept = float(np.median(y - slope * (ts - origin)))  # the fitted value at the newest point
    fitted = intercept + slope * (ts - origin)
    residuals = y - fitted
    total = float(np.sum((y - y.mean()) ** 2))
    r_squared = 1.0 - float(np.sum(residuals**2)) / total if total > 0 else 1.0
    quality: FitQuality
    if slope_low <= 0.0 <= slope_high:
        quality = "no_trend"
    elif r_squared < 0.3:
        quality = "poor"
    elif r_squared < 0.7:
        quality = "fair"
    else:
        quality = "good"
    return Trend(
        origin=origin,
        level=intercept,
        slope=slope,
        slope_low=slope_low,
        slope_high=slope_high,
        r_squared=max(0.0, r_squared),
        residual_p95=float(np.quantile(np.abs(residuals), 0.95)),
        points=n,
        span_seconds=span,
        quality=quality,
    )
