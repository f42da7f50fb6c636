"""A plain IsolationForest over lag features, for comparison with the streaming detector on NAB.

Per file: features are the value and its 4 previous values plus the first difference, standardised with the
probationary rows' mean and deviation; scikit-learn's IsolationForest (100 trees, ``random_state=0``) is fitted on
the probationary rows only (nothing from the future) and scores every row (``-score_samples``, higher is more
anomalous).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from score import probation_length
from sklearn.ensemble import IsolationForest

__all__ = ["LAGS", "isolation_lags"]

LAGS = 4


def isolation_lags(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Anomaly scores of one series (the first ``LAGS`` rows repeat the first value as their history)."""
    padded = np.concatenate([np.full(LAGS, values[0]), values])
    lags = np.stack([padded[LAGS - k : len(padded) - k] for k in range(LAGS + 1)], axis=1)
    features = np.column_stack([lags, lags[:, 0] - lags[:, 1]])
    probation = max(LAGS + 2, probation_length(len(values)))
    mean, std = features[:probation].mean(axis=0), features[:probation].std(axis=0)
    features = (features - mean) / np.where(std > 0, std, 1.0)
    model = IsolationForest(n_estimators=100, random_state=0).fit(features[:probation])
    scores: npt.NDArray[np.float64] = -model.score_samples(features)
    return scores
