"""Online centroids: River's incremental k-means seeded with a model's baseline.

Coordinates are the model's standardised space (see `scoring.space`), and
cluster ``i`` is the model's ``i``-th segment. River's ``KMeans`` defines the
learning rule: the centroid closest to each observation moves by
``learning_rate`` times the gap (River calls it ``halflife``);
``learning_rate = 0`` keeps the baseline frozen.

The worker learns from whole batches, so it calls only `learn_many` (River's
rule applied to a block at once, in numpy) and `centroids`. River's estimator
stays the oracle of that rule: `learn_one` and `predict_one` are River's own,
brought up to date lazily when called, and a unit test holds `learn_many` to
River's `learn_one` row by row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from river.cluster import KMeans

from schemas.segments import FEATURE_NAMES

DEFAULT_LEARNING_RATE = 0.0001
"""Per observation: a centroid remembers roughly the last 1/rate observations near it."""


class OnlineCentroids:
    """River-style clusterer (``learn_one`` / ``predict_one``) over named RFM coordinates.

    >>> oc = OnlineCentroids([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], learning_rate=0.5)
    >>> oc.predict_one({"recency_days": 1.8, "frequency": 2.0, "monetary": 2.0})
    1
    >>> oc.learn_one({"recency_days": 1.0, "frequency": 1.0, "monetary": 1.0})
    >>> oc.centroids().tolist()
    [[0.5, 0.5, 0.5], [2.0, 2.0, 2.0]]
    """

    def __init__(
        self,
        baseline: Sequence[Sequence[float]] | NDArray[np.float64],
        learning_rate: float = DEFAULT_LEARNING_RATE,
    ) -> None:
        if not 0.0 <= learning_rate <= 1.0:
            raise ValueError(f"learning rate must be in [0, 1], got {learning_rate}")
        self.baseline = np.asarray(baseline, dtype=np.float64)
        self.learning_rate = learning_rate
        self._kmeans = KMeans(n_clusters=len(self.baseline), halflife=learning_rate, seed=0)
        self._load(self.baseline)
        self._centroids: NDArray[np.float64] | None = self.baseline.copy()
        self._river_stale = False

    def _load(self, centroids: NDArray[np.float64]) -> None:
        for index, row in enumerate(centroids):
            center = self._kmeans.centers[index]
            center.clear()
            center.update(zip(FEATURE_NAMES, (float(v) for v in row), strict=True))
        self._river_stale = False

    def _river(self) -> KMeans:
        """River's estimator, brought up to date after vectorised updates."""
        if self._river_stale and self._centroids is not None:
            self._load(self._centroids)
        return self._kmeans

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Move the centroid closest to ``x`` toward it."""
        if self.learning_rate == 0.0:
            return
        self._river().learn_one(dict(x))  # type: ignore[no-untyped-call]
        self._centroids = None

    def learn_many(self, rows: NDArray[np.float64]) -> None:
        """River's update for a block of (n, 3) rows, as one mini-batch step.

        Each row moves its nearest centroid by ``learning_rate`` times the gap,
        in row order, exactly as ``learn_one`` would, except that the nearest
        centroid is decided against the centroids as they stood at the start
        of the block. With rates of 1e-4 the centroids move by far less than
        the gaps between them within a block, so the choice is the same for
        all but rows on a boundary, and the update is vectorised: ``m`` rows
        assigned to a centroid take it to ``(1-r)^m c + r * sum (1-r)^(m-i) x_i``.
        """
        if self.learning_rate == 0.0 or not len(rows):
            return
        current = self.centroids()
        gaps = rows[:, None, :] - current[None, :, :]
        nearest = np.argmin(np.einsum("nkd,nkd->nk", gaps, gaps), axis=1)
        keep = 1.0 - self.learning_rate
        moved = current.copy()
        for index in np.unique(nearest):
            members = rows[nearest == index]
            m = len(members)
            weights = self.learning_rate * keep ** np.arange(m - 1, -1, -1, dtype=np.float64)
            moved[index] = keep**m * current[index] + weights @ members
        self._centroids = moved
        self._river_stale = True

    def predict_one(self, x: Mapping[str, float]) -> int:
        """Index of the closest centroid."""
        result: int = self._river().predict_one(dict(x))  # type: ignore[no-untyped-call]
        return result

    def centroids(self) -> NDArray[np.float64]:
        """Current centroids, shape (k, 3), in `FEATURE_NAMES` order."""
        if self._centroids is None:
            self._centroids = np.asarray(
                [
                    [self._kmeans.centers[i][name] for name in FEATURE_NAMES]
                    for i in range(len(self.baseline))
                ],
                dtype=np.float64,
            )
        return self._centroids

    def drift(self) -> NDArray[np.float64]:
        """Euclidean distance of each online centroid from its baseline (standardised units)."""
        gap = self.centroids() - self.baseline
        result: NDArray[np.float64] = np.sqrt((gap * gap).sum(axis=1))
        return result

    def clone(self) -> OnlineCentroids:
        """A fresh estimator with the same parameters (River's ``clone``): at its baseline."""
        return OnlineCentroids(self.baseline.copy(), self.learning_rate)

    def checkpoint(self) -> list[list[float]]:
        """The current centroids as plain lists, for a changelog or a file."""
        rows: list[list[float]] = self.centroids().tolist()
        return rows

    def restore(self, centroids: Sequence[Sequence[float]]) -> None:
        """Continue from a checkpoint taken on the same baseline."""
        array = np.asarray(centroids, dtype=np.float64)
        if array.shape != self.baseline.shape or not np.isfinite(array).all():
            raise ValueError(
                f"checkpoint of shape {array.shape} does not fit centroids {self.baseline.shape}"
            )
        self._load(array)
        self._centroids = array.copy()
