"""NAB's windowed Gaussian detector, reproduced to check ``score.py`` against a published score.

As published (numenta/NAB ``nab/detectors/gaussian/windowedGaussian_detector.py``): each value is scored against the
mean and standard deviation of the values before it, ``1 - Q(|z|)`` (Q the normal tail probability), the first
value 0. The window grows to 6,400 values, updating after every value; once full it slides by 100 values at a time.
A standard deviation of 0 counts as 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["STEP", "WINDOW", "windowed_gaussian"]

WINDOW = 6400
STEP = 100


def windowed_gaussian(values: npt.NDArray[np.float64], window: int = WINDOW, step: int = STEP) -> list[float]:
    """The published detector's anomaly score for every value, in order."""
    n = len(values)
    scores = [0.0] * n
    # the window scoring value i: values[start:end] with end = i while growing, then the last slide's end
    shifted = values - (values[0] if n else 0.0)  # sums of shifted values lose less precision
    cumulative = np.concatenate([[0.0], np.cumsum(shifted)])
    squares = np.concatenate([[0.0], np.cumsum(shifted * shifted)])
    for i in range(1, n):
        end = i if i <= window else window + (i - window) // step * step
        start = max(0, end - window)
        count = end - start
        mean = (cumulative[end] - cumulative[start]) / count
        variance = max(0.0, (squares[end] - squares[start]) / count - mean * mean)
        std = math.sqrt(variance) or 1e-6
        z = abs(shifted[i] - mean) / std
        scores[i] = 1 - 0.5 * math.erfc(z / math.sqrt(2))
    return scores
