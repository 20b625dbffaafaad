"""The rank-sum ROC AUC equals scikit-learn's, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from offline.auc import roc_auc


@pytest.mark.parametrize("decimals", [1, 3, 12])  # many ties .. almost none
def test_the_rank_auc_equals_scikit_learns(decimals: int) -> None:
    rng = np.random.default_rng(decimals)
    positive = rng.random(5000) < 0.3
    score = np.round(rng.random(5000) + 0.3 * positive, decimals)
    assert roc_auc(positive, score) == pytest.approx(roc_auc_score(positive, score), abs=1e-12)


def test_a_perfect_a_reversed_and_an_all_tied_ranking() -> None:
    positive = np.array([False, False, True, True])
    assert roc_auc(positive, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc(positive, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc(positive, [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_no_auc_without_both_kinds() -> None:
    assert roc_auc([True, True], [0.1, 0.2]) is None
    assert roc_auc([False, False], [0.1, 0.2]) is None
