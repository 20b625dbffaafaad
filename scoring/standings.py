"""Where every customer of a partition stands, as columns: restoring without decoding.

A partition that a worker takes over (at start, or in a rebalance) needs,
for each customer, only its segment, the model that placed it there, when
it was last evaluated and its features, risk band and probability alive
then: enough for the due-time index, the drift population and the segment
and risk-band populations. A record's changelog form
starts with exactly those in a fixed binary head, so a partition's are read
into arrays in one pass over the heads, never decoding whole records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic_core import from_json

from scoring.customer_record import HEAD, HEAD_V2, RECORD_FORMAT

_NONE = -1


@dataclass(frozen=True)
class Standings:
    """Columns over a partition's customers (``-1`` and NaN: none yet).

    >>> from datetime import UTC, datetime
    >>> from scoring.customer_record import CustomerRecord
    >>> from scoring.customer_state import CustomerState
    >>> record = CustomerRecord(CustomerState(365), 0, 2, 1, datetime(2025, 1, 1, tzinfo=UTC),
    ...                         (1.5, 2, 30.0))
    >>> first = (b'{"f":1,"p":0,"w":365,"lp":5,"d":[],"s":[],"seg":0,"mv":1,'
    ...          b'"at":86400000000,"v":[4.0,1,9.0]}')
    >>> standings = Standings.of_records([("c1", record.dumps()), ("c2", first)])
    >>> standings.keys, standings.segment.tolist(), standings.vectors.tolist()
    (['c1', 'c2'], [2, 0], [[1.5, 2.0, 30.0], [4.0, 1.0, 9.0]])
    """

    keys: list[str]
    segment: NDArray[np.int64]
    model_version: NDArray[np.int64]
    as_of: NDArray[np.int64]
    """Microseconds since the epoch of the last evaluation."""
    vectors: NDArray[np.float64]
    """(n, 3): recency, frequency, monetary at that evaluation."""
    band: NDArray[np.int64] | None = None
    """Risk band code then (`scoring.customer_record.BANDS`), -1 without traits; None: all -1."""
    p_alive: NDArray[np.float64] | None = None
    """Probability alive then, NaN without traits; None: all NaN."""

    @property
    def bands(self) -> NDArray[np.int64]:
        """`band`, with -1 for every row when there is none."""
        return np.full(len(self.keys), _NONE, dtype=np.int64) if self.band is None else self.band

    @property
    def alive(self) -> NDArray[np.float64]:
        """`p_alive`, with NaN for every row when there is none."""
        if self.p_alive is None:
            return np.full(len(self.keys), np.nan)
        return self.p_alive

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
        """Read where each (key, `CustomerRecord.dumps()` bytes) stands."""
        keys: list[str] = []
        values: list[bytes] = []
        for key, data in items:
            keys.append(key)
            values.append(data)
        return cls.of_values(keys, values)

    @classmethod
    def of_values(cls, keys: list[str], values: Sequence[bytes]) -> Standings:
        """Read where each customer stands from its record's bytes (`keys` in the same order).

        Records of the current format are read from their fixed heads, all at
        once; those of format 2 share the head's first fields (the trait
        fields read as none); records of the first (all-JSON) format one by one.
        """
        size = HEAD.size
        heads = b"".join([data[:size] for data in values])
        if len(heads) != size * len(values):
            short = next(k for k, data in zip(keys, values, strict=True) if len(data) < size)
            raise ValueError(f"record of {short!r}: too short, not a record")
        table = np.frombuffer(heads, dtype=_HEAD_DTYPE)
        fmt = table["format"]
        legacy = np.flatnonzero(fmt == _JSON_START).tolist()
        known = (fmt == RECORD_FORMAT) | (fmt == _FORMAT_2) | (fmt == _JSON_START)
        if not bool(known.all()):
            raise ValueError(f"records of unknown format {set(fmt[~known].tolist())}")
        current = fmt == RECORD_FORMAT
        standings = cls(
            keys,
            table["segment"].astype(np.int64),
            table["model_version"].astype(np.int64),
            table["as_of"].astype(np.int64),
            np.column_stack(
                [table["recency"], table["frequency"].astype(np.float64), table["monetary"]]
            ).reshape(-1, 3),
            np.where(current, table["band"].astype(np.int64), _NONE),
            np.where(current, table["p_alive"].astype(np.float64), np.nan),
        )
        for row in legacy:
            standings._set_legacy(row, from_json(values[row]))
        return standings

    def _set_legacy(self, row: int, body: dict[str, Any]) -> None:
        if body.get("f") != 1:
            raise ValueError(f"record of {self.keys[row]!r}: unknown format {body.get('f')!r}")
        seg, mv, at, vector = body["seg"], body["mv"], body["at"], body["v"]
        self.segment[row] = _NONE if seg is None else seg
        self.model_version[row] = _NONE if mv is None else mv
        self.as_of[row] = _NONE if at is None else at
        self.vectors[row] = (np.nan, np.nan, np.nan) if vector is None else vector


_HEAD_DTYPE = np.dtype(
    [("format", "u1"), ("segment", "<i4"), ("model_version", "<i4"), ("as_of", "<i8"),
     ("recency", "<f8"), ("frequency", "<i4"), ("monetary", "<f8"), ("band", "i1"),
     ("p_alive", "<f4"), ("repeat_days", "<i4")]
)  # fmt: skip
assert _HEAD_DTYPE.itemsize == HEAD.size  # noqa: S101 - the two layouts must agree
assert HEAD_V2.size == _HEAD_DTYPE.fields["band"][1]  # type: ignore[index]  # noqa: S101 - format 2 is a prefix
_FORMAT_2 = 2
_JSON_START = ord("{")
"""The first byte of a record of the first format (all JSON)."""
