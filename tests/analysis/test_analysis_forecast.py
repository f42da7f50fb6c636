"""Theil–Sen trends: a disk filling at a known rate, a flat series, a poor fit, too little history."""

from __future__ import annotations

import numpy as np
import pytest

from crucible_monitor.analysis.forecast import fit_trend

START = 1_764_288_000.0
HOUR = 3600.0
DAY = 86400.0


def _filling(
    rate_per_day: float, days: float = 14, noise: float = 0.002, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    ts = START + np.arange(0, days * DAY, HOUR)
    values = 0.40 + rate_per_day * (ts - START) / DAY + np.random.default_rng(seed).normal(0, noise, len(ts))
    return ts, values


def test_a_disk_filling_at_one_point_a_day_reaches_90_percent_when_expected() -> None:
    ts, values = _filling(0.01)
    trend = fit_trend(ts, values)
    assert trend.quality == "good"
    assert trend.slope * DAY == pytest.approx(0.01, rel=0.02)
    assert trend.slope_low * DAY < 0.01 < trend.slope_high * DAY
    expected, earliest, latest = trend.time_to(0.9)
    assert expected is not None and earliest is not None and latest is not None
    true_time = START + (0.9 - 0.40) / 0.01 * DAY  # 50 days after the start
    assert earliest <= true_time <= latest
    assert abs(expected - true_time) < 1.5 * DAY
    predicted, low, high = trend.at(START + 30 * DAY)
    assert low <= 0.40 + 0.30 <= high
    assert predicted == pytest.approx(0.70, abs=0.01)


def test_outliers_do_not_bend_the_trend() -> None:
    ts, values = _filling(0.01)
    values[::25] = 0.99  # a few wild readings
    assert fit_trend(ts, values).slope * DAY == pytest.approx(0.01, rel=0.05)


def test_a_flat_noisy_series_has_no_trend_and_no_date() -> None:
    ts, values = _filling(0.0, noise=0.01)
    trend = fit_trend(ts, values)
    assert trend.quality == "no_trend"
    assert trend.time_to(0.9) == (None, None, None)


def test_a_poor_fit_withholds_the_date() -> None:
    ts = START + np.arange(0, 14 * DAY, HOUR)
    values = 0.5 + 0.2 * np.sin(2 * np.pi * ts / (3 * DAY)) + 0.0005 * (ts - START) / DAY  # cycles dominate
    trend = fit_trend(ts, values)
    assert trend.quality in ("poor", "no_trend")
    assert trend.time_to(0.9) == (None, None, None)


def test_too_little_history_is_insufficient() -> None:
    ts, values = _filling(0.01, days=0.25)
    assert fit_trend(ts[:5], values[:5]).quality == "insufficient"


def test_a_shrinking_resource_never_reaches_the_threshold() -> None:
    ts, values = _filling(-0.01)
    trend = fit_trend(ts, values)
    assert trend.quality == "good"
    assert trend.time_to(0.9) == (None, None, None)
