"""Should a retrained candidate replace the active model? Quality gates.

Both models are scored on the same customers: the candidate's validation
sample of today's features, each model in its own standardised space, each
customer assigned to its nearest centroid. A candidate is promoted only when
it separates today's customers at least as well as the active model does
(silhouette, Davies-Bouldin, within tolerances) and is stable under
resampling (bootstrap ARI).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from offline.validation import internal_metrics
from schemas.model import SegmentModel
from scoring.space import ModelSpace

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class QualityGates:
    """The rules a candidate must pass; each has a ``rescorer retrain`` flag."""

    max_silhouette_drop: float = 0.02
    max_davies_bouldin_rise: float = 0.10
    min_bootstrap_ari: float = 0.60


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
