"""The owned population's feature distribution, kept as histograms updated per scoring.

Drift is measured over every customer a worker owns, not a recent sample:
with more customers than any window, recently active ones dominate a window
and recency reads as drifted when nothing changed. Each customer contributes
what its last evaluation found, ``(as_of, recency, frequency, monetary)``,
held in per-partition histograms:

- the hour of the last purchase (``as_of - recency``), so recency can be
  re-evaluated at the partition's clock whenever drift is measured (to within
  half an hour, far below the width of any reference bin);
- frequency and monetary in the model's reference bins.

A re-evaluation takes the previous contribution out and puts the new one in;
the contribution is a pure function of the stored ``(as_of, vector)``, so a
histogram rebuilt from restored records equals the incrementally kept one.
Like the trainer's reference, every customer with a purchase counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scoring.rfm import MICROS_PER_DAY

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
HOUR_MICROS = 3_600 * 1_000_000


def last_purchase_hours(as_of_micros: IntArray, recency_days: FloatArray) -> IntArray:
    """Hour number (since the epoch) of each last purchase, from an evaluation's values."""
    micros = as_of_micros.astype(np.float64) - recency_days * MICROS_PER_DAY
    hours: IntArray = np.floor(micros / HOUR_MICROS).astype(np.int64)
    return hours


def _bins(values: FloatArray, edges: Sequence[float]) -> IntArray:
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    index: IntArray = np.searchsorted(inner, values, side="right").astype(np.int64)
    return index


class _Hours:
    """Counts per hour number, in a dense array that grows at either end."""

    def __init__(self) -> None:
        self.base = 0
        self.counts: IntArray = np.zeros(0, dtype=np.int64)

    def add(self, hours: IntArray, sign: int) -> None:
        if not len(hours):
            return
        low, high = int(hours.min()), int(hours.max())
        if not len(self.counts):
            self.base = low
            self.counts = np.zeros(high - low + 1, dtype=np.int64)
        if low < self.base or high >= self.base + len(self.counts):
            start = min(low, self.base)
            end = max(high + 1, self.base + len(self.counts))
            grown = np.zeros(end - start, dtype=np.int64)
            grown[self.base - start : self.base - start + len(self.counts)] = self.counts
            self.base, self.counts = start, grown
        np.add.at(self.counts, hours - self.base, sign)


@dataclass
class _Partition:
    hours: _Hours
    frequency: IntArray
    monetary: IntArray
    customers: int = 0


@dataclass(frozen=True)
class PopulationCounts:
    """Counts per reference bin of each feature over the population, at given clocks."""

    recency: IntArray
    frequency: IntArray
    monetary: IntArray
    customers: int


class PopulationHistogram:
    """Per-partition histograms of every customer's latest evaluation.

    >>> from scoring.rfm import MICROS_PER_DAY
    >>> h = PopulationHistogram([0.0, 10.0, 100.0], [0.0, 2.0, 9.0], [0.0, 50.0, 900.0])
    >>> day = 20_000 * MICROS_PER_DAY
    >>> h.update(0, None, None, np.array([day]), np.array([[1.0, 3.0, 40.0]]))
    >>> c = h.counts({0: day + 30 * MICROS_PER_DAY})   # recency is now 31 days
    >>> c.recency.tolist(), c.frequency.tolist(), c.monetary.tolist(), c.customers
    ([0, 1], [0, 1], [1, 0], 1)
    """

    def __init__(
        self,
        recency_edges: Sequence[float],
        frequency_edges: Sequence[float],
        monetary_edges: Sequence[float],
    ) -> None:
        self.recency_edges = tuple(recency_edges)
        self.frequency_edges = tuple(frequency_edges)
        self.monetary_edges = tuple(monetary_edges)
        self._partitions: dict[int, _Partition] = {}

    def _partition(self, partition: int) -> _Partition:
        held = self._partitions.get(partition)
        if held is None:
            held = _Partition(
                _Hours(),
                np.zeros(len(self.frequency_edges) - 1, dtype=np.int64),
                np.zeros(len(self.monetary_edges) - 1, dtype=np.int64),
            )
            self._partitions[partition] = held
        return held

    def _apply(self, held: _Partition, as_of: IntArray, raw: FloatArray, sign: int) -> None:
        held.hours.add(last_purchase_hours(as_of, raw[:, 0]), sign)
        np.add.at(held.frequency, _bins(raw[:, 1], self.frequency_edges), sign)
        np.add.at(held.monetary, _bins(raw[:, 2], self.monetary_edges), sign)
        held.customers += sign * len(raw)

    def update(
        self,
        partition: int,
        before_as_of: IntArray | None,
        before: FloatArray | None,
        as_of: IntArray,
        raw: FloatArray,
    ) -> None:
        """Replace the contributions `before` (None: new customers) by the new ones.

        Times are integer microseconds since the epoch; `raw` rows are
        (recency_days, frequency, monetary) as evaluated at `as_of`.
        """
        held = self._partition(partition)
        if before is not None and before_as_of is not None and len(before):
            self._apply(held, before_as_of, before, -1)
        if len(raw):
            self._apply(held, as_of, raw, +1)

    def rebuild(self, partition: int, as_of: IntArray, raw: FloatArray) -> None:
        """Start a partition afresh from its customers' evaluations (as `update` takes them)."""
        self._partitions.pop(partition, None)
        held = self._partition(partition)
        if len(raw):
            self._apply(held, as_of, raw, +1)

    def drop(self, partition: int) -> None:
        """Forget a partition this worker no longer owns."""
        self._partitions.pop(partition, None)

    def partitions(self) -> set[int]:
        """Partitions held."""
        return set(self._partitions)

    def counts(self, clocks: Mapping[int, int]) -> PopulationCounts:
        """Counts per reference bin over the partitions with a clock (epoch microseconds).

        Recency is each customer's distance from its partition's clock, from
        the midpoint of the last purchase's hour (never negative).
        """
        recency = np.zeros(len(self.recency_edges) - 1, dtype=np.int64)
        frequency = np.zeros(len(self.frequency_edges) - 1, dtype=np.int64)
        monetary = np.zeros(len(self.monetary_edges) - 1, dtype=np.int64)
        customers = 0
        for partition, held in self._partitions.items():
            clock = clocks.get(partition)
            if clock is None or not len(held.hours.counts):
                continue
            hours = held.hours.base + np.arange(len(held.hours.counts), dtype=np.float64)
            days = (clock - (hours + 0.5) * HOUR_MICROS) / MICROS_PER_DAY
            bins = _bins(np.maximum(days, 0.0), self.recency_edges)
            recency += np.bincount(bins, weights=held.hours.counts, minlength=len(recency)).astype(
                np.int64
            )
            frequency += held.frequency
            monetary += held.monetary
            customers += held.customers
        return PopulationCounts(recency, frequency, monetary, customers)
