"""Do the segments predict what customers do next? And do they survive small changes?

Predictive validity: segments fitted as of T-H label the customers known then;
what happened in (T-H, T] is the outcome: whether they purchased at all, and
what they spent. Segment membership predicts the purchase with an AUC (0.5 is
a guess that knows nothing) and explains a share of the spend variance; the
raw RFM features through a simple model (logistic / linear regression on the
transformed features) give the ceiling a reader compares against. All figures
are cross-validated (5 folds) so no model is scored on the customers it was
fitted to.

Cross-validation of the pattern: fit k-means on k-1 folds of customers,
assign the held-out fold, compare with the full-data labels (ARI).

Sensitivity: perturb the inputs and count the customers whose segment changes
under the same model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.cluster import KMeans
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import adjusted_rand_score, r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

FRAGILE_NOISE = 0.10
"""Monetary noise at which the model must keep 90% of customers in place."""
FRAGILE_SHARE = 0.10
"""Share of customers moved by that noise above which a model is fragile."""
FRAGILE_PERTURBATION = f"monetary noise {FRAGILE_NOISE:.0%}"


@dataclass(frozen=True)
class Predictive:
    """How well segments fitted at T-H predict the holdout window."""

    customers: int
    purchase_rate: float
    segment_auc: float
    rfm_auc: float
    segment_spend_r2: float
    rfm_spend_r2: float
    churn_by_label: dict[int, float]
    """Share of each segment (labels of the fit at T-H) that did not purchase again."""

    def as_metrics(self) -> dict[str, float]:
        """The figures as `ValidationMetrics.predictive` records them."""
        return {
            "customers": float(self.customers),
            "purchase_rate": self.purchase_rate,
            "segment_auc": self.segment_auc,
            "rfm_auc": self.rfm_auc,
            "segment_spend_r2": self.segment_spend_r2,
            "rfm_spend_r2": self.rfm_spend_r2,
        }


def _one_hot(labels: IntArray, k: int) -> FloatArray:
    out = np.zeros((len(labels), k), dtype=np.float64)
    out[np.arange(len(labels)), labels] = 1.0
    return out


PREDICTIVE_SAMPLE = 10_000
"""Customers the predictive figures are computed on (a seeded random sample above it)."""


def predictive_validity(
    labels: IntArray, embedded: FloatArray, bought: NDArray[np.bool_], spend: FloatArray,
    seed: int = 0, sample: int = PREDICTIVE_SAMPLE,
) -> Predictive | None:  # fmt: skip
    """Cross-validated AUC and R^2 of segments and of the RFM features; None if one class.

    Churn per segment is counted on every customer; the cross-validated models
    are fitted on at most `sample` of them (their cost does not grow with n).
    """
    if len(labels) < 20 or bought.all() or not bought.any():
        return None
    k = int(labels.max()) + 1
    churn = {lab: float(1.0 - bought[labels == lab].mean()) for lab in range(k)
             if (labels == lab).any()}  # fmt: skip
    rate = float(bought.mean())
    if len(labels) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(labels), sample, replace=False))
        labels, embedded, bought, spend = labels[rows], embedded[rows], bought[rows], spend[rows]
        if bought.all() or not bought.any():
            return None
    segments = _one_hot(labels, k)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    chance = {"method": "predict_proba", "cv": folds}

    def auc(x: FloatArray) -> float:
        scores = cross_val_predict(LogisticRegression(max_iter=1000), x, bought, **chance)
        return float(roc_auc_score(bought, scores[:, 1]))

    def r2(x: FloatArray) -> float:
        plain = KFold(5, shuffle=True, random_state=seed)
        predicted = cross_val_predict(LinearRegression(), x, np.log1p(spend), cv=plain)
        return float(r2_score(np.log1p(spend), predicted))

    return Predictive(
        customers=len(labels),
        purchase_rate=rate,
        segment_auc=auc(segments),
        rfm_auc=auc(embedded),
        segment_spend_r2=r2(segments),
        rfm_spend_r2=r2(embedded),
        churn_by_label=churn,
    )


def cross_validated_ari(
    embedded: FloatArray, labels: IntArray, k: int, folds: int = 5, seed: int = 0
) -> tuple[float, float]:
    """(mean, standard deviation) of ARI on held-out folds against the full-data labels."""
    scores = []
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(embedded):
        fitted = KMeans(n_clusters=k, n_init=2, random_state=seed).fit(embedded[train])
        scores.append(adjusted_rand_score(labels[test], fitted.predict(embedded[test])))
    return float(np.mean(scores)), float(np.std(scores))


PERTURBATIONS: tuple[tuple[str, str, float], ...] = (
    ("monetary noise 5%", "monetary", 0.05),
    (FRAGILE_PERTURBATION, "monetary", FRAGILE_NOISE),
    ("monetary noise 20%", "monetary", 0.20),
    ("recency +7 days", "recency", 7.0),
    ("recency -7 days", "recency", -7.0),
    ("recency +30 days", "recency", 30.0),
    ("recency -30 days", "recency", -30.0),
)
"""(name, feature, size) of each input perturbation the trainer measures."""


def perturbed(raw: FloatArray, feature: str, size: float, rng: np.random.Generator) -> FloatArray:
    """`raw` (recency, frequency, monetary rows) with one perturbation applied."""
    out = raw.copy()
    if feature == "monetary":
        out[:, 2] *= 1.0 + rng.uniform(-size, size, len(raw))
    else:
        out[:, 0] = np.maximum(out[:, 0] + size, 0.0)
    return out


def moved_share(before: IntArray, after: IntArray) -> float:
    """Share of customers whose segment differs."""
    return float(np.mean(before != after)) if len(before) else 0.0


def fragile(sensitivity: dict[str, float]) -> bool:
    """Whether `FRAGILE_NOISE` monetary noise moves more than `FRAGILE_SHARE` of customers."""
    return sensitivity.get(FRAGILE_PERTURBATION, 0.0) > FRAGILE_SHARE


def strong_correlations(embedded: FloatArray, names: tuple[str, ...]) -> dict[str, float]:
    """Pearson correlation of each pair of transformed features, as ``a~b``."""
    if len(embedded) < 3:
        return {}
    matrix: FloatArray = np.atleast_2d(np.corrcoef(embedded, rowvar=False))
    return {
        f"{names[i]}~{names[j]}": float(np.nan_to_num(matrix[i, j]))
        for i in range(len(names))
        for j in range(i + 1, len(names))
    }
