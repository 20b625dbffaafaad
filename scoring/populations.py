"""How many customers each segment holds, and how many of them are the holdout group.

Per owned partition, kept from where customers stand when a partition is
restored (`set_partition`) and moved by every segment change (`moved`). The
worker's state owns it; ``/segments`` answers from it and the metrics
publish it (``rescorer_segment_population``,
``rescorer_segment_holdout_population``). Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from schemas.segments import SegmentChange
from scoring.holdout import HoldoutPolicy
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

    def drop_partition(self, partition: int) -> None:
        """Forget a partition this worker no longer owns."""
        self._customers.pop(partition, None)
        self._held.pop(partition, None)

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
