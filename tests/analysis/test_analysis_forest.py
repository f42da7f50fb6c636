"""The host model: numpy scoring equals scikit-learn's, the fit runs in a child process, attribution names the
perturbed series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from crucible_monitor.analysis.fitting import fit_forest
from crucible_monitor.analysis.forest import CompactForest, HostModel, fit_in_subprocess

PARAMS = {"n_estimators": 50, "max_samples": 128, "random_state": 0}


def _rows(n: int = 1500, features: int = 5, seed: int = 0) -> np.ndarray:
    """Correlated features, like a host's series: the first two move together."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    x[:, 1] = 0.9 * x[:, 0] + 0.1 * x[:, 1]
    return x


def test_the_compact_forest_scores_exactly_as_scikit_learn() -> None:
    x = _rows()
    probe = np.vstack([_rows(300, seed=1) * 3, [[0, 0, 0, 0, 0], [8, -8, 0, 0, 0]]])
    reference = IsolationForest(n_estimators=50, max_samples=128, random_state=0).fit(x)
    np.testing.assert_allclose(fit_forest(x, PARAMS).score_samples(probe), -reference.score_samples(probe), rtol=1e-12)


def test_fitting_in_a_child_process_gives_the_same_trees_as_in_process() -> None:
    x = _rows()
    probe = _rows(200, seed=2)
    child = fit_in_subprocess(x, PARAMS)
    np.testing.assert_array_equal(child.score_samples(probe), fit_forest(x, PARAMS).score_samples(probe))


def test_a_saved_forest_loads_back_identical(tmp_path: Path) -> None:
    forest = fit_forest(_rows(), PARAMS)
    path = tmp_path / "forest.npz"
    forest.save(path)
    probe = _rows(100, seed=3)
    np.testing.assert_array_equal(CompactForest.load(path).score_samples(probe), forest.score_samples(probe))


def test_several_series_high_together_score_above_the_threshold_though_each_alone_does_not() -> None:
    model = HostModel(n_estimators=50, fitter=fit_forest).fit(_rows())
    alone = model.score_samples(np.diag([2.2, 2.0, 2.2, -2.2, 2.2]))
    together = model.score_samples([[2.2, 2.0, 2.2, -2.2, 2.2]])[0]
    assert alone.max() < model.threshold_ < together  # every value within its training range


def test_a_level_far_beyond_the_training_range_scores_near_one() -> None:
    model = HostModel(n_estimators=50, fitter=fit_forest).fit(_rows())
    far = model.score_samples([[0.0, 0.0, 0.0, 150.0, 0.0]])[0]
    assert far > 0.95
    assert model.forest_.score_samples([[0.0, 0.0, 0.0, 150.0, 0.0]])[0] < 0.75  # the forest alone saturates


def test_attribution_names_the_perturbed_feature() -> None:
    model = HostModel(n_estimators=50, fitter=fit_forest).fit(_rows())
    for feature in range(5):
        row = np.zeros(5)
        row[feature] = 40.0
        contribution = model.attribution(row)
        assert int(np.argmax(contribution)) == feature
        assert contribution[feature] > 0.3


def test_a_fixed_random_state_makes_fits_repeatable() -> None:
    x = _rows()
    probe = _rows(100, seed=4)
    first = HostModel(n_estimators=30, fitter=fit_forest, random_state=7).fit(x)
    second = HostModel(n_estimators=30, fitter=fit_forest, random_state=7).fit(x)
    np.testing.assert_array_equal(first.score_samples(probe), second.score_samples(probe))
    assert first.threshold_ == second.threshold_


def test_fitting_rejects_non_finite_features() -> None:
    with pytest.raises(ValueError, match="finite"):
        HostModel(fitter=fit_forest).fit([[0.0, float("nan")], [1.0, 2.0]])
