"""Where every customer of a partition stands, as columns: restoring without decoding.

A partition that a worker takes over (at start, or in a rebalance) needs,
for each customer, only its segment, the model that placed it there, when
it was last evaluated and its features then: enough for the due-time index,
the drift population and the segment populations. Reading those four fields
of each record's changelog form into arrays costs a fraction of decoding
whole records (a million customers: about a second instead of eight).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic_core import from_json

from scoring.customer_record import RECORD_FORMAT

_NONE = -1


@dataclass(frozen=True)
class Standings:
    """Columns over a partition's customers (``-1`` and NaN: none yet).

    >>> record = (b'{"f":1,"p":0,"w":365,"lp":5,"d":[],"s":[],"seg":2,"mv":1,'
    ...           b'"at":86400000000,"v":[1.5,2,30.0]}')
    >>> standings = Standings.of_records([("c1", record)])
    >>> standings.keys, standings.segment.tolist(), standings.vectors.tolist()
    (['c1'], [2], [[1.5, 2.0, 30.0]])
    """

    keys: list[str]
    segment: NDArray[np.int64]
    model_version: NDArray[np.int64]
    as_of: NDArray[np.int64]
    """Microseconds since the epoch of the last evaluation."""
    vectors: NDArray[np.float64]
    """(n, 3): recency, frequency, monetary at that evaluation."""

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def evaluated(self) -> NDArray[np.bool_]:
        """Rows with an evaluation (features and a time)."""
        mask: NDArray[np.bool_] = (self.as_of != _NONE) & ~np.isnan(self.vectors[:, 0])
        return mask

    @property
    def assigned(self) -> NDArray[np.bool_]:
        """Rows placed in a segment."""
        mask: NDArray[np.bool_] = self.segment != _NONE
        return mask

    @classmethod
    def of_records(cls, items: Iterable[tuple[str, bytes]]) -> Standings:
        """Read the four fields of each (key, `CustomerRecord.dumps()` bytes)."""
        keys: list[str] = []
        segment: list[int] = []
        version: list[int] = []
        as_of: list[int] = []
        vectors: list[tuple[float, float, float]] = []
        missing = (np.nan, np.nan, np.nan)
        for key, data in items:
            body = from_json(data)
            if body.get("f") != RECORD_FORMAT:
                raise ValueError(f"record of {key!r}: unknown format {body.get('f')!r}")
            keys.append(key)
            seg, mv, at, vector = body["seg"], body["mv"], body["at"], body["v"]
            segment.append(_NONE if seg is None else seg)
            version.append(_NONE if mv is None else mv)
            as_of.append(_NONE if at is None else at)
            vectors.append(missing if vector is None else vector)
        return cls(
            keys,
            np.asarray(segment, dtype=np.int64),
            np.asarray(version, dtype=np.int64),
            np.asarray(as_of, dtype=np.int64),
            np.asarray(vectors, dtype=np.float64).reshape(-1, 3),
        )
