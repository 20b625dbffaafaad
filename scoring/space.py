"""The model space: raw RFM features -> transformed -> standardised.

Both the trainer and the worker go through `ModelSpace`, built from the
`SegmentModel` artifact alone, so scoring needs neither scikit-learn nor pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.model import SegmentModel

FloatArray = NDArray[np.float64]


def apply_transforms(raw: FloatArray, transforms: Sequence[str]) -> FloatArray:
    """Column-wise transforms (``identity`` or ``log1p``) of an (n, d) array."""
    out = np.array(raw, dtype=np.float64, copy=True)
    for column, name in enumerate(transforms):
        if name == "log1p":
            out[:, column] = np.log1p(out[:, column])
        elif name != "identity":
            raise ValueError(f"unknown transform {name!r}")
    return out


def invert_transforms(values: FloatArray, transforms: Sequence[str]) -> FloatArray:
    """Undo `apply_transforms`."""
    out = np.array(values, dtype=np.float64, copy=True)
    for column, name in enumerate(transforms):
        if name == "log1p":
            out[:, column] = np.expm1(out[:, column])
    return out


def pairwise_distances(rows: FloatArray, centroids: FloatArray) -> FloatArray:
    """Euclidean distance of each row (n, d) to each centroid (k, d), shape (n, k)."""
    diff = rows[:, None, :] - centroids[None, :, :]
    squared: FloatArray = np.einsum("nkd,nkd->nk", diff, diff)
    return np.sqrt(squared)


def rowwise_distances(rows: FloatArray, centroids: FloatArray) -> FloatArray:
    """Euclidean distance of each row (n, d) to each of its own centroids (n, k, d): (n, k)."""
    diff = centroids - rows[:, None, :]
    squared: FloatArray = np.einsum("nkd,nkd->nk", diff, diff)
    return np.sqrt(squared)


@dataclass(frozen=True)
class ModelSpace:
    """Transforms, scaler and centroids of one model, as arrays."""

    transforms: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    centroids: FloatArray
    segment_ids: tuple[int, ...]

    @classmethod
    def from_model(cls, model: SegmentModel) -> ModelSpace:
        """The space of a validated artifact."""
        names = model.features.names
        weights = np.asarray([model.features.weights[n] for n in names], dtype=np.float64)
        return cls(
            transforms=tuple(model.features.transforms[n] for n in names),
            mean=np.asarray(model.scaler.mean, dtype=np.float64),
            # A weight w multiplies the standardised coordinate: the same as scale / w.
            scale=np.asarray(model.scaler.scale, dtype=np.float64) / weights,
            centroids=np.asarray([s.centroid for s in model.segments], dtype=np.float64),
            segment_ids=tuple(s.segment_id for s in model.segments),
        )

    @classmethod
    def from_parts(
        cls,
        transforms: Mapping[str, str] | Sequence[str],
        mean: Sequence[float],
        scale: Sequence[float],
        centroids: Sequence[Sequence[float]] | FloatArray,
        segment_ids: Sequence[int],
    ) -> ModelSpace:
        """A space from plain values (used while a model is being trained)."""
        names = tuple(transforms.values()) if isinstance(transforms, Mapping) else tuple(transforms)
        return cls(
            names,
            np.asarray(mean, dtype=np.float64),
            np.asarray(scale, dtype=np.float64),
            np.asarray(centroids, dtype=np.float64),
            tuple(segment_ids),
        )

    def embed(self, raw: FloatArray) -> FloatArray:
        """Raw (n, 3) features to standardised model coordinates."""
        return (apply_transforms(raw, self.transforms) - self.mean) / self.scale

    def raw_centroids(self) -> FloatArray:
        """Centroids back in raw feature units."""
        return invert_transforms(self.centroids * self.scale + self.mean, self.transforms)

    def distances(self, embedded: FloatArray) -> FloatArray:
        """Euclidean distance of each embedded row to each centroid, shape (n, k)."""
        return pairwise_distances(embedded, self.centroids)

    def distances_to(self, embedded: FloatArray, centroids: FloatArray) -> FloatArray:
        """`distances` against other centroids in this space (e.g. online ones)."""
        return pairwise_distances(embedded, centroids)

    def nearest(self, raw: FloatArray) -> NDArray[np.int64]:
        """Index (not id) of the nearest centroid for each raw row."""
        index: NDArray[np.int64] = np.argmin(self.distances(self.embed(raw)), axis=1)
        return index.astype(np.int64)
