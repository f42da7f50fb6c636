"""The seasonal baseline: fallbacks between hour of week, hour of day and overall; deviations in MADs."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_synthetic import AT, DAY, START, STEP, series

from crucible_monitor.analysis.baseline import SeasonalBaseline

WEEK = 7 * DAY


def _hourly(days: int, weekly_bump: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Hourly values that depend on the hour of the day (and, with the bump, on Monday 09:00 UTC)."""
    ts = START + np.arange(days * 24) * 3600.0
    hours = (ts // 3600) % 24
    values = 10.0 + hours + np.random.default_rng(0).normal(0, 0.1, len(ts))
    if weekly_bump:
        monday_nine = ((ts - 4 * DAY) % WEEK) // 3600 == 9  # START is a Friday: Monday is 3 days on, 4 before
        values[monday_nine] += 100
    return ts, values


def test_with_two_weeks_the_hour_of_the_week_answers() -> None:
    ts, values = _hourly(21, weekly_bump=True)
    baseline = SeasonalBaseline(min_samples=2).fit(ts, values)
    monday_nine = START + 3 * DAY + 9 * 3600
    median, _, levels = baseline.expected([monday_nine, monday_nine + 3600])
    assert levels == ["hour_of_week", "hour_of_week"]
    assert median[0] == pytest.approx(119, abs=0.5)  # the weekly bump is expected on Mondays at 9
    assert median[1] == pytest.approx(20, abs=0.5)


def test_with_days_but_not_weeks_the_hour_of_the_day_answers() -> None:
    ts, values = _hourly(4)
    baseline = SeasonalBaseline(min_samples=2).fit(ts, values)
    median, _, levels = baseline.expected([START + 10 * DAY + 5 * 3600])
    assert levels == ["hour_of_day"]
    assert median[0] == pytest.approx(15, abs=0.2)


def test_a_short_history_falls_back_to_the_overall_median() -> None:
    ts, values = _hourly(1)
    median, _, levels = SeasonalBaseline().fit(ts, values).expected([START + 5 * 3600])
    assert levels == ["global"]
    assert median[0] == pytest.approx(np.median(values))


def test_deviation_is_in_mads_with_the_sign_of_the_departure() -> None:
    ts = START + np.arange(200) * STEP
    values = np.tile([9.0, 10.0, 11.0], 67)[:200]  # median 10, MAD 1
    baseline = SeasonalBaseline().fit(ts, values)
    assert baseline.deviation([START, START], [16.0, 7.0]).tolist() == [6.0, -3.0]
    assert baseline.score_samples([START], [16.0])[0] == pytest.approx(6 / 9)


def test_a_series_that_never_moved_gives_a_large_finite_deviation_when_it_does() -> None:
    ts = START + np.arange(100) * STEP
    baseline = SeasonalBaseline().fit(ts, np.full(100, 0.25))
    deviation = baseline.deviation([START], [0.26])[0]
    assert np.isfinite(deviation) and deviation > 1e6


def test_a_slow_drift_grows_in_mads_while_a_quiet_continuation_stays_small() -> None:
    ts, drift = series("slow_drift", 5)
    _, quiet = series("quiet", 5)
    baseline = SeasonalBaseline().fit(ts[:AT], quiet[:AT])
    last_day = slice(len(ts) - 144, len(ts))
    assert np.median(baseline.deviation(ts[last_day], drift[last_day])) > 20
    assert np.abs(np.median(baseline.deviation(ts[last_day], quiet[last_day]))) < 2


def test_broken_seasonality_departs_from_the_daily_profile() -> None:
    ts, broken = series("broken_seasonality", 5)
    baseline = SeasonalBaseline().fit(ts[:AT], broken[:AT])
    day = slice(AT, AT + 144)
    assert np.abs(baseline.deviation(ts[day], broken[day])).max() > 10


def test_a_baseline_survives_a_round_trip_through_its_dict() -> None:
    ts, values = _hourly(21, weekly_bump=True)
    baseline = SeasonalBaseline(min_samples=2).fit(ts, values)
    again = SeasonalBaseline.from_dict(baseline.to_dict())
    probe = START + np.arange(0, 14 * DAY, 1800.0)
    np.testing.assert_array_equal(
        again.deviation(probe, np.full(len(probe), 15.0)), baseline.deviation(probe, np.full(len(probe), 15.0))
    )


def test_fitting_without_finite_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="no finite values"):
        SeasonalBaseline().fit([START], [float("nan")])
