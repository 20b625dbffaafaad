"""A due-time index: which customers must be re-scored by now, cheaply.

The sweep asks for the customers whose due time has passed, at most ``limit``
at a time, so a tick costs O(limit log n) instead of a scan of every customer.
Re-scheduling a customer leaves its old heap entry behind; stale entries are
skipped when popped and the heap is rebuilt when they outnumber live ones.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

_HOUR = 3_600_000_000  # microseconds


class DueIndex:
    """Customer keys ordered by due time (integer microseconds since the epoch).

    >>> index = DueIndex()
    >>> index.schedule("a", 10); index.schedule("b", 5); index.schedule("a", 20)
    >>> index.pop_due(now=15, limit=10)
    ['b']
    >>> index.pop_due(now=25, limit=10), len(index)
    (['a'], 0)
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._bulk: list[int] = []
        """Due times of a restored partition, sorted (`schedule_many`), read from `_next`."""
        self._bulk_keys: list[str] = []
        self._next = 0
        self._due: dict[str, int] = {}
        self._hours: Counter[int] = Counter()
        """Live keys per hour of due time, for `count_before`."""

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def due_time(self, key: str) -> int | None:
        """When `key` is due, or None when it is not scheduled."""
        return self._due.get(key)

    def schedule(self, key: str, due: int) -> None:
        """(Re)schedule `key`; the latest call wins."""
        old = self._due.get(key)
        if old is not None:
            self._uncount(old)
        self._due[key] = due
        self._hours[due // _HOUR] += 1
        heapq.heappush(self._heap, (due, key))
        if len(self._heap) + len(self._bulk) - self._next > 2 * len(self._due) + 1024:
            self._rebuild()

    def schedule_many(self, keys: Sequence[str], dues: NDArray[np.int64]) -> None:
        """(Re)schedule many keys at once (a restored partition: one sort, no heap).

        Into an empty index they go as one sorted run beside the heap (keys due at
        the same time in no particular order).

        >>> import numpy as np
        >>> index = DueIndex()
        >>> index.schedule_many(["a", "b"], np.array([20, 5]))
        >>> index.pop_due(now=25, limit=10)
        ['b', 'a']
        """
        if self._due:
            for key, due in zip(keys, dues.tolist(), strict=True):
                self.schedule(key, due)
            return
        order = np.argsort(dues, kind="stable")
        ordered = dues[order].tolist()
        ordered_keys = [keys[i] for i in order.tolist()]
        self._due = dict(zip(ordered_keys, ordered, strict=True))
        hours, counts = np.unique(dues // _HOUR, return_counts=True)
        self._hours = Counter(dict(zip(hours.tolist(), counts.tolist(), strict=True)))
        self._heap, self._bulk, self._bulk_keys, self._next = [], ordered, ordered_keys, 0

    def remove(self, key: str) -> None:
        """Forget `key` (its heap entry becomes stale)."""
        old = self._due.pop(key, None)
        if old is not None:
            self._uncount(old)

    def _uncount(self, due: int) -> None:
        hour = due // _HOUR
        left = self._hours[hour] - 1
        if left:
            self._hours[hour] = left
        else:
            del self._hours[hour]

    def _take(self) -> tuple[int, str] | None:
        """The earliest entry (possibly stale) of the heap and the sorted run, removed."""
        heap, bulk = self._heap, self._bulk
        if self._next < len(bulk) and (not heap or bulk[self._next] < heap[0][0]):
            entry = (bulk[self._next], self._bulk_keys[self._next])
            self._next += 1
            if self._next == len(bulk):
                self._bulk, self._bulk_keys, self._next = [], [], 0
            return entry
        return heapq.heappop(heap) if heap else None

    def _peek(self) -> int | None:
        heap, bulk = self._heap, self._bulk
        first = heap[0][0] if heap else None
        if self._next < len(bulk) and (first is None or bulk[self._next] < first):
            return bulk[self._next]
        return first

    def pop_due(self, now: int, limit: int) -> list[str]:
        """Up to `limit` keys due at or before `now`, earliest first, unscheduled."""
        out: list[str] = []
        while len(out) < limit:
            first = self._peek()
            if first is None or first > now:
                break
            entry = self._take()
            assert entry is not None  # noqa: S101 - peeked
            due, key = entry
            if self._due.get(key) == due:
                del self._due[key]
                self._uncount(due)
                out.append(key)
        return out

    def next_due(self) -> int | None:
        """The earliest live due time, or None when empty."""
        while True:
            first = self._peek()
            if first is None:
                return None
            heap = self._heap
            key = heap[0][1] if heap and heap[0][0] == first else self._bulk_keys[self._next]
            if self._due.get(key) == first:
                return first
            self._take()

    def reschedule_all(self, due: int) -> None:
        """Make every scheduled key due at `due` (after a model change)."""
        self._due = dict.fromkeys(self._due, due)
        self._hours = Counter({due // _HOUR: len(self._due)}) if self._due else Counter()
        self._rebuild()

    def count_before(self, when: int) -> int:
        """How many keys are due before `when`, to within an hour (cheap: for metrics).

        Counts keys whose due hour ends at or before `when`: everything due
        more than an hour before it, nothing due after it.
        """
        limit = when // _HOUR
        return sum(n for hour, n in self._hours.items() if hour < limit)

    def keys(self) -> Iterable[str]:
        """Every scheduled key."""
        return self._due.keys()

    def _rebuild(self) -> None:
        self._heap = [(due, key) for key, due in self._due.items()]
        heapq.heapify(self._heap)
        self._bulk, self._bulk_keys, self._next = [], [], 0
