"""Stable segment ids across retrains (Hungarian matching on centroid distance)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from schemas.model import SegmentModel
from scoring.space import ModelSpace

FloatArray = NDArray[np.float64]
DEFAULT_MAX_DISTANCE = 1.0
"""Largest distance (standardised units of the new model) at which a segment keeps its id."""


def value_order(scores: FloatArray) -> list[int]:
    """Indices of segments from most to least valuable (sum of R, F, M scores)."""
    return [int(i) for i in np.argsort(-scores.sum(axis=1), kind="stable")]


def assign_ids(
    new_space: ModelSpace,
    scores: FloatArray,
    previous: SegmentModel | None,
    max_distance: float = DEFAULT_MAX_DISTANCE,
) -> tuple[list[int], int]:
    """Ids for the new centroids, and the highest id used so far.

    Without a previous model ids follow value order (0 = most valuable). With
    one, each new segment closest to a previous segment (within `max_distance`,
    compared in the new model's standardised space) inherits its id; the others
    get ids never used before.
    """
    k = len(new_space.centroids)
    if previous is None:
        ordered = [0] * k
        for new_id, index in enumerate(value_order(scores)):
            ordered[index] = new_id
        return ordered, k - 1
    old_space = ModelSpace.from_model(previous)
    old_in_new = new_space.embed(old_space.raw_centroids())
    cost = np.linalg.norm(new_space.centroids[:, None, :] - old_in_new[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    highest = max(int(previous.parameters.get("max_segment_id") or 0), *old_space.segment_ids)
    ids: list[int | None] = [None] * k
    for row, col in zip(rows, cols, strict=True):
        if cost[row, col] <= max_distance:
            ids[row] = old_space.segment_ids[col]
    for index in value_order(scores):
        if ids[index] is None:
            highest += 1
            ids[index] = highest
    return [int(i) for i in ids if i is not None], highest
