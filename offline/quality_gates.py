"""The rules a retrained candidate must pass before it is promoted.

Apart from `offline.model_comparison` (which needs scikit-learn) so that the
command line can show the defaults without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualityGates:
    """The rules a candidate must pass; each has a ``rescorer retrain`` flag."""

    max_silhouette_drop: float = 0.02
    max_davies_bouldin_rise: float = 0.10
    min_bootstrap_ari: float = 0.60
    max_feedback_drop: float = 0.05
    min_feedback_records: int = 50
