"""Hysteresis: customers near a boundary between two segments do not flap.

A customer leaves their current segment only when another centroid is closer
by a relative margin: ``best < (1 - margin) * current``. With ``margin = 0``
this is plain nearest-centroid assignment, independent of history.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

DEFAULT_MARGIN = 0.10


def check_margin(margin: float) -> float:
    """`margin` if it is a hysteresis margin, in [0, 1); else `ValueError`.

    The one check of the range: the core, the worker's settings and the
    command line's ``--margin`` all call it.

    >>> check_margin(0.1)
    0.1
    >>> check_margin(1.0)
    Traceback (most recent call last):
        ...
    ValueError: margin must be in [0, 1), got 1.0
    """
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    return margin


def choose(distances: NDArray[np.float64], current: int | None, margin: float) -> int:
    """Index of the segment a customer should be in, given distances to every centroid.

    ``current`` is the index of their segment now (None when unassigned or
    when it no longer exists in the model).

    >>> import numpy as np
    >>> choose(np.array([1.0, 0.95]), current=0, margin=0.10)
    0
    >>> choose(np.array([1.0, 0.85]), current=0, margin=0.10)
    1
    >>> choose(np.array([1.0, 0.85]), current=None, margin=0.10)
    1
    """
    check_margin(margin)
    best = int(np.argmin(distances))
    if current is None or best == current:
        return best
    if distances[best] < (1.0 - margin) * distances[current]:
        return best
    return current


def choose_many(
    distances: NDArray[np.float64], current: NDArray[np.int64], margin: float
) -> NDArray[np.int64]:
    """`choose` for a batch: ``distances`` is (n, k), ``current`` holds -1 for unassigned.

    >>> import numpy as np
    >>> choose_many(np.array([[1.0, 0.95], [1.0, 0.85], [0.2, 0.1]]),
    ...             np.array([0, 0, -1]), 0.10).tolist()
    [0, 1, 1]
    """
    check_margin(margin)
    best = np.argmin(distances, axis=1).astype(np.int64)
    rows = np.arange(len(current))
    assigned = current >= 0
    current_distance = np.where(assigned, distances[rows, np.where(assigned, current, 0)], np.inf)
    moves = distances[rows, best] < (1.0 - margin) * current_distance
    result: NDArray[np.int64] = np.where(assigned & ~moves, current, best).astype(np.int64)
    return result
