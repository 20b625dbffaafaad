"""Distribution drift between a model's training data and live data.

Reference distributions are binned at training time (deciles); the outer bins
are open-ended, so any live value falls in some bin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
PSI_FLOOR = 1e-4
"""Proportions are floored here so an empty bin does not make PSI infinite."""


def reference_edges(values: FloatArray, bins: int = 10) -> list[float]:
    """Strictly increasing quantile edges (at least two) of a training feature."""
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    edges = [float(q) for q in np.unique(quantiles)]
    if len(edges) < 2:
        edges = [edges[0], edges[0] + 1.0]
    return edges


def bin_counts(values: FloatArray, edges: Sequence[float]) -> NDArray[np.int64]:
    """Counts per bin, the first and last bins open-ended."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    index = np.searchsorted(inner, values, side="right")
    counts: NDArray[np.int64] = np.bincount(index, minlength=len(edges) - 1).astype(np.int64)
    return counts


def proportions(values: FloatArray, edges: Sequence[float]) -> list[float]:
    """Share of `values` per bin; sums to 1."""
    counts = bin_counts(values, edges)
    total = counts.sum()
    return [float(c) / float(total) for c in counts] if total else [0.0] * len(counts)


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of `actual` against `expected` proportions."""
    e = np.clip(np.asarray(expected, dtype=np.float64), PSI_FLOOR, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), PSI_FLOOR, None)
    return float(np.sum((a - e) * np.log(a / e)))


def binned_ks(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Kolmogorov-Smirnov distance between two binned distributions (max CDF gap)."""
    e = np.cumsum(np.asarray(expected, dtype=np.float64))
    a = np.cumsum(np.asarray(actual, dtype=np.float64))
    return float(np.max(np.abs(e - a))) if len(e) else 0.0
