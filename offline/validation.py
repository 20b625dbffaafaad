"""How good, stable and meaningful are the segments?"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.stats import kruskal
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
)

from offline.predictive import Predictive
from offline.silhouette import silhouettes

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class InternalMetrics:
    """Cluster-quality figures on the validation sample."""

    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    silhouette_by_label: dict[int, float]
    silhouette_values: FloatArray


def internal_metrics(embedded: FloatArray, labels: IntArray) -> InternalMetrics:
    """Silhouette (mean and per label), Davies-Bouldin and Calinski-Harabasz."""
    (values,) = silhouettes(embedded, [labels])
    per_label = {int(lab): float(values[labels == lab].mean()) for lab in np.unique(labels)}
    return InternalMetrics(
        silhouette=float(values.mean()),
        davies_bouldin=float(davies_bouldin_score(embedded, labels)),
        calinski_harabasz=float(calinski_harabasz_score(embedded, labels)),
        silhouette_by_label=per_label,
        silhouette_values=values,
    )


@dataclass(frozen=True)
class Stability:
    """Bootstrap stability: mean ARI and clusterwise Jaccard (Hennig, 2007)."""

    mean_ari: float
    jaccard_by_label: dict[int, float]
    resamples: int
    kept_share: FloatArray
    """Per customer: the share of refits that kept it in its segment (clusters of a
    refit matched to the reference segments by largest overlap, Hungarian)."""


def bootstrap_stability(
    embedded: FloatArray, labels: IntArray, k: int, resamples: int, seed: int, n_init: int = 2
) -> Stability:
    """Refit on bootstrap resamples; compare each refit's labels with the reference."""
    rng = np.random.default_rng(seed)
    n = len(embedded)
    aris: list[float] = []
    jaccards: dict[int, list[float]] = {int(lab): [] for lab in np.unique(labels)}
    kept = np.zeros(n, dtype=np.float64)
    for b in range(resamples):
        rows = rng.integers(0, n, size=n)
        refit = KMeans(n_clusters=k, n_init=n_init, random_state=seed + b + 1)
        refit.fit(embedded[rows])
        predicted = refit.predict(embedded)
        aris.append(float(adjusted_rand_score(labels, predicted)))
        overlap = np.zeros((k, k), dtype=np.int64)
        np.add.at(overlap, (labels, predicted), 1)
        mine, theirs = linear_sum_assignment(-overlap)
        matched = np.full(k, -1, dtype=np.int64)
        matched[theirs] = mine
        kept += matched[predicted] == labels
        for lab, scores in jaccards.items():
            members = labels == lab
            best = 0.0
            for other in np.unique(predicted):
                theirs = predicted == other
                union = np.count_nonzero(members | theirs)
                if union:
                    best = max(best, np.count_nonzero(members & theirs) / union)
            scores.append(best)
    return Stability(
        mean_ari=float(np.mean(aris)) if aris else float("nan"),
        jaccard_by_label={lab: float(np.mean(v)) for lab, v in jaccards.items()},
        resamples=resamples,
        kept_share=kept / resamples if resamples else np.ones(n, dtype=np.float64),
    )


@dataclass(frozen=True)
class Holdout:
    """Temporal holdout: a model fitted H days earlier, applied today."""

    holdout_days: int
    ari: float
    changed_share: float
    customers_then: int
    retention_by_label: dict[int, float] = field(default_factory=dict)
    """Per today's label: share of its customers known then whom the fit as of T-H
    put in the matching segment (fits matched by largest overlap)."""
    predictive: Predictive | None = None
    churn_by_label: dict[int, float] = field(default_factory=dict)
    """Per today's label: the holdout-window churn of the matching T-H segment."""


def kpi_table(features: pl.DataFrame, labels: IntArray, window_days: int) -> pl.DataFrame:
    """Per-label KPIs: customers, revenue share, AOV, purchases per 30 days."""
    frame = features.with_columns(pl.Series("label", labels))
    total_revenue = float(frame["monetary"].sum()) or 1.0
    return (
        frame.group_by("label")
        .agg(
            pl.len().alias("customers"),
            (pl.col("monetary").sum() / total_revenue).alias("revenue_share"),
            (pl.col("monetary").sum() / pl.col("frequency").sum().clip(lower_bound=1)).alias(
                "average_order_value"
            ),
            (pl.col("frequency").mean() * 30.0 / window_days).alias("purchases_per_30_days"),
        )
        .sort("label")
    )


def kpi_pvalues(features: pl.DataFrame, labels: IntArray) -> dict[str, float]:
    """Kruskal-Wallis p-value per feature: do the segments differ on it?"""
    out: dict[str, float] = {}
    groups = [labels == lab for lab in np.unique(labels)]
    frame = features.with_columns(
        (pl.col("monetary") / pl.col("frequency").clip(lower_bound=1)).alias("order_value")
    )
    for column in ("recency_days", "frequency", "monetary", "order_value"):
        values = frame[column].to_numpy()
        samples = [values[g] for g in groups if g.any()]
        try:
            p = float(kruskal(*samples).pvalue)
        except ValueError:  # every value identical: no evidence of a difference
            p = 1.0
        out[column] = p if np.isfinite(p) else 1.0
    return out
