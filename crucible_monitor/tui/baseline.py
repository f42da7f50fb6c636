"""The baseline band the history charts draw: median ± k MADs of a series by hour of the day, in pure Python.

The agent's own baseline (``analysis/baseline.py``) is a fitted model that no operation hands out, so the dashboard
learns the same profile from the history it reads: by hour of the day (UTC), the median and the median absolute
deviation (unscaled), a slot used once it holds ``min_samples`` values from ``min_days`` different days, else the
median and MAD of every value; the MAD floored as the agent floors it (a share of the 1st to 99th percentile range,
and the series' smallest meaningful spread). At :data:`BAND_MADS` = 3 the band's edge is where the agent's baseline
score reaches 0.5. Points outside the band are what the chart marks.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["BAND_MADS", "Band", "fit_band", "outside"]

BAND_MADS = 3.0
"""The band's half-width in MADs."""
_HOUR, _DAY = 3600, 86400

Point = tuple[float, float]


@dataclass(frozen=True)
class Slot:
    """The median and MAD of one hour of the day (or of every value), and what they were learnt from."""

    median: float
    mad: float
    count: int
    days: int


@dataclass(frozen=True)
class Band:
    """A fitted band: the hour-of-day slots, the overall slot they fall back to, and the MAD floor."""

    hours: dict[int, Slot]
    overall: Slot
    floor: float
    k: float = BAND_MADS
    min_samples: int = 10
    min_days: int = 2

    def slot(self, ts: float) -> Slot:
        """The slot that applies at ``ts`` (Unix seconds): its hour's, once learnt well enough, else the overall."""
        hour = self.hours.get(int(ts) // _HOUR % 24)
        if hour is not None and hour.count >= self.min_samples and hour.days >= self.min_days:
            return hour
        return self.overall

    def at(self, ts: float) -> tuple[float, float, float]:
        """The band's low edge, median and high edge at ``ts``."""
        slot = self.slot(ts)
        half = self.k * max(slot.mad, self.floor)
        return slot.median - half, slot.median, slot.median + half

    def hourly(self) -> bool:
        """Whether any hour of the day was learnt well enough to use (else the band is flat)."""
        return any(s.count >= self.min_samples and s.days >= self.min_days for s in self.hours.values())


def _slot(values: Sequence[float], days: int) -> Slot:
    median = statistics.median(values)
    return Slot(median, statistics.median(abs(v - median) for v in values), len(values), days)


def fit_band(
    points: Iterable[Point],
    *,
    k: float = BAND_MADS,
    min_samples: int = 10,
    min_days: int = 2,
    mad_floor: float = 0.01,
    min_mad: float = 0.0,
) -> Band | None:
    """The band of ``points`` ((Unix seconds, value) pairs); None without a single finite value.

    Args:
        points: the history the band is learnt from (days of it, for hourly slots).
        k: the half-width in MADs.
        min_samples: values an hour needs before it is used.
        min_days: different days an hour needs.
        mad_floor: the smallest MAD as a share of the 1st to 99th percentile range.
        min_mad: the smallest MAD in the series' unit (0.02 for a CPU ratio: a series almost always 0 has no MAD).
    """
    finite = [(ts, v) for ts, v in points if v == v and abs(v) != float("inf")]
    if not finite:
        return None
    values = [v for _, v in finite]
    by_hour: dict[int, list[float]] = {}
    days: dict[int, set[int]] = {}
    for ts, v in finite:
        hour = int(ts) // _HOUR % 24
        by_hour.setdefault(hour, []).append(v)
        days.setdefault(hour, set()).add(int(ts) // _DAY)
    hours = {hour: _slot(vs, len(days[hour])) for hour, vs in by_hour.items()}
    overall = _slot(values, len({int(ts) // _DAY for ts, _ in finite}))
    spread = 0.0
    if len(values) >= 2:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        spread = cuts[-1] - cuts[0]
    floor = max(spread * mad_floor, min_mad, 1e-9)
    return Band(hours, overall, floor, k=k, min_samples=min_samples, min_days=min_days)


def outside(points: Iterable[Point], band: Band) -> list[Point]:
    """The points that lie outside the band (above its high edge or below its low edge)."""
    found = []
    for ts, v in points:
        low, _, high = band.at(ts)
        if v < low or v > high:
            found.append((ts, v))
    return found
