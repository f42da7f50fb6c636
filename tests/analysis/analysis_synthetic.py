"""Deterministic synthetic series for the analysis tests: a daily sine with noise, and injected anomalies."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Kind = Literal["quiet", "spike", "dip", "level_shift", "slow_drift", "broken_seasonality", "variance_change"]
KINDS: tuple[Kind, ...] = ("spike", "dip", "level_shift", "slow_drift", "broken_seasonality", "variance_change")

START = 1_764_288_000.0  # 2025-11-28T00:00:00Z
STEP = 600.0  # 10 minutes
DAY = 86400.0
POINTS = 2016  # 14 days
AT = 1500  # the anomaly starts here, on day 10 (the detectors have 10 days of history)
WARM = 432  # 3 days: the daily profile needs that much history


def series(kind: Kind, seed: int = 1) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Timestamps (Unix s) and values: ``50 + 20 sin(daily) + N(0, 1)`` with one anomaly from index :data:`AT`."""
    rng = np.random.default_rng(seed)
    ts: npt.NDArray[np.float64] = START + np.arange(POINTS, dtype=np.float64) * STEP
    season = 20 * np.sin(2 * np.pi * ts / DAY)
    noise = rng.normal(0.0, 1.0, POINTS)
    values: npt.NDArray[np.float64] = 50 + season + noise
    if kind == "spike":
        values[AT] += 40
    elif kind == "dip":
        values[AT] -= 40
    elif kind == "level_shift":
        values[AT:] += 15
    elif kind == "slow_drift":
        values[AT:] += 0.1 * np.arange(POINTS - AT)  # +14.4 a day
    elif kind == "broken_seasonality":
        values[AT : AT + 144] = 50 + noise[AT : AT + 144]  # one day without the daily cycle, every value in range
    elif kind == "variance_change":
        values[AT:] = 50 + season[AT:] + 5 * noise[AT:]
    return ts, values
