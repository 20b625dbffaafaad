"""Our shared-distance silhouette equals scikit-learn's, point for point."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import silhouette_samples
from sklearn.metrics import silhouette_score as sklearn_score

from offline.silhouette import silhouette_sample, silhouette_score, silhouettes


def test_every_labeling_matches_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(1500, 3))
    data[:500] += 4.0
    labelings = [rng.integers(0, k, len(data)) for k in (2, 3, 5)]
    labelings.append(np.where(data[:, 0] > 2.0, 7, -1))  # arbitrary label values
    for ours, labels in zip(silhouettes(data, labelings), labelings, strict=True):
        np.testing.assert_allclose(ours, silhouette_samples(data, labels), atol=1e-12)


def test_a_point_alone_in_its_cluster_scores_zero() -> None:
    data = np.asarray([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]])
    labels = np.asarray([0, 0, 1])
    assert silhouettes(data, [labels])[0][2] == 0.0
    assert silhouette_score(data, labels) == sklearn_score(data, labels)


def test_the_sample_is_scikit_learns() -> None:
    rng = np.random.default_rng(4)
    data = rng.normal(size=(3000, 3))
    labels = rng.integers(0, 4, len(data))
    rows = silhouette_sample(len(data), 1000, seed=11)
    expected = sklearn_score(data, labels, sample_size=1000, random_state=11)
    assert abs(silhouette_score(data[rows], labels[rows]) - expected) < 1e-12
