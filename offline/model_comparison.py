"""Should a retrained candidate replace the active model? Quality gates.

Both models are scored on the same customers: the candidate's validation
sample of today's features, each model in its own standardised space, each
customer assigned to its nearest centroid. A candidate is promoted only when
it separates today's customers at least as well as the active model does
(silhouette, Davies-Bouldin, within tolerances) and is stable under
resampling (bootstrap ARI). When people have said where customers belong
(``segment-feedback``), a candidate that agrees with clearly less of it than
the active model is refused too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from numpy.typing import NDArray

from offline.quality_gates import QualityGates
from offline.validation import internal_metrics
from schemas.feedback import SegmentFeedback
from schemas.model import SegmentModel
from schemas.segments import FEATURE_NAMES
from scoring.space import ModelSpace

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Scores:
    """Cluster quality of one model on the shared customers."""

    silhouette: float
    davies_bouldin: float
    segments_used: int


@dataclass
class Verdict:
    """The comparison, gate by gate, and what it means."""

    active: Scores | None
    candidate: Scores
    bootstrap_ari: float | None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the candidate may be promoted."""
        return not self.failures


def scores_on(model: SegmentModel, raw: FloatArray) -> Scores:
    """Silhouette and Davies-Bouldin of `model`'s nearest-centroid assignment of `raw`."""
    space = ModelSpace.from_model(model)
    labels = space.nearest(raw)
    used = len(np.unique(labels))
    if used < 2:  # everyone in one segment: the model no longer separates anyone
        return Scores(silhouette=-1.0, davies_bouldin=float("inf"), segments_used=used)
    metrics = internal_metrics(space.embed(raw), labels)
    return Scores(metrics.silhouette, metrics.davies_bouldin, used)


def compare(
    candidate: SegmentModel,
    active: SegmentModel | None,
    raw: FloatArray,
    gates: QualityGates,
) -> Verdict:
    """Score both models on `raw` (RFM rows) and apply the gates."""
    mine = scores_on(candidate, raw)
    theirs = scores_on(active, raw) if active is not None else None
    stability = candidate.validation.bootstrap_ari
    verdict = Verdict(theirs, mine, stability)
    if theirs is not None:
        if mine.silhouette < theirs.silhouette - gates.max_silhouette_drop:
            verdict.failures.append(
                f"silhouette {mine.silhouette:.3f} is below the active model's "
                f"{theirs.silhouette:.3f} by more than {gates.max_silhouette_drop}"
            )
        if mine.davies_bouldin > theirs.davies_bouldin + gates.max_davies_bouldin_rise:
            verdict.failures.append(
                f"Davies-Bouldin {mine.davies_bouldin:.3f} is above the active model's "
                f"{theirs.davies_bouldin:.3f} by more than {gates.max_davies_bouldin_rise}"
            )
    if stability is not None and stability < gates.min_bootstrap_ari:
        verdict.failures.append(
            f"bootstrap ARI {stability:.3f} is below {gates.min_bootstrap_ari} (unstable segments)"
        )
    return verdict


@dataclass(frozen=True)
class FeedbackAgreement:
    """How much of the feedback each model agrees with, on the same customers."""

    records: int
    """Feedback records whose customer is among today's customers."""
    candidate: float
    active: float | None


def feedback_agreement(
    candidate: SegmentModel,
    active: SegmentModel | None,
    raw: FloatArray,
    proposed: NDArray[np.int64],
) -> FeedbackAgreement:
    """Share of feedback (row `i`: a customer's features, the segment id proposed for
    it) that each model's nearest-centroid assignment agrees with."""

    def share(model: SegmentModel) -> float:
        if not len(raw):
            return float("nan")
        ids = np.asarray([s.segment_id for s in model.segments], dtype=np.int64)
        assigned = ids[ModelSpace.from_model(model).nearest(raw)]
        return float(np.mean(assigned == proposed))

    return FeedbackAgreement(
        len(raw), share(candidate), share(active) if active is not None else None
    )


def feedback_gate(
    agreement: FeedbackAgreement, max_drop: float, min_records: int = 50
) -> str | None:
    """Why the candidate fails the feedback gate, or None.

    >>> print(feedback_gate(FeedbackAgreement(60, 0.50, 0.70), 0.05))
    agrees with 50.0% of 60 feedback records, below the active model's 70.0% by more than 0.05
    >>> feedback_gate(FeedbackAgreement(10, 0.10, 0.90), 0.05) is None  # too little feedback
    True
    """
    if agreement.active is None or agreement.records < min_records:
        return None
    if agreement.candidate < agreement.active - max_drop:
        return (
            f"agrees with {agreement.candidate:.1%} of {agreement.records} feedback records, "
            f"below the active model's {agreement.active:.1%} by more than {max_drop}"
        )
    return None


def feedback_rows(
    features: pl.DataFrame, feedback: Sequence[SegmentFeedback]
) -> tuple[FloatArray, NDArray[np.int64]]:
    """(RFM rows, proposed segment ids) of the feedback whose customer has features."""
    if not feedback:
        return np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    proposals = pl.DataFrame(
        {
            "customer_id": [f.customer_id for f in feedback],
            "proposed": [f.proposed_segment_id for f in feedback],
        },
        schema={"customer_id": pl.String, "proposed": pl.Int64},
    )
    joined = features.join(proposals, on="customer_id", how="inner")
    raw = joined.select(FEATURE_NAMES).to_numpy().astype(np.float64)
    return raw, joined["proposed"].to_numpy().astype(np.int64)
