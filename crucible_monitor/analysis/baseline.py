"""A robust seasonal baseline of one series: median and MAD by hour of the week, else hour of the day, else overall.

A slot (an hour of the week, or of the day) is used once it holds ``min_samples`` values from ``min_periods``
different weeks (or days); otherwise the next coarser level answers. Deviations are in MADs (median absolute
deviations, unscaled): ``(value - median) / MAD``, with the MAD floored so that a series that never moved gives a
large but finite deviation when it does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt

__all__ = ["Level", "SeasonalBaseline"]

Floats = npt.NDArray[np.float64]
Level = Literal["hour_of_week", "hour_of_day", "global"]
_HOUR = 3600
_DAY = 86400
_WEEK = 7 * _DAY
_EPOCH_MONDAY = 4 * _DAY  # 1970-01-01 was a Thursday; 1970-01-05, a Monday, starts hour 0 of the week (UTC)


def _slot_stats(slots: npt.NDArray[np.int64], periods: npt.NDArray[np.int64], values: Floats, size: int) -> Floats:
    """Per slot: median, MAD, count, distinct periods (rows of a ``size × 4`` array; NaN where empty)."""
    out = np.full((size, 4), np.nan)
    out[:, 2:] = 0
    order = np.argsort(slots, kind="stable")
    slots, periods, values = slots[order], periods[order], values[order]
    bounds = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        chunk = values[start:end]
        median = float(np.median(chunk))
        out[slots[start]] = (
            median,
            float(np.median(np.abs(chunk - median))),
            end - start,
            len(set(periods[start:end])),
        )
    return out


class SeasonalBaseline:
    """Median and MAD of one series by hour of the week, with fallbacks to hour of the day and to all values.

    The scikit-learn contract: ``__init__`` stores parameters, :meth:`fit` learns and returns the baseline (fitted
    attributes end in ``_``), :meth:`score_samples` scores. Scores are in [0, 1), higher is more anomalous:
    ``|d| / (|d| + 3)`` for a deviation of ``d`` MADs (0.5 at 3 MADs). Timestamps are Unix seconds, hours UTC.

    Args:
        min_samples: values a slot needs before it is used.
        min_periods: different weeks (hour-of-week slots) or days (hour-of-day slots) a slot needs.
        mad_floor: smallest MAD, as a share of the overall spread (the 1st to 99th percentile range); values that
            never varied fall back to an absolute 1e-9.
        min_mad: smallest MAD in the series' own unit (e.g. 0.02 for a CPU ratio): on a series that is almost always
            0, a blip and a full burn are otherwise both "thousands of MADs" and look alike.
    """

    def __init__(
        self, *, min_samples: int = 10, min_periods: int = 2, mad_floor: float = 0.01, min_mad: float = 0.0
    ) -> None:
        self.min_samples = min_samples
        self.min_periods = min_periods
        self.mad_floor = mad_floor
        self.min_mad = min_mad

    def fit(self, timestamps: Iterable[float], values: Iterable[float]) -> Self:
        """Learn the profile from a history.

        Raises:
            ValueError: no finite values, or timestamps and values of different lengths.
        """
        ts = np.fromiter(timestamps, dtype=np.float64)
        y = np.fromiter(values, dtype=np.float64)
        if len(ts) != len(y):
            raise ValueError(f"{len(ts)} timestamps but {len(y)} values")
        keep = np.isfinite(y) & np.isfinite(ts)
        ts, y = ts[keep], y[keep]
        if not len(y):
            raise ValueError("no finite values to learn a baseline from")
        seconds = ts.astype(np.int64)
        median = float(np.median(y))
        low, high = np.percentile(y, [1, 99])
        self.global_ = np.array([median, float(np.median(np.abs(y - median))), len(y), 1.0])
        self.floor_ = max(float(high - low) * self.mad_floor, self.min_mad, 1e-9)
        self.hour_of_day_ = _slot_stats((seconds // _HOUR) % 24, seconds // _DAY, y, 24)
        self.hour_of_week_ = _slot_stats(
            ((seconds - _EPOCH_MONDAY) // _HOUR) % 168, (seconds - _EPOCH_MONDAY) // _WEEK, y, 168
        )
        self.samples_ = int(len(y))
        return self

    def expected(self, timestamps: Iterable[float]) -> tuple[Floats, Floats, list[Level]]:
        """The median and MAD (floored) that apply at each timestamp, and the level they come from."""
        ts = np.fromiter(timestamps, dtype=np.float64).astype(np.int64)
        week = self.hour_of_week_[((ts - _EPOCH_MONDAY) // _HOUR) % 168]
        day = self.hour_of_day_[(ts // _HOUR) % 24]
        use_week = (week[:, 2] >= self.min_samples) & (week[:, 3] >= self.min_periods)
        use_day = ~use_week & (day[:, 2] >= self.min_samples) & (day[:, 3] >= self.min_periods)
        chosen = np.where(use_week[:, None], week, np.where(use_day[:, None], day, self.global_[None, :]))
        levels: list[Level] = [
            "hour_of_week" if w else "hour_of_day" if d else "global" for w, d in zip(use_week, use_day, strict=True)
        ]
        return chosen[:, 0], np.maximum(chosen[:, 1], self.floor_), levels

    def deviation(self, timestamps: Iterable[float], values: Iterable[float]) -> Floats:
        """How many MADs each value lies above (positive) or below (negative) its expected median."""
        median, mad, _ = self.expected(timestamps)
        result: Floats = (np.fromiter(values, dtype=np.float64) - median) / mad
        return result

    def score_samples(self, timestamps: Iterable[float], values: Iterable[float]) -> Floats:
        """Anomaly scores in [0, 1): ``|d| / (|d| + 3)`` for a deviation of ``d`` MADs."""
        deviation = np.abs(self.deviation(timestamps, values))
        result: Floats = deviation / (deviation + 3.0)
        return result

    def to_dict(self) -> dict[str, Any]:
        """The fitted state as JSON-friendly data (:meth:`from_dict` reads it back)."""
        return {
            "params": {
                "min_samples": self.min_samples,
                "min_periods": self.min_periods,
                "mad_floor": self.mad_floor,
                "min_mad": self.min_mad,
            },
            "global": self.global_.tolist(),
            "floor": self.floor_,
            "hour_of_day": np.nan_to_num(self.hour_of_day_, nan=0.0).tolist(),
            "hour_of_week": np.nan_to_num(self.hour_of_week_, nan=0.0).tolist(),
            "samples": self.samples_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeasonalBaseline:
        """A fitted baseline from :meth:`to_dict` output."""
        baseline = cls(**data["params"])
        baseline.global_ = np.array(data["global"], dtype=np.float64)
        baseline.floor_ = float(data["floor"])
        baseline.hour_of_day_ = np.array(data["hour_of_day"], dtype=np.float64)
        baseline.hour_of_week_ = np.array(data["hour_of_week"], dtype=np.float64)
        baseline.samples_ = int(data["samples"])
        return baseline
