"""`OnlineCentroids` keeps River's estimator contract."""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from schemas.segments import FEATURE_NAMES
from scoring.online_clusters import OnlineCentroids

BASELINE = [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0], [-1.5, 1.0, 0.5]]
coordinate = st.floats(-5, 5, allow_nan=False, allow_infinity=False)
point = st.tuples(coordinate, coordinate, coordinate).map(
    lambda v: dict(zip(FEATURE_NAMES, v, strict=True))
)


def test_learn_one_returns_none_and_changes_state() -> None:
    model = OnlineCentroids(BASELINE, learning_rate=0.5)
    before = model.centroids().copy()
    assert model.learn_one({"recency_days": 1.0, "frequency": 1.0, "monetary": 1.0}) is None
    assert not np.array_equal(model.centroids(), before)


def test_a_frozen_model_learns_nothing() -> None:
    model = OnlineCentroids(BASELINE, learning_rate=0.0)
    model.learn_one({"recency_days": 1.0, "frequency": 1.0, "monetary": 1.0})
    assert np.array_equal(model.centroids(), np.asarray(BASELINE))


@given(st.lists(point, min_size=1, max_size=20))
def test_predict_one_is_pure(points: list[dict[str, float]]) -> None:
    model = OnlineCentroids(BASELINE, learning_rate=0.3)
    model.learn_one(points[0])
    state = copy.deepcopy(model.checkpoint())
    first = [model.predict_one(x) for x in points]
    assert [model.predict_one(x) for x in points] == first
    assert model.checkpoint() == state


def test_clone_has_the_parameters_but_not_the_learning() -> None:
    model = OnlineCentroids(BASELINE, learning_rate=0.25)
    model.learn_one({"recency_days": 1.0, "frequency": 1.0, "monetary": 1.0})
    fresh = model.clone()
    assert fresh is not model and fresh.learning_rate == 0.25
    assert np.array_equal(fresh.centroids(), np.asarray(BASELINE))


@given(st.lists(point, min_size=1, max_size=30), st.lists(point, min_size=1, max_size=10))
def test_checkpoint_restore_round_trips_into_a_clone(
    learned: list[dict[str, float]], probes: list[dict[str, float]]
) -> None:
    model = OnlineCentroids(BASELINE, learning_rate=0.2)
    for x in learned:
        model.learn_one(x)
    copy_ = model.clone()
    copy_.restore(model.checkpoint())
    assert copy_.checkpoint() == model.checkpoint()
    assert [copy_.predict_one(x) for x in probes] == [model.predict_one(x) for x in probes]
    # And they go on learning alike.
    for x in probes:
        model.learn_one(x)
        copy_.learn_one(x)
    np.testing.assert_allclose(copy_.centroids(), model.centroids())
