"""Quality gates of the retrain job: both models scored on the same customers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import polars as pl

from offline.model_comparison import (
    compare,
    feedback_agreement,
    feedback_gate,
    feedback_rows,
    scores_on,
)
from offline.quality_gates import QualityGates
from schemas.feedback import SegmentFeedback
from schemas.model import SegmentModel, ValidationMetrics
from scoring.space import ModelSpace
from tests.support.toy_model import CENTROIDS, toy_model

GATES = QualityGates()


def customers(rng: np.random.Generator, n: int = 600) -> np.ndarray:
    """Raw RFM rows drawn around the toy model's three centroids (standardised units)."""
    centres = np.asarray(CENTROIDS)
    picks = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.15, (n, 3))
    recency = np.clip(picks[:, 0] * 30.0, 0, None)
    return np.column_stack([recency, np.exp(picks[:, 1]), np.exp(picks[:, 2])])


def stable(version: int, centroids: Sequence[Sequence[float]] = CENTROIDS) -> SegmentModel:
    model = toy_model(version=version, centroids=centroids)
    return model.model_copy(update={"validation": ValidationMetrics(bootstrap_ari=0.9)})


def test_a_candidate_that_fits_today_passes_and_a_collapsed_one_fails() -> None:
    raw = customers(np.random.default_rng(0))
    active = stable(1)
    assert compare(stable(2), active, raw, GATES).passed  # as good: promoted
    collapsed = stable(2, ((0.3, 2.0, 6.0), (0.31, 2.0, 6.0), (40.0, 9.0, 9.0)))
    verdict = compare(collapsed, active, raw, GATES)
    assert not verdict.passed
    assert any("silhouette" in f for f in verdict.failures)


def test_an_unstable_candidate_fails_whatever_its_fit() -> None:
    raw = customers(np.random.default_rng(1))
    shaky = stable(2).model_copy(update={"validation": ValidationMetrics(bootstrap_ari=0.3)})
    verdict = compare(shaky, stable(1), raw, GATES)
    assert verdict.failures == ["bootstrap ARI 0.300 is below 0.6 (unstable segments)"]


def test_a_model_that_puts_everyone_in_one_segment_scores_worst() -> None:
    raw = customers(np.random.default_rng(2))[:5]
    lone = scores_on(stable(1, ((0.3, 2.0, 6.0), (90.0, 90.0, 90.0), (95.0, 95.0, 95.0))), raw)
    assert lone.segments_used == 1 and lone.silhouette == -1.0


def test_without_an_active_model_only_stability_is_judged() -> None:
    verdict = compare(stable(1), None, customers(np.random.default_rng(3)), GATES)
    assert verdict.passed and verdict.active is None


def test_feedback_agreement_counts_the_proposals_each_model_matches() -> None:
    raw = customers(np.random.default_rng(2), 200)
    active = stable(1)
    truth = np.asarray([s.segment_id for s in active.segments])[
        ModelSpace.from_model(active).nearest(raw)
    ]
    # The candidate swaps two segments' centroids: it now disagrees wherever they were.
    swapped = stable(2, [CENTROIDS[1], CENTROIDS[0], CENTROIDS[2]])
    agreement = feedback_agreement(swapped, active, raw, truth)
    assert agreement.records == 200 and agreement.active == 1.0
    assert agreement.candidate < 0.9
    failure = feedback_gate(agreement, max_drop=0.05)
    assert failure is not None and "below the active model's 100.0%" in failure
    assert feedback_gate(feedback_agreement(active, active, raw, truth), 0.05) is None
    few = feedback_agreement(swapped, active, raw[:49], truth[:49])
    assert feedback_gate(few, 0.05) is None  # fewer than 50 records: not a gate


def test_feedback_rows_join_the_feedback_to_todays_customers() -> None:
    features = pl.DataFrame(
        {"customer_id": ["a", "b", "c"], "recency_days": [1.0, 2.0, 3.0],
         "frequency": [1, 2, 3], "monetary": [10.0, 20.0, 30.0]}
    )  # fmt: skip
    at = datetime(2025, 1, 1, tzinfo=UTC)
    feedback = [
        SegmentFeedback(customer_id=c, proposed_segment_id=s, given_by="crm", given_at=at)
        for c, s in (("b", 2), ("zz", 1), ("a", 0))
    ]
    raw, proposed = feedback_rows(features, feedback)
    assert sorted(zip(raw[:, 0].tolist(), proposed.tolist(), strict=True)) == [(1.0, 0), (2.0, 2)]
