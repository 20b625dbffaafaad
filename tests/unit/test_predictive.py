"""Predictive validity, cross-validation and sensitivity on data whose answer is known."""

from __future__ import annotations

import numpy as np

from offline.predictive import (
    cross_validated_ari,
    fragile,
    moved_share,
    perturbed,
    predictive_validity,
    strong_correlations,
)
from scoring.space import ModelSpace


def blobs(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.asarray([[-5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [5.0, 0.0, 5.0]])
    return centres[labels] + rng.normal(0, 0.3, (n, 3)), labels.astype(np.int64)


def test_a_segment_that_alone_keeps_buying_is_predicted_almost_perfectly() -> None:
    embedded, labels = blobs()
    bought = labels == 1
    spend = np.where(bought, 100.0, 0.0)
    result = predictive_validity(labels, embedded, bought, spend)
    assert result is not None
    assert result.segment_auc > 0.99 and result.segment_spend_r2 > 0.95
    assert result.churn_by_label[1] == 0.0 and result.churn_by_label[0] == 1.0


def test_labels_unrelated_to_the_outcome_score_near_chance() -> None:
    embedded, labels = blobs(seed=1)
    bought = np.random.default_rng(9).random(len(labels)) < 0.4
    result = predictive_validity(labels, embedded, bought, np.where(bought, 50.0, 0.0))
    assert result is not None and abs(result.segment_auc - 0.5) < 0.1
    assert predictive_validity(labels, embedded, np.ones(len(labels), bool), np.ones(600)) is None


def test_separated_clusters_cross_validate_and_are_not_fragile() -> None:
    embedded, labels = blobs(seed=2)
    mean, spread = cross_validated_ari(embedded, labels, 3)
    assert mean > 0.99 and spread < 0.01
    centroids = np.asarray([embedded[labels == k].mean(axis=0) for k in range(3)])
    space = ModelSpace(("identity",) * 3, np.zeros(3), np.ones(3), centroids, (0, 1, 2))
    raw = embedded + 0.0
    rng = np.random.default_rng(0)
    base = space.nearest(raw)
    sensitivity = {
        "monetary noise 10%": moved_share(base, space.nearest(perturbed(raw, "monetary", 0.1, rng)))
    }
    assert not fragile(sensitivity)
    assert fragile({"monetary noise 10%": 0.2})


def test_perturbations_touch_only_their_feature_and_keep_recency_non_negative() -> None:
    raw = np.asarray([[3.0, 2.0, 100.0], [40.0, 1.0, 10.0]])
    rng = np.random.default_rng(0)
    money = perturbed(raw, "monetary", 0.2, rng)
    assert (money[:, :2] == raw[:, :2]).all() and (np.abs(money[:, 2] / raw[:, 2] - 1) <= 0.2).all()
    earlier = perturbed(raw, "recency", -7.0, rng)
    assert earlier[:, 0].tolist() == [0.0, 33.0]


def test_correlations_are_reported_per_pair() -> None:
    x = np.linspace(0, 1, 50)
    table = strong_correlations(np.column_stack([x, 2 * x, np.sin(40 * x)]), ("a", "b", "c"))
    assert abs(table["a~b"] - 1.0) < 1e-9 and abs(table["a~c"]) < 0.5
