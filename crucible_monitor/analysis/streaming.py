"""A streaming detector for one series: each point is scored against the points before it, then learned.

The score says how far a point lies outside everything seen in the recent past, in four views of the series:

- the **value** itself (spikes, dips, drifts that leave the usual range),
- its **level**, the median of the last few values (level shifts that a single point does not prove),
- its **density**, the mean of the last few dozen values (bursts of spikes, a rising rate of events),
- its **residual from the daily profile**, the value minus the median of earlier values at the same hour of the day
  (a daily pattern that breaks while every value stays in range).

In each view the excess beyond the range of the last ``window`` values, as a share of that range, becomes
``excess / (1 + excess)``: 0 inside the range, 0.5 at one range beyond it, approaching 1. The point's score is the
largest of the four. Nothing looks ahead, so the score of a point never changes once given. Measured on the NAB
corpus (``benchmarks/nab``), where one set of these defaults scores every file.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Self

import numpy as np
import numpy.typing as npt

__all__ = ["RangeExcess", "StreamingDetector", "range_excess", "suppress_repeats"]

_HOUR = 3600.0
_DAY = 86400.0


def range_excess(
    value: npt.ArrayLike, low: npt.ArrayLike, high: npt.ArrayLike, *, min_width: float = 0.0
) -> npt.NDArray[np.float64]:
    """How far values lie beyond ``[low, high]``, as ``e / (1 + e)`` with ``e`` the distance in range widths.

    0 inside the range, 0.5 one width beyond it, approaching 1. A range of zero width (a series that never moved)
    makes any other value score close to 1, unless ``min_width`` sets the smallest width that counts.
    """
    x, lo, hi = (np.asarray(a, dtype=np.float64) for a in (value, low, high))
    width = np.maximum(hi - lo, min_width)
    excess = np.maximum(np.maximum(x - hi, lo - x), 0.0) / (width + 1e-9 * np.abs(hi) + 1e-12)
    result: npt.NDArray[np.float64] = excess / (1.0 + excess)
    return result


class RangeExcess:
    """How far a value lies beyond the range of the last ``window`` values (sliding max and min in O(1)).

    Args:
        window: how many earlier values make the range.
        warmup: values needed before anything scores above 0.
    """

    def __init__(self, window: int, warmup: int) -> None:
        self.window = window
        self.warmup = warmup
        self._count = 0
        self._max: deque[tuple[int, float]] = deque()
        self._min: deque[tuple[int, float]] = deque()

    def score(self, value: float) -> float:
        """:func:`range_excess` of ``value`` over the current window (0 until ``warmup`` values were seen)."""
        if min(self._count, self.window) < self.warmup:
            return 0.0
        high, low = self._max[0][1], self._min[0][1]
        excess = max(value - high, low - value, 0.0) / ((high - low) + 1e-9 * abs(high) + 1e-12)
        return excess / (1.0 + excess)  # range_excess on scalars, without numpy's per-call cost

    def push(self, value: float) -> None:
        """Learn ``value``; the oldest value leaves the window."""
        index = self._count
        self._count += 1
        while self._max and self._max[-1][1] <= value:
            self._max.pop()
        self._max.append((index, value))
        while self._min and self._min[-1][1] >= value:
            self._min.pop()
        self._min.append((index, value))
        oldest = index - self.window
        if self._max[0][0] <= oldest:
            self._max.popleft()
        if self._min[0][0] <= oldest:
            self._min.popleft()


class _DailyProfile:
    """Earlier values by hour of the day, and how many days each hour has been seen on."""

    def __init__(self, capacity: int) -> None:
        self._values = [deque[float](maxlen=capacity) for _ in range(24)]
        self._days: list[list[int]] = [[] for _ in range(24)]

    def residual(self, ts: float, value: float, min_days: int) -> float | None:
        """``value`` minus the median at its hour, once that hour was seen on ``min_days`` earlier days."""
        hour, day = int(ts // _HOUR) % 24, int(ts // _DAY)
        days = self._days[hour]
        earlier = len(days) - (1 if days and days[-1] == day else 0)
        if earlier < min_days:
            return None
        return value - float(np.median(np.fromiter(self._values[hour], dtype=np.float64)))

    def push(self, ts: float, value: float) -> None:
        hour, day = int(ts // _HOUR) % 24, int(ts // _DAY)
        self._values[hour].append(value)
        days = self._days[hour]
        if not days or days[-1] != day:
            days.append(day)


class StreamingDetector:
    """Scores one series causally; scores are in [0, 1), higher is more anomalous.

    Follows the scikit-learn estimator contract: ``__init__`` only stores parameters, :meth:`fit` learns a history
    and returns the detector, :meth:`score_samples` scores. Unlike scikit-learn's batch estimators it keeps learning:
    :meth:`score_samples` scores each point against everything before it (including earlier calls) and then learns
    it, so a series can be fed in batches as it arrives. Timestamps are Unix seconds (UTC hours make the daily
    profile); non-finite values score 0 and are not learned. There is nothing random in it.

    Args:
        window: earlier points whose range a point is compared with.
        level_points: points in the moving median (the level view).
        density_points: points in the moving mean (the density view).
        seasonal_days: earlier days an hour must have been seen on before the daily profile is used.
        seasonal_warmup: residuals needed before the daily-profile view scores.
        seasonal_capacity: values kept per hour of the day.
        warmup: points needed before the other views score.
    """

    def __init__(
        self,
        *,
        window: int = 2000,
        level_points: int = 5,
        density_points: int = 20,
        seasonal_days: int = 3,
        seasonal_warmup: int = 200,
        seasonal_capacity: int = 2000,
        warmup: int = 50,
    ) -> None:
        self.window = window
        self.level_points = level_points
        self.density_points = density_points
        self.seasonal_days = seasonal_days
        self.seasonal_warmup = seasonal_warmup
        self.seasonal_capacity = seasonal_capacity
        self.warmup = warmup

    def fit(self, timestamps: Iterable[float], values: Iterable[float]) -> Self:
        """Start afresh and learn a history (its scores are discarded)."""
        self._reset()
        for ts, value in zip(timestamps, values, strict=True):
            self._update(float(ts), float(value))
        return self

    def score_samples(self, timestamps: Iterable[float], values: Iterable[float]) -> npt.NDArray[np.float64]:
        """Score points in time order, each against the points before it, learning them as it goes."""
        if not hasattr(self, "views_"):
            self._reset()
        return np.array(
            [self._update(float(ts), float(value)) for ts, value in zip(timestamps, values, strict=True)],
            dtype=np.float64,
        )

    def _reset(self) -> None:
        self.views_ = {
            "value": RangeExcess(self.window, self.warmup),
            "level": RangeExcess(self.window, self.warmup),
            "density": RangeExcess(self.window, self.warmup),
            "seasonal": RangeExcess(self.window, self.seasonal_warmup),
        }
        self._recent: deque[float] = deque(maxlen=max(self.level_points, self.density_points))
        self._profile = _DailyProfile(self.seasonal_capacity)

    def _update(self, ts: float, value: float) -> float:
        if not math.isfinite(value):
            return 0.0
        self._recent.append(value)
        recent = list(self._recent)
        signals = {"value": value}
        if len(recent) >= self.level_points:
            signals["level"] = float(np.median(recent[-self.level_points :]))
        if len(recent) >= self.density_points:
            signals["density"] = sum(recent[-self.density_points :]) / self.density_points
        residual = self._profile.residual(ts, value, self.seasonal_days)
        if residual is not None:
            signals["seasonal"] = residual
        self._profile.push(ts, value)
        score = 0.0
        for name, signal in signals.items():
            view = self.views_[name]
            score = max(score, view.score(signal))
            view.push(signal)
        return score


def suppress_repeats(scores: npt.ArrayLike, rows: int) -> npt.NDArray[np.float64]:
    """Alert de-duplication: keep a score only where it exceeds every score of the ``rows`` points before it.

    One excursion then yields one alert (its first and any stronger points), not one per point, whatever threshold
    is later applied. The others become 0.
    """
    values = np.asarray(scores, dtype=np.float64)
    out = np.zeros_like(values)
    window: deque[tuple[int, float]] = deque()  # sliding max of the previous `rows` scores
    for i, score in enumerate(values):
        while window and window[0][0] < i - rows:
            window.popleft()
        if not window or score > window[0][1]:
            out[i] = score
        while window and window[-1][1] <= score:
            window.pop()
        window.append((i, float(score)))
    return out
