"""K-means RFM segmentation with k chosen by silhouette, in scikit-learn's contract."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from offline.silhouette import silhouette_sample, silhouettes
from scoring.space import apply_transforms

FloatArray = NDArray[np.float64]
DEFAULT_TRANSFORMS = ("identity", "log1p", "log1p")
SILHOUETTE_SAMPLE = 8_000
"""Silhouette is quadratic in rows; it is estimated on at most this many."""


@dataclass(frozen=True)
class KCandidate:
    """How one candidate k scored on the selection sample."""

    k: int
    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    min_share: float
    eligible: bool


class RfmSegmenter(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """Transform, standardise, and cluster raw (recency, frequency, monetary) rows.

    Parameters
    ----------
    k : "auto" or int
        Number of segments; "auto" picks the best silhouette in `k_range`
        among candidates whose smallest segment holds at least `min_share`.
    k_range : tuple of int
        Inclusive range of k tried when ``k="auto"``.
    n_init : int
        K-means initialisations per candidate (the best inertia wins).
    selection_sample : int
        Rows used to choose k and to compute silhouette (it is quadratic).
    min_share : float
        Materiality floor: no segment below this share of customers.
    transforms : tuple of str or None
        Per-feature transform before standardisation, one per column; None
        standardises any number of columns untransformed.
    random_state : int
        Seed; the same data and seed give the same segments.
    weights : tuple of float or None
        Multiplies each standardised column (None: all 1).
    full_fit : bool
        After choosing k on the sample, refine its centroids with one k-means
        run over every row (started from the sample's centroids, so it is a few
        Lloyd passes); False keeps the sample's centroids and only assigns the
        rows to them. Either way the cost past the sample is linear in rows.
    """

    def __init__(
        self,
        k: str | int = "auto",
        k_range: tuple[int, int] = (3, 7),
        n_init: int = 4,
        selection_sample: int = 20_000,
        min_share: float = 0.02,
        transforms: tuple[str, ...] | None = DEFAULT_TRANSFORMS,
        random_state: int = 0,
        weights: tuple[float, ...] | None = None,
        full_fit: bool = True,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.n_init = n_init
        self.selection_sample = selection_sample
        self.min_share = min_share
        self.transforms = transforms
        self.random_state = random_state
        self.weights = weights
        self.full_fit = full_fit

    def __sklearn_tags__(self) -> Tags:
        tags: Tags = super().__sklearn_tags__()
        # RFM columns are days, counts and money: never negative (and log1p needs x > -1).
        tags.input_tags.positive_only = self.transforms is not None
        return tags

    def _transforms(self, raw: FloatArray) -> tuple[str, ...]:
        if self.transforms is None:
            width: int = raw.shape[1]
            return ("identity",) * width
        return tuple(self.transforms)

    def _embed_fit(self, raw: FloatArray) -> FloatArray:
        transformed = apply_transforms(raw, self._transforms(raw))
        self.scaler_ = StandardScaler().fit(transformed)
        # A constant feature has scale 0; StandardScaler reports 1 there, which keeps it inert.
        embedded: FloatArray = self.scaler_.transform(transformed) * self._weights(raw)
        return embedded

    def _weights(self, raw: FloatArray) -> FloatArray:
        if self.weights is None:
            return np.ones(raw.shape[1], dtype=np.float64)
        return np.asarray(self.weights, dtype=np.float64)

    def embed(self, raw: FloatArray) -> FloatArray:
        """Raw rows to the standardised space of the fitted scaler."""
        check_is_fitted(self, "scaler_")
        raw = validate_data(self, raw, dtype=np.float64, reset=False)
        transformed = apply_transforms(raw, self._transforms(raw))
        embedded: FloatArray = self.scaler_.transform(transformed) * self._weights(raw)
        return embedded

    def _sample(self, n: int) -> NDArray[np.int64]:
        rng = np.random.default_rng(self.random_state)
        if n <= self.selection_sample:
            return np.arange(n)
        return np.sort(rng.choice(n, size=self.selection_sample, replace=False))

    def _fit_k(self, data: FloatArray, k: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(data)

    def fit(self, raw: FloatArray, y: object = None) -> RfmSegmenter:
        """Fit on raw (n, 3) features; returns self."""
        del y
        raw = validate_data(self, raw, dtype=np.float64)
        if self.transforms is not None and raw.shape[1] != len(self.transforms):
            raise ValueError(
                f"RfmSegmenter needs {len(self.transforms)} feature columns (one per transform), "
                f"got n_features={raw.shape[1]}"
            )
        if self.transforms is not None and (raw < 0).any():
            raise ValueError(
                "Negative values in data passed to RfmSegmenter: recency, frequency and "
                "monetary are never negative"
            )
        embedded = self._embed_fit(raw)
        sample = self._sample(len(raw))
        self.sample_index_ = sample
        self.candidates_: list[KCandidate] = []
        low, high = self.k_range
        ks = range(low, high + 1) if self.k == "auto" else [int(self.k)]
        fits: dict[int, KMeans] = {}
        for k in ks:
            if k < 2 or k > len(raw) - 1:
                continue
            fits[k] = self._fit_k(embedded[sample], k)
            if len(np.unique(fits[k].labels_)) < 2:
                del fits[k]
        # One pass of distances on the silhouette sample serves every candidate k.
        scored = silhouette_sample(len(sample), SILHOUETTE_SAMPLE, self.random_state)
        values = silhouettes(embedded[sample][scored], [f.labels_[scored] for f in fits.values()])
        for (k, fit), silhouette in zip(fits.items(), values, strict=True):
            labels = fit.labels_
            shares = np.bincount(labels, minlength=k) / len(labels)
            self.candidates_.append(
                KCandidate(
                    k=k,
                    silhouette=float(silhouette.mean()),
                    davies_bouldin=float(davies_bouldin_score(embedded[sample], labels)),
                    calinski_harabasz=float(calinski_harabasz_score(embedded[sample], labels)),
                    min_share=float(shares.min()),
                    eligible=bool(shares.min() >= self.min_share and len(np.unique(labels)) == k),
                )
            )
        if not self.candidates_:
            raise ValueError(
                f"no k in {self.k_range} can be fitted on n_samples={len(raw)} customers"
            )
        eligible = [c for c in self.candidates_ if c.eligible] or self.candidates_
        best = max(eligible, key=lambda c: (c.silhouette, -c.k))
        self.k_ = best.k
        self.kmeans_ = fits[best.k]
        if self.full_fit and len(sample) < len(raw):
            self.kmeans_ = KMeans(
                n_clusters=best.k, init=self.kmeans_.cluster_centers_, n_init=1,
                random_state=self.random_state,
            ).fit(embedded)  # fmt: skip
        self.labels_: NDArray[np.int64] = self.kmeans_.predict(embedded).astype(np.int64)
        self.cluster_centers_: FloatArray = self.kmeans_.cluster_centers_
        self.embedded_ = embedded
        return self

    def predict(self, raw: FloatArray) -> NDArray[np.int64]:
        """Nearest fitted centroid for each raw row."""
        check_is_fitted(self, "kmeans_")
        labels: NDArray[np.int64] = self.kmeans_.predict(self.embed(raw)).astype(np.int64)
        return labels
