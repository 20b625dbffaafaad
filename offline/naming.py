"""Human segment names from RFM conventions, unique within a model.

Each segment gets continuous R, F and M scores in [1, 5]: its members' mean
percentile in the training population (recency reversed so 5 = most recent). Names are then
assigned by a minimum-cost matching between segments and named prototypes, so
two segments never share a name and each gets the closest free one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

FloatArray = NDArray[np.float64]

PROTOTYPES: dict[str, tuple[float, float, float]] = {
    "Champions": (5.0, 5.0, 5.0),
    "Loyal": (3.5, 4.5, 4.0),
    "Potential Loyalists": (4.5, 3.0, 3.0),
    "New": (5.0, 1.0, 1.5),
    "Promising": (4.0, 1.5, 2.5),
    "Need Attention": (3.0, 3.0, 3.0),
    "About to Sleep": (3.0, 1.5, 1.5),
    "At Risk": (1.5, 3.5, 3.5),
    "Can't Lose Them": (1.0, 5.0, 5.0),
    "Hibernating": (2.0, 1.5, 1.5),
    "Lost": (1.0, 1.0, 1.0),
}
DESCRIPTIONS: dict[str, str] = {
    "Champions": "bought recently, buy often and spend the most",
    "Loyal": "buy often and spend well; not the most recent",
    "Potential Loyalists": "recent customers with average frequency",
    "New": "bought for the first time very recently",
    "Promising": "recent but infrequent, modest spend",
    "Need Attention": "average on all three measures",
    "About to Sleep": "below average recency and frequency",
    "At Risk": "used to buy often and spend well, not seen for a while",
    "Can't Lose Them": "were the best customers, gone quiet for a long time",
    "Hibernating": "last bought long ago, few orders, low spend",
    "Lost": "lowest recency, frequency and spend",
}


def percentile_scores(population: FloatArray, points: FloatArray) -> FloatArray:
    """Scores in [1, 5] of `points` against `population`.

    F and M score the share of the population strictly below a value, R the
    share with a strictly longer recency; so customers tied at the bottom (no
    purchase in the window, say) score 1, as RFM quintile conventions expect.
    """
    scores = np.empty_like(points, dtype=np.float64)
    n = len(population)
    for column in range(points.shape[1]):
        ordered = np.sort(population[:, column])
        if column == 0:
            worse = n - np.searchsorted(ordered, points[:, column], side="right")
        else:
            worse = np.searchsorted(ordered, points[:, column], side="left")
        scores[:, column] = 1.0 + 4.0 * worse / n
    return scores


def name_segments(scores: FloatArray) -> list[str]:
    """One distinct name per row of (k, 3) R/F/M scores."""
    names = list(PROTOTYPES)
    prototypes = np.asarray([PROTOTYPES[n] for n in names])
    cost = np.linalg.norm(scores[:, None, :] - prototypes[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    chosen = [""] * len(scores)
    for row, col in zip(rows, cols, strict=True):
        chosen[row] = names[col]
    extra = 1
    for i, name in enumerate(chosen):  # more segments than prototypes
        if not name:
            chosen[i] = f"Segment {extra}"
            extra += 1
    return chosen


def describe(name: str, scores: FloatArray) -> str:
    """A one-sentence description for a named segment."""
    r, f, m = (float(x) for x in scores)
    base = DESCRIPTIONS.get(name, "a distinct group")
    return f"{base} (R {r:.1f}, F {f:.1f}, M {m:.1f} on a 1-5 scale)"
