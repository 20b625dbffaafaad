"""The live feature distribution: the latest features of recently scored customers.

Each customer appears once, with the features of its latest scoring; when the
window is full the customer scored longest ago makes room. Recency is stored
as the day of the last purchase and re-evaluated at the partition's current
watermark, so a customer scored a week ago counts with today's recency.
Customers whose last purchase has left the RFM window are left out, as the
trainer leaves them out of the reference.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class FeatureWindow:
    """At most `capacity` customers' (last purchase day, frequency, monetary).

    >>> window = FeatureWindow(capacity=2, window_days=365)
    >>> window.update(0, ["a"], np.array([[100.0, 3.0, 50.0]]))
    >>> window.update(0, ["b"], np.array([[101.0, 1.0, 9.0]]))
    >>> window.update(0, ["c"], np.array([[102.0, 2.0, 20.0]]))
    >>> window.features({0: 110.0}).tolist()   # "a" was scored longest ago
    [[9.0, 1.0, 9.0], [8.0, 2.0, 20.0]]
    """

    def __init__(self, capacity: int, window_days: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.window_days = window_days
        self._rows: OrderedDict[str, int] = OrderedDict()
        self._free: list[int] = []
        self._data = np.zeros((capacity, 3), dtype=np.float64)
        self._partition = np.full(capacity, -1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._rows)

    def update(self, partition: int, keys: list[str], rows: FloatArray) -> None:
        """Record scored customers: `rows` hold (last purchase day, frequency, monetary)."""
        for key, values in zip(keys, rows, strict=True):
            row = self._rows.pop(key, None)
            if row is None:
                row = self._take_row()
            self._rows[key] = row
            self._data[row] = values
            self._partition[row] = partition

    def _take_row(self) -> int:
        if self._free:
            return self._free.pop()
        if len(self._rows) < self.capacity:
            return len(self._rows)
        _, row = self._rows.popitem(last=False)
        return row

    def drop_partition(self, partition: int) -> None:
        """Forget the customers of a partition this worker no longer owns."""
        for key in [k for k, row in self._rows.items() if self._partition[row] == partition]:
            row = self._rows.pop(key)
            self._partition[row] = -1
            self._free.append(row)

    def clear(self) -> None:
        """Forget everyone (a new model brings a new reference)."""
        self._rows.clear()
        self._free.clear()
        self._partition[:] = -1

    def features(self, watermark_days: Mapping[int, float]) -> FloatArray:
        """(recency, frequency, monetary) per customer in the window, at the watermarks.

        Partitions without a watermark, and customers whose last purchase is
        older than the RFM window at their partition's watermark, are left out.
        """
        if not self._rows:
            return np.zeros((0, 3), dtype=np.float64)
        rows = np.fromiter(self._rows.values(), dtype=np.int64, count=len(self._rows))
        partitions = self._partition[rows]
        lookup = np.full(int(partitions.max()) + 1, np.nan, dtype=np.float64)
        for partition, day in watermark_days.items():
            if 0 <= partition < len(lookup):
                lookup[partition] = day
        clock = lookup[partitions]
        data = self._data[rows]
        recency = np.maximum(clock - data[:, 0], 0.0)
        keep = np.isfinite(clock) & (recency <= self.window_days)
        out: FloatArray = np.column_stack([recency, data[:, 1], data[:, 2]])[keep]
        return out
