"""The area under the ROC curve, from ranks (the Mann-Whitney U statistic).

scikit-learn's `roc_auc_score` builds the whole curve after checking its
input's kind: 0.42 s for a million scores here, where the rank sum needs one
sort (0.1 s). Ties count a half, as on the curve's diagonal steps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def roc_auc(positive: ArrayLike, score: ArrayLike) -> float | None:
    """P(a positive scores above a negative) + half P(they tie); None without both kinds."""
    labels = np.asarray(positive, dtype=bool)
    scores = np.asarray(score, dtype=np.float64)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    # Ranks 1..n, each run of equal scores given its mean rank.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.repeat(mean_rank, ends - starts)
    rank_sum = float(ranks[labels[order]].sum())
    u = rank_sum - positives * (positives + 1) / 2.0
    return u / (positives * negatives)
