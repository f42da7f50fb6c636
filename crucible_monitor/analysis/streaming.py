"""A streaming detector for one series: each point is scored against the points before it, then learned.

The score says how far a point lies outside everything seen in the recent past, in up to five views of the series:

- the **value** itself (spikes, dips, drifts that leave the usual range),
- its **level**, the median of the last few values (level shifts that a single point does not prove),
- its **density**, the mean of the last few dozen values (bursts of spikes, a rising rate of events),
- its **residual from the daily profile**, the value minus the median of earlier days' values at the same hour
  (a daily pattern that breaks while every value stays in range: a missing peak, a level shift inside the range),
- optionally (``shape=True``) its **shape distance**, how far the latest stretch of the series (block means, less
  their mean) lies from the nearest earlier stretch, as KNN CAD compares subsequences (a change of shape or of
  frequency inside the range that no daily profile shows). On NAB it finds no window the other views miss and
  adds false alerts, so it is off by default (its fold scores are in ``docs/benchmarks.md``).

In each view the excess beyond the range of the last ``window`` values, as a share of that range, becomes
``excess / (1 + excess)``: 0 inside the range, 0.5 at one range beyond it, approaching 1. That calibrates the views
against their own past, so their scores compare; the point's score is the largest. Nothing looks ahead, so the score
of a point never changes once given. The defaults are measured on the NAB corpus (``benchmarks/nab``, with
leave-one-category-out cross-validation in ``crossval.py``), where one set of them scores every file.
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
        upper: only values above the range score (for a distance, where a small one is never unusual).
        scale: range widths that count as one (a view that wanders more than the others is judged in larger units).
    """

    def __init__(self, window: int, warmup: int, *, upper: bool = False, scale: float = 1.0) -> None:
        self.window = window
        self.warmup = warmup
        self.upper = upper
        self.scale = scale
        self._count = 0
        self._max: deque[tuple[int, float]] = deque()
        self._min: deque[tuple[int, float]] = deque()

    @property
    def bounds(self) -> tuple[float, float]:
        """The lowest and highest value of the current window (NaN before any value)."""
        return (self._min[0][1], self._max[0][1]) if self._count else (math.nan, math.nan)

    @property
    def width(self) -> float:
        """The range of the current window (0 before any value)."""
        return self._max[0][1] - self._min[0][1] if self._count else 0.0

    def score(self, value: float, min_width: float = 0.0) -> float:
        """:func:`range_excess` of ``value`` over the current window (0 until ``warmup`` values were seen), the
        window's range counting as at least ``min_width``."""
        if min(self._count, self.window) < self.warmup:
            return 0.0
        high, low = self._max[0][1], self._min[0][1]
        width = self.scale * max(high - low, min_width)
        excess = max(value - high, 0.0 if self.upper else low - value, 0.0) / (width + 1e-9 * abs(high) + 1e-12)
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
    """Earlier values by hour of the day, and each hour's median over the days before the current one."""

    def __init__(self, capacity: int) -> None:
        self._values = [deque[float](maxlen=capacity) for _ in range(24)]
        self._days: list[list[int]] = [[] for _ in range(24)]
        self._median: list[tuple[int, float]] = [(-1, 0.0)] * 24  # (day it was computed on, median)

    def residual(self, ts: float, value: float, min_days: int) -> float | None:
        """``value`` minus its hour's median over earlier days, once that hour was seen on ``min_days`` of them."""
        hour, day = int(ts // _HOUR) % 24, int(ts // _DAY)
        days = self._days[hour]
        earlier = len(days) - (1 if days and days[-1] == day else 0)
        if earlier < min_days:
            return None
        computed, median = self._median[hour]
        if computed != day:  # the first value of this hour today: today's values are not in the profile yet
            median = float(np.median(np.fromiter(self._values[hour], dtype=np.float64)))
            self._median[hour] = (day, median)
        return value - median

    def push(self, ts: float, value: float) -> None:
        hour, day = int(ts // _HOUR) % 24, int(ts // _DAY)
        self._values[hour].append(value)
        days = self._days[hour]
        if not days or days[-1] != day:
            days.append(day)


class _ShapeMemory:
    """Distance from the latest subsequence to the nearest earlier one of the same shape (as KNN CAD compares).

    Values are averaged in blocks of ``block``; a subsequence is the last ``length`` block means less their mean (its
    shape, not its level). Each completed block yields the Euclidean distance, per block, from the newest
    subsequence to the nearest of the last ``capacity`` earlier ones that do not overlap it, once there are
    ``least`` of them (before, every distance is large and would set the scale of the view's range).
    """

    def __init__(self, length: int, block: int, capacity: int, least: int) -> None:
        self.length, self.block, self.least = length, block, least
        self._sum, self._count = 0.0, 0
        self._blocks: deque[float] = deque(maxlen=length)
        self._library = np.zeros((capacity, length), dtype=np.float64)
        self._size = 0
        self._next = 0
        self._pending: deque[npt.NDArray[np.float64]] = deque()  # overlapping the newest: not comparable yet

    def push(self, value: float) -> float | None:
        """Learn ``value``; the newest subsequence's nearest distance when it completes a block, else None."""
        self._sum += value
        self._count += 1
        if self._count < self.block:
            return None
        self._blocks.append(self._sum / self._count)
        self._sum, self._count = 0.0, 0
        if len(self._blocks) < self.length:
            return None
        shape = np.fromiter(self._blocks, dtype=np.float64, count=self.length)
        shape -= shape.mean()
        distance = None
        if self._size >= self.least:
            gaps = self._library[: self._size] - shape
            distance = math.sqrt(float(np.einsum("ij,ij->i", gaps, gaps).min()) / self.length)
        self._pending.append(shape)
        if len(self._pending) > self.length:
            self._library[self._next] = self._pending.popleft()
            self._next = (self._next + 1) % len(self._library)
            self._size = min(self._size + 1, len(self._library))
        return distance


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
        seasonal: whether the daily-profile view runs.
        seasonal_days: earlier days an hour must have been seen on before the daily profile is used.
        seasonal_warmup: residuals needed before the daily-profile view scores.
        seasonal_capacity: values kept per hour of the day.
        shape: whether the shape view runs (off by default: on NAB it costs more false alerts than it finds).
        shape_length: block means in a subsequence of the shape view.
        shape_block: points averaged into one block (the shape view scores once per block).
        shape_capacity: earlier subsequences the newest is compared with.
        shape_warmup: earlier subsequences needed before the shape view measures distances.
        shape_window: distances whose range a distance is compared with.
        shape_scale: ranges of earlier distances that count as one in the shape view.
        level_floor: the smallest range of the level view, as a share of the value view's range (a quantised series
            whose median sat on one value for days would otherwise make its first move score close to 1).
        warmup: points needed before the other views score.
        min_width: the smallest range that counts in every view, in the series' unit (a series that barely moves
            would otherwise make a move too small to matter score high).
    """

    def __init__(
        self,
        *,
        window: int = 4000,
        level_points: int = 9,
        density_points: int = 20,
        seasonal: bool = True,
        seasonal_days: int = 3,
        seasonal_warmup: int = 200,
        seasonal_capacity: int = 2000,
        shape: bool = False,
        shape_length: int = 8,
        shape_block: int = 3,
        shape_capacity: int = 600,
        shape_warmup: int = 100,
        shape_window: int = 600,
        shape_scale: float = 6.0,
        level_floor: float = 0.01,
        warmup: int = 50,
        min_width: float = 0.0,
    ) -> None:
        self.window = window
        self.level_points = level_points
        self.density_points = density_points
        self.seasonal = seasonal
        self.seasonal_days = seasonal_days
        self.seasonal_warmup = seasonal_warmup
        self.seasonal_capacity = seasonal_capacity
        self.shape = shape
        self.shape_length = shape_length
        self.shape_block = shape_block
        self.shape_capacity = shape_capacity
        self.shape_warmup = shape_warmup
        self.shape_window = shape_window
        self.shape_scale = shape_scale
        self.level_floor = level_floor
        self.warmup = warmup
        self.min_width = min_width

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
            "shape": RangeExcess(
                self.shape_window, min(self.warmup, self.shape_window), upper=True, scale=self.shape_scale
            ),
        }
        self._recent: deque[float] = deque(maxlen=max(self.level_points, self.density_points))
        self._profile = _DailyProfile(self.seasonal_capacity)
        self._shape = _ShapeMemory(self.shape_length, self.shape_block, self.shape_capacity, self.shape_warmup)

    def _update(self, ts: float, value: float) -> float:
        if not math.isfinite(value):
            return 0.0
        recent = self._recent
        recent.append(value)
        signals = {"value": value}
        if len(recent) >= self.level_points:
            last = sorted(list(recent)[-self.level_points :])
            half = self.level_points // 2
            signals["level"] = last[half] if self.level_points % 2 else (last[half - 1] + last[half]) / 2
        if len(recent) >= self.density_points:
            signals["density"] = sum(list(recent)[-self.density_points :]) / self.density_points
        if self.seasonal:
            residual = self._profile.residual(ts, value, self.seasonal_days)
            if residual is not None:
                signals["seasonal"] = residual
            self._profile.push(ts, value)
        if self.shape:
            distance = self._shape.push(value)
            if distance is not None:
                signals["shape"] = distance
        floor = max(self.level_floor * self.views_["value"].width, self.min_width)
        score = 0.0
        for name, signal in signals.items():
            view = self.views_[name]
            score = max(score, view.score(signal, floor if name == "level" else self.min_width))
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
