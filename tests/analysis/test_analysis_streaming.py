"""The streaming detector on synthetic series: each kind of anomaly scores high, a quiet series does not."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_synthetic import AT, KINDS, WARM, Kind, series

from crucible_monitor.analysis.streaming import RangeExcess, StreamingDetector, range_excess, suppress_repeats

ALERT = 0.2  # the score these tests treat as an alert
SEEDS = (1, 2, 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_quiet_seasonal_series_never_reaches_an_alert_score_once_warm(seed: int) -> None:
    ts, values = series("quiet", seed)
    scores = StreamingDetector().score_samples(ts, values)
    assert scores[WARM:].max() < ALERT


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "slow_drift"])
@pytest.mark.parametrize("seed", SEEDS)
def test_each_kind_of_anomaly_scores_above_the_alert_level_within_a_day(kind: Kind, seed: int) -> None:
    ts, values = series(kind, seed)
    scores = StreamingDetector().score_samples(ts, values)
    assert scores[WARM:AT].max() < ALERT  # nothing before it
    assert scores[AT : AT + 144].max() >= ALERT


@pytest.mark.parametrize("seed", SEEDS)
def test_a_slow_drift_shows_as_repeated_new_highs_not_one_alert(seed: int) -> None:
    """A drift makes small new records each day: visible, but below the alert level (the baseline measures it)."""
    ts, values = series("slow_drift", seed)
    scores = StreamingDetector().score_samples(ts, values)
    quiet = StreamingDetector().score_samples(*series("quiet", seed))
    assert (scores[AT:] > 0.05).sum() > (quiet[AT:] > 0.05).sum()
    assert scores[AT:].max() < ALERT


def test_scoring_in_batches_gives_the_same_scores_as_in_one_go() -> None:
    ts, values = series("level_shift", 4)
    whole = StreamingDetector().score_samples(ts, values)
    detector = StreamingDetector().fit(ts[:1000], values[:1000])
    parts = np.concatenate(
        [detector.score_samples(ts[i : i + 337], values[i : i + 337]) for i in range(1000, len(ts), 337)]
    )
    np.testing.assert_array_equal(parts, whole[1000:])


def test_a_point_is_scored_before_it_is_learned() -> None:
    detector = StreamingDetector(warmup=3, window=10)
    first = detector.score_samples([0, 1, 2, 3], [1.0, 2.0, 3.0, 30.0])
    again = detector.score_samples([4], [30.0])
    assert first[3] > 0.8  # far beyond 1..3
    assert again[0] < first[3]  # 30 is now part of the range


def test_non_finite_values_score_zero_and_are_not_learned() -> None:
    detector = StreamingDetector(warmup=2)
    scores = detector.score_samples([0, 1, 2, 3], [1.0, float("nan"), 2.0, float("inf")])
    assert scores.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_range_excess_is_half_one_width_beyond_and_zero_inside() -> None:
    assert range_excess([5.0, 20.0, -10.0], 0.0, 10.0).tolist() == pytest.approx([0.0, 0.5, 0.5])
    tracker = RangeExcess(window=3, warmup=3)
    for value in (0.0, 10.0, 5.0):
        tracker.push(value)
    assert tracker.score(20.0) == pytest.approx(range_excess(20.0, 0.0, 10.0))
    tracker.push(6.0)  # 0.0 leaves the window: the range is now 5..10
    assert tracker.score(0.0) == pytest.approx(0.5)


def test_suppress_repeats_keeps_the_first_and_stronger_points_of_an_excursion() -> None:
    scores = [0.0, 0.3, 0.3, 0.2, 0.5, 0.1, 0.0, 0.0, 0.0, 0.4]
    assert suppress_repeats(scores, rows=3).tolist() == [0.0, 0.3, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.4]
