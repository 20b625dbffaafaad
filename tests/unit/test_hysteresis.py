"""Hysteresis decisions, single and batched, agree and respect the margin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scoring.hysteresis import choose, choose_many


@pytest.mark.parametrize(
    ("distances", "current", "margin", "expected"),
    [
        ([1.0, 0.95], 0, 0.10, 0),  # closer, but not by 10 %: stay
        ([1.0, 0.89], 0, 0.10, 1),  # closer by more than 10 %: move
        ([1.0, 0.90], 0, 0.10, 0),  # exactly the margin: stay
        ([1.0, 0.99], 0, 0.0, 1),  # no margin: nearest wins
        ([1.0, 2.0], None, 0.5, 0),  # unassigned: nearest
        ([3.0, 2.0, 1.0], 1, 0.4, 2),  # 1.0 < 0.6 * 2.0
        ([3.0, 2.0, 1.0], 1, 0.5, 1),  # 1.0 is not below 0.5 * 2.0
        ([3.0, 2.0, 1.0], 1, 0.6, 1),
    ],
)
def test_choose(distances: list[float], current: int | None, margin: float, expected: int) -> None:
    assert choose(np.array(distances), current, margin) == expected


def test_margin_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        choose(np.array([1.0, 2.0]), 0, 1.0)
    with pytest.raises(ValueError, match="margin"):
        choose_many(np.ones((1, 2)), np.array([0]), -0.1)


@given(
    distances=arrays(
        np.float64,
        st.tuples(st.integers(1, 20), st.integers(2, 6)),
        elements=st.floats(0.0, 100.0),
    ),
    data=st.data(),
    margin=st.floats(0.0, 0.9),
)
def test_batched_equals_one_by_one(
    distances: np.ndarray, data: st.DataObject, margin: float
) -> None:
    n, k = distances.shape
    current = np.array(data.draw(st.lists(st.integers(-1, k - 1), min_size=n, max_size=n)))
    batched = choose_many(distances, current, margin)
    for row in range(n):
        now = None if current[row] < 0 else int(current[row])
        assert batched[row] == choose(distances[row], now, margin)


@given(
    distances=arrays(np.float64, st.integers(2, 6), elements=st.floats(0.0, 100.0)),
    margin=st.floats(0.0, 0.9),
)
def test_a_move_always_goes_to_the_nearest_and_staying_is_allowed(
    distances: np.ndarray, margin: float
) -> None:
    for current in range(len(distances)):
        chosen = choose(distances, current, margin)
        assert chosen in (current, int(np.argmin(distances)))
