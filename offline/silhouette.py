"""Silhouette values (Rousseeuw, 1987) for several labelings of one sample at once.

The same definition as scikit-learn's `silhouette_samples` (Euclidean; a point
alone in its cluster scores 0), computed from one pass of distance blocks
shared by every labeling: per block, the distances to all points times a
one-hot matrix of each labeling's clusters give every point's summed distance
to every cluster. Choosing k compares five labelings of the same 8,000 points;
scikit-learn recomputes the 64M distances for each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BLOCK_ROWS = 256


def silhouette_sample(n: int, size: int, seed: int) -> IntArray:
    """The rows scikit-learn's ``silhouette_score(sample_size=size, random_state=seed)`` uses."""
    if size >= n:
        return np.arange(n)
    chosen: IntArray = np.random.RandomState(seed).permutation(n)[:size]
    return chosen


def silhouettes(data: FloatArray, labelings: Sequence[IntArray]) -> list[FloatArray]:
    """Per-point silhouette values of `data` under each labeling."""
    n = len(data)
    codes: list[IntArray] = []
    counts: list[FloatArray] = []
    blocks: list[FloatArray] = []
    for labels in labelings:
        _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        codes.append(inverse.reshape(-1))
        counts.append(sizes.astype(np.float64))
        onehot = np.zeros((n, len(sizes)), dtype=np.float64)
        onehot[np.arange(n), inverse.reshape(-1)] = 1.0
        blocks.append(onehot)
    onehots = np.hstack(blocks) if blocks else np.zeros((n, 0))
    sums = np.empty((n, onehots.shape[1]), dtype=np.float64)
    squared = np.einsum("ij,ij->i", data, data)
    for start in range(0, n, BLOCK_ROWS):
        rows = data[start : start + BLOCK_ROWS]
        d2 = np.dot(rows, data.T)
        d2 *= -2.0
        d2 += squared[start : start + len(rows), None]
        d2 += squared[None, :]
        np.maximum(d2, 0.0, out=d2)
        distances = np.sqrt(d2, out=d2)
        distances[np.arange(len(rows)), np.arange(start, start + len(rows))] = 0.0
        sums[start : start + len(rows)] = distances @ onehots
    out, column = [], 0
    for code, count in zip(codes, counts, strict=True):
        k = len(count)
        own_sum = sums[np.arange(n), column + code]
        own_size = count[code]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = own_sum / (own_size - 1.0)
            mean_other = sums[:, column : column + k] / count[None, :]
        mean_other[np.arange(n), code] = np.inf
        b = mean_other.min(axis=1) if k > 1 else np.zeros(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = (b - a) / np.maximum(a, b)
        values[own_size <= 1.0] = 0.0
        out.append(np.nan_to_num(values, nan=0.0))
        column += k
    return out


def silhouette_score(data: FloatArray, labels: IntArray) -> float:
    """Mean silhouette value."""
    return float(silhouettes(data, [labels])[0].mean())
