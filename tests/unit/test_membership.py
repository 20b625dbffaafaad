"""Soft membership, boundary confidence and the trainer's calibration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from schemas import load_segment_model
from scoring.membership import confidence, fit_temperature, membership

distances = arrays(
    np.float64, st.tuples(st.integers(1, 20), st.integers(2, 7)),
    elements=st.floats(0.0, 50.0, allow_nan=False),
)  # fmt: skip


@given(distances, st.floats(0.01, 100.0))
def test_scores_sum_to_one_and_the_nearest_scores_highest(d: np.ndarray, t: float) -> None:
    scores = membership(d, t)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-9)
    assert ((scores >= 0) & (scores <= 1)).all()
    top = scores.max(axis=1)
    nearest = scores[np.arange(len(d)), d.argmin(axis=1)]
    np.testing.assert_allclose(nearest, top)


@given(distances)
def test_confidence_is_the_relative_margin_in_unit_range(d: np.ndarray) -> None:
    margin = confidence(d)
    assert ((margin >= 0) & (margin <= 1)).all()
    ordered = np.sort(d, axis=1)
    on_boundary = ordered[:, 0] == ordered[:, 1]
    assert (margin[on_boundary] == 0).all()


def test_temperature_must_be_positive() -> None:
    with pytest.raises(ValueError, match="temperature"):
        membership(np.ones((1, 2)), 0.0)


def test_the_fitted_temperature_recovers_the_one_the_kept_shares_came_from() -> None:
    rng = np.random.default_rng(3)
    d = rng.uniform(0.0, 3.0, size=(2000, 4))
    truth = 0.7
    kept = membership(d, truth).max(axis=1)
    fitted, error = fit_temperature(d, kept)
    assert fitted == pytest.approx(truth, rel=0.02)
    assert error < 0.005


def test_the_trainer_records_the_calibration_and_boundary_shares(trained_cdnow: bytes) -> None:
    model = load_segment_model(trained_cdnow)
    assert model.membership is not None
    assert model.membership.temperature > 0
    assert model.membership.customers == model.n_customers
    assert 0 <= model.membership.calibration_error < 0.2
    assert model.temperature == model.membership.temperature
    for segment in model.segments:
        assert segment.profile is not None and segment.profile.boundary_share is not None
        assert 0 <= segment.profile.boundary_share <= 1
