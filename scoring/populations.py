"""How many customers each segment holds, how many are the holdout group, and, with
a predictive model, how many are in each churn-risk band and their mean p_alive.

Per owned partition, kept from where customers stand when a partition is
restored (`set_partition`), moved by every segment change (`moved`) and by
every evaluation with traits (`rescored`). The worker's state owns it;
``/segments`` answers from it and the metrics publish it
(``rescorer_segment_population``, ``rescorer_segment_holdout_population``,
``rescorer_segment_risk_band_population``, ``rescorer_segment_p_alive_sum``).
Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from schemas.segments import SegmentChange
from scoring.holdout import HoldoutPolicy
from scoring.live_traits import TraitRows
from scoring.standings import Standings


class Populations:
    """Customers and holdout customers per segment id, per owned partition.

    >>> populations = Populations(HoldoutPolicy())
    >>> from scoring.standings import Standings
    >>> populations.set_partition(0, Standings(["a", "b"], np.array([1, 2]), np.array([1, 1]),
    ...                                        np.array([5, 5]), np.zeros((2, 3))))
    >>> dict(populations.totals()[0])
    {1: 1, 2: 1}
    >>> populations.moved([], {})
    False
    """

    def __init__(self, holdout: HoldoutPolicy) -> None:
        self.holdout = holdout
        self._customers: dict[int, Counter[int]] = {}
        self._held: dict[int, Counter[int]] = {}
        self._bands: dict[int, Counter[tuple[int, int]]] = {}
        """Partition -> (segment id, band code) -> customers with traits there."""
        self._alive: dict[int, Counter[int]] = {}
        """Partition -> segment id -> sum of those customers' p_alive."""

    def set_partition(self, partition: int, standings: Standings) -> None:
        """A restored partition's populations, from where its customers stand."""
        assigned = standings.assigned
        segments = standings.segment[assigned]
        values, counts = np.unique(segments, return_counts=True)
        self._customers[partition] = Counter(
            dict(zip(values.tolist(), counts.tolist(), strict=True))
        )
        held: Counter[int] = Counter()
        if self.holdout.enabled:
            keys = standings.keys
            for row, segment in zip(
                np.flatnonzero(assigned).tolist(), segments.tolist(), strict=True
            ):
                if self.holdout.is_holdout(keys[row], segment):
                    held[segment] += 1
        self._held[partition] = held
        banded = assigned & (standings.bands >= 0)
        self._bands[partition], self._alive[partition] = Counter(), Counter()
        self._shift(
            partition, standings.segment[banded], standings.bands[banded],
            standings.alive[banded], 1,
        )  # fmt: skip

    def rescored(self, found: TraitRows, segment_ids: np.ndarray, partitions: np.ndarray) -> None:
        """Move evaluated customers between (segment, band) cells: from where their records
        stood (`found.before_*`) to `segment_ids` and `found.band`; `partitions` per row.

        The p_alive added is the record's 32-bit copy, so that a restore finds the same sums.
        """
        alive = found.traits.p_alive.astype(np.float32).astype(np.float64)
        had = found.before_segment >= 0
        self._count(
            np.concatenate([partitions[had], partitions]),
            np.concatenate([found.before_segment[had], segment_ids]),
            np.concatenate([found.before_band[had], found.band]),
            np.concatenate([found.before_alive[had], alive]),
            np.concatenate([np.full(int(had.sum()), -1), np.ones(len(partitions), np.int64)]),
        )

    def _shift(
        self,
        partition: int,
        segments: np.ndarray,
        bands: np.ndarray,
        alive: np.ndarray,
        sign: int,
    ) -> None:
        n = len(segments)
        self._count(np.full(n, partition), segments, bands, alive, np.full(n, sign))

    def _count(
        self,
        partitions: np.ndarray,
        segments: np.ndarray,
        bands: np.ndarray,
        alive: np.ndarray,
        signs: np.ndarray,
    ) -> None:
        """Add `signs` customers (and their signed p_alive) to each row's
        (partition, segment, band) cell, grouped in one pass."""
        if not len(segments):
            return
        # Codes from 0: segment ids and bands from -1 (none), bands up to 2.
        partitions = partitions.astype(np.int64)
        segment_codes, band_codes = segments.astype(np.int64) + 1, bands.astype(np.int64) + 1
        width = int(segment_codes.max()) + 1
        cell_keys, inverse = np.unique(
            (partitions * width + segment_codes) * 4 + band_codes, return_inverse=True
        )
        inverse = inverse.reshape(-1)
        counts = np.bincount(inverse, weights=signs, minlength=len(cell_keys))
        sums = np.bincount(inverse, weights=signs * alive, minlength=len(cell_keys))
        for key, n, total in zip(cell_keys.tolist(), counts.tolist(), sums.tolist(), strict=True):
            partition_segment, band = divmod(key, 4)
            partition, segment = divmod(partition_segment, width)
            segment -= 1
            self._bands.setdefault(partition, Counter())[(segment, band - 1)] += int(n)
            self._alive.setdefault(partition, Counter())[segment] += total

    def drop_partition(self, partition: int) -> None:
        """Forget a partition this worker no longer owns."""
        self._customers.pop(partition, None)
        self._held.pop(partition, None)
        self._bands.pop(partition, None)
        self._alive.pop(partition, None)

    def moved(self, changes: Iterable[SegmentChange], partition_of: Mapping[str, int]) -> bool:
        """Move the customers of `changes` between segments; whether any moved."""
        any_moved = False
        for change in changes:
            any_moved = True
            partition = partition_of.get(change.customer_id, -1)
            customers = self._customers.setdefault(partition, Counter())
            held = self._held.setdefault(partition, Counter())
            before = change.previous_segment_id
            if before is not None:
                customers[before] -= 1
                if self.holdout.is_holdout(change.customer_id, before):
                    held[before] -= 1
            customers[change.segment_id] += 1
            if change.holdout:
                held[change.segment_id] += 1
        return any_moved

    def totals(self) -> tuple[Counter[int], Counter[int]]:
        """(customers, customers held out) per segment id over the owned partitions."""
        customers: Counter[int] = Counter()
        held: Counter[int] = Counter()
        for counts in self._customers.values():
            customers.update(counts)
        for counts in self._held.values():
            held.update(counts)
        return customers, held

    def bands(self) -> tuple[Counter[tuple[int, int]], Counter[int]]:
        """(customers per (segment id, band code), sum of their p_alive per segment id) over
        the owned partitions, for the customers with traits."""
        cells: Counter[tuple[int, int]] = Counter()
        sums: Counter[int] = Counter()
        for counts in self._bands.values():
            cells.update(counts)
        for totals in self._alive.values():
            sums.update(totals)
        cells = +cells
        return cells, Counter({s: v for s, v in sums.items() if any(c[0] == s for c in cells)})
