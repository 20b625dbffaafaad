"""A hand-made three-segment model whose geometry the tests can reason about.

Standardised coordinates are (recency_days / 30, log1p(frequency), log1p(monetary)).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from schemas.model import ReferenceDistribution, Scaler, Segment, SegmentModel

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
