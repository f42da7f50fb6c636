"""The FP/recall comparison of benchmarks/nab/compare.py: the static rule's scores and the curve's counting."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks" / "nab"))

import compare  # noqa: E402  (a benchmark script, importable beside score.py)


def _stamps(n: int) -> np.ndarray:
    return np.datetime64("2025-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")


@pytest.mark.parametrize("margin", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_static_scores_give_the_static_rules_alerts_at_every_margin(margin: float) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(0, 1, 600)
    values[[200, 230, 400, 401, 402, 550]] += [6.0, 3.0, 4.0, 5.0, 8.0, -7.0]
    expected = compare.static_alerts(values, margin, 50)
    assert expected.any()
    np.testing.assert_array_equal(compare.static_scores(values, 50) > margin, expected)


def test_tradeoff_counts_the_fewest_false_alerts_for_each_number_of_windows_found() -> None:
    stamps = _stamps(100)  # probation: the first 15 rows
    first = np.full(100, -np.inf)
    first[[10, 20, 52, 55, 70]] = [0.99, 0.9, 0.8, 0.4, 0.5]  # row 10 is in probation: never counted
    second = np.full(100, -np.inf)
    second[35] = 0.95
    curve = compare.tradeoff(
        [
            (stamps, first, [(stamps[50], stamps[59])]),
            (stamps, second, [(stamps[30], stamps[39])]),
        ]
    )
    assert curve == {1: (0, 0.95), 2: (1, 0.8)}
