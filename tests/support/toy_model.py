"""A hand-made three-segment model whose geometry the tests can reason about.

Standardised coordinates are (recency_days / 30, log1p(frequency), log1p(monetary)).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from schemas.model import ReferenceDistribution, Scaler, Segment, SegmentModel
from schemas.traits import QUANTILES, BgNbdFigures, GammaGammaFigures, PurchaseModel

CHAMPIONS, REGULAR, AT_RISK = 0, 1, 2
CENTROIDS = ((0.3, 2.0, 6.0), (1.5, 1.0, 4.5), (6.0, 0.7, 4.0))
NAMES = ("Champions", "Regular", "At Risk")


def toy_model(
    version: int = 1,
    centroids: Sequence[Sequence[float]] = CENTROIDS,
    names: Sequence[str] = NAMES,
    segment_ids: Sequence[int] | None = None,
) -> SegmentModel:
    """A valid artifact with the given centroids (standardised units)."""
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    reference = ReferenceDistribution(bin_edges=(0.0, 1.0, 2.0), proportions=(0.5, 0.5))
    ids = list(segment_ids) if segment_ids is not None else list(range(len(centroids)))
    return SegmentModel(
        version=version,
        created_at=moment,
        as_of=moment,
        training_start=moment,
        training_end=moment,
        n_customers=100,
        n_events=1000,
        scaler=Scaler(mean=(0.0, 0.0, 0.0), scale=(30.0, 1.0, 1.0)),
        segments=tuple(
            Segment(segment_id=i, name=n, centroid=tuple(c))
            for i, n, c in zip(ids, names, centroids, strict=True)
        ),
        reference={
            "recency_days": reference,
            "frequency": reference,
            "monetary": reference,
        },
        package_version="test",
    )


def toy_traits(quantile_top: float = 0.9) -> PurchaseModel:
    """A predictive model with the paper's CDNOW BG/NBD (alpha in days) and churn
    quantiles spread evenly over [0, `quantile_top`]: Medium from 1 - p_alive >= 0.45,
    High from 0.675 (at the default thresholds)."""
    quantiles = tuple(quantile_top * i / (QUANTILES - 1) for i in range(QUANTILES))
    return PurchaseModel(
        bgnbd=BgNbdFigures(
            r=0.243, alpha=4.414 * 7, a=0.793, b=2.426, log_likelihood=-9582.4,
            customers=2357, groups=1000,
        ),
        gamma_gamma=GammaGammaFigures(
            p=6.25, q=3.74, v=15.44, log_likelihood=-4000.0, customers=946,
            frequency_spend_correlation=0.11,
        ),
        churn_quantiles=quantiles,
    )  # fmt: skip


def toy_model_with_traits(version: int = 1) -> SegmentModel:
    """`toy_model` carrying `toy_traits` (schema 4)."""
    return toy_model(version).model_copy(update={"traits": toy_traits(), "schema_version": 4})
