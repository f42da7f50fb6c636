"""The streaming detector's views on pattern breaks inside the normal range, and on stationary noise.

Deterministic synthetic series (seeded noise): after the break the series keeps its amplitude and stays within the
range seen before (up to its noise), so the value view alone cannot catch it; the level, daily-profile and shape
views must.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from crucible_monitor.analysis.streaming import StreamingDetector, _ShapeMemory

ALERT = 0.2  # the score these tests treat as an alert (as in test_analysis_streaming.py)
SEEDS = (1, 2, 3)
START = 1_764_288_000.0  # 2025-11-28T00:00:00Z
STEP = 600.0  # 10 minutes
DAY_POINTS = 144
WARM = 3 * DAY_POINTS  # the daily profile needs three earlier days

Series = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]


def _times(n: int) -> npt.NDArray[np.float64]:
    return START + np.arange(n, dtype=np.float64) * STEP


def _frequency_change(seed: int, before: float, after: float) -> Series:
    """A sine of period ``before`` points that switches, in phase, to period ``after`` at point 2,200."""
    rng = np.random.default_rng(seed)
    n, at = 3000, 2200
    i = np.arange(n)
    phase = np.where(i < at, 2 * np.pi * i / before, 2 * np.pi * at / before + 2 * np.pi * (i - at) / after)
    return _times(n), 50 + 20 * np.sin(phase) + rng.normal(0, 1, n), at


def _missing_daily_peak(seed: int) -> Series:
    """A flat series with a peak at noon every day; on day 10 the peak does not come."""
    rng = np.random.default_rng(seed)
    n = 14 * DAY_POINTS
    ts = _times(n)
    hour = (ts % 86400) / 3600
    values = 30 + 40 * np.exp(-((hour - 12) ** 2) / 2) + rng.normal(0, 1, n)
    day = 10 * DAY_POINTS
    values[day : day + DAY_POINTS] = 30 + rng.normal(0, 1, DAY_POINTS)
    return ts, values, day


def _level_shift_inside_range(seed: int) -> Series:
    """50 ± 1 with an hour at 80 each night and an hour at 20 each afternoon; from day 10 the 50 becomes 60."""
    rng = np.random.default_rng(seed)
    n = 14 * DAY_POINTS
    ts = _times(n)
    hour = (ts % 86400) / 3600
    base = np.where((hour >= 2) & (hour < 3), 80.0, np.where((hour >= 14) & (hour < 15), 20.0, 50.0))
    at = 10 * DAY_POINTS + 30  # 05:00 on day 10
    base[at:] = np.where(base[at:] == 50.0, 60.0, base[at:])
    return ts, base + rng.normal(0, 1, n), at


def _caught(series: Series, detector: StreamingDetector, within: int) -> tuple[float, float]:
    ts, values, at = series
    scores = detector.score_samples(ts, values)
    return float(scores[WARM:at].max()), float(scores[at : at + within].max())


@pytest.mark.parametrize("seed", SEEDS)
def test_a_daily_cycle_that_turns_into_a_six_hour_one_is_caught_while_values_stay_in_range(seed: int) -> None:
    series = _frequency_change(seed, before=DAY_POINTS, after=DAY_POINTS / 4)
    ts, values, at = series
    assert abs(values[at : at + DAY_POINTS].mean() - values[:at].mean()) < 2  # same amplitude and level
    before, after = _caught(series, StreamingDetector(), within=DAY_POINTS)
    assert before < ALERT
    assert after >= ALERT


@pytest.mark.parametrize("seed", SEEDS)
def test_a_frequency_change_outside_any_daily_pattern_needs_the_shape_view(seed: int) -> None:
    """A cycle of 37 points becoming one of 13: no view but the shape distance sees it."""
    series = _frequency_change(seed, before=37, after=13)
    before, after = _caught(series, StreamingDetector(shape=True), within=100)
    assert before < ALERT
    assert after >= ALERT
    assert _caught(series, StreamingDetector(), within=100)[1] < ALERT


@pytest.mark.parametrize("seed", SEEDS)
def test_a_missing_daily_peak_is_caught_on_the_day(seed: int) -> None:
    before, after = _caught(_missing_daily_peak(seed), StreamingDetector(), within=DAY_POINTS)
    assert before < ALERT
    assert after >= ALERT


@pytest.mark.parametrize("seed", SEEDS)
def test_a_level_shift_inside_the_normal_range_is_caught_within_hours(seed: int) -> None:
    series = _level_shift_inside_range(seed)
    ts, values, at = series
    hour = (ts[at:] % 86400) / 3600
    shifted = values[at:][((hour < 2) | (hour >= 3)) & ((hour < 14) | (hour >= 15))]  # the 50 that became 60
    assert values[:at].min() < shifted.min() and shifted.max() < values[:at].max()
    before, after = _caught(series, StreamingDetector(), within=36)
    assert before < ALERT
    assert after >= ALERT


@pytest.mark.parametrize("shape", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_stationary_noise_stays_quiet(seed: int, shape: bool) -> None:
    rng = np.random.default_rng(seed)
    n = 5000
    ts = START + np.arange(n, dtype=np.float64) * 60.0
    scores = StreamingDetector(shape=shape).score_samples(ts, rng.normal(0, 1, n))
    assert scores[500:].max() < ALERT


def test_the_shape_memory_finds_a_repeated_pattern_at_distance_zero_and_a_new_one_far() -> None:
    memory = _ShapeMemory(length=4, block=2, capacity=50, least=5)
    pattern = [0.0, 0.0, 1.0, 1.0, 4.0, 4.0, 1.0, 1.0]  # blocks 0, 1, 4, 1
    distances = [memory.push(v) for _ in range(12) for v in pattern]
    measured = [d for d in distances if d is not None]
    assert measured and max(measured) == pytest.approx(0.0, abs=1e-12)
    assert all(d is None for d in distances[0::2])  # a distance only when a block completes
    new = [memory.push(v) for v in [0.0, 0.0, 9.0, 9.0, 0.0, 0.0, 9.0, 9.0]]
    assert max(d for d in new if d is not None) > 1.0
