"""Soft membership and boundary confidence, from distances in the model's space.

For a customer at standardised distances ``d_1..d_k`` from the centroids,

    membership_j = exp(-d_j**2 / T) / sum_i exp(-d_i**2 / T)

a softmax of the negative squared distances with a temperature ``T`` the
trainer fits (`fit_temperature`) so that the top score is calibrated: across
the training customers it matches how often bootstrap refits of the segments
keep each customer in its segment. A small ``T`` makes memberships hard, a
large one flat. Scores sum to 1.

``confidence`` is the relative margin between the nearest and the
second-nearest centroid, ``(d_2 - d_1) / d_2``: 0 on a boundary, 1 on a
centroid. It is the quantity hysteresis compares with its margin, so a
customer whose confidence is below the margin can be held in a segment that is
no longer the nearest.

>>> import numpy as np
>>> d = np.array([[1.0, 2.0], [1.0, 1.0]])
>>> membership(d, 1.0).round(3).tolist()
[[0.953, 0.047], [0.5, 0.5]]
>>> confidence(d).tolist()
[0.5, 0.0]
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

BOUNDARY_CONFIDENCE: Final = 0.1
"""Customers below this confidence are "near a boundary" in reports and metrics."""
_T_RANGE: Final = (1e-3, 1e3)


def membership(distances: FloatArray, temperature: float) -> FloatArray:
    """Softmax of ``-d**2 / temperature`` per row of an (n, k) distance array."""
    if not temperature > 0.0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    logits = -(distances * distances) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    scores: FloatArray = weights / weights.sum(axis=1, keepdims=True)
    return scores


def confidence(distances: FloatArray) -> FloatArray:
    """``(d_2 - d_1) / d_2`` per row: the nearest centroid's relative margin."""
    ordered = np.sort(distances, axis=1)
    nearest, second = ordered[:, 0], ordered[:, 1]
    margin: FloatArray = np.where(
        second > 0.0, (second - nearest) / np.where(second > 0.0, second, 1.0), 0.0
    )
    return margin


def fit_temperature(distances: FloatArray, kept: FloatArray) -> tuple[float, float]:
    """(temperature, mean absolute calibration error) matching the top score to `kept`.

    `kept` holds, per customer, the share of bootstrap refits that kept it in
    its segment. The temperature minimises the cross-entropy between that
    share and the top membership score (a one-dimensional search on log T).

    >>> import numpy as np
    >>> d = np.array([[0.5, 2.0], [1.0, 1.2], [0.2, 3.0]])
    >>> t, error = fit_temperature(d, np.array([0.9, 0.55, 1.0]))
    >>> 0.1 < t < 10 and error < 0.1
    True
    """
    target = np.clip(kept, 1e-6, 1 - 1e-6)

    def loss(log_t: float) -> float:
        top = membership(distances, math.exp(log_t)).max(axis=1)
        top = np.clip(top, 1e-9, 1 - 1e-9)
        return float(-np.mean(target * np.log(top) + (1 - target) * np.log(1 - top)))

    low, high = math.log(_T_RANGE[0]), math.log(_T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(80):  # golden-section search: the loss is unimodal in log T here
        if loss(c) < loss(d):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    temperature = math.exp((a + b) / 2)
    top = membership(distances, temperature).max(axis=1)
    return temperature, float(np.mean(np.abs(top - kept)))
