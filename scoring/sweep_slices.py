"""The sweep in bounded slices, so re-scoring silent customers never stalls event batches.

A model swap or a jump of the clock can make a whole population due at once;
re-scoring it in one go would hold the worker for seconds. A slice instead
re-scores due customers in rounds: each round takes an equal share of a
chunk from every partition (earliest due first within each) and scores them
in one vectorised pass, and rounds go on until the slice's time budget is
spent. The caller interleaves slices with event batches. Coverage is
unchanged: every due customer is re-scored, as long as the slices keep up;
when they do not, the backlog shows as overdue customers
(``rescorer_sweep_overdue_customers``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from scoring.reassignment import RecordLookup, Rescorer, RescoreResult

DEFAULT_BUDGET_SECONDS = 0.01
DEFAULT_CHUNK = 128


class SweepSlicer:
    """Runs sweep rounds for at most `budget_seconds` per slice (plus one round)."""

    def __init__(
        self,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
        chunk: int = DEFAULT_CHUNK,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if budget_seconds <= 0 or chunk < 1:
            raise ValueError("a sweep slice needs a positive budget and chunk")
        self.budget_seconds = budget_seconds
        self.chunk = chunk
        self.clock = clock

    def pending(self, rescorer: Rescorer, partitions: Sequence[int], now: datetime) -> bool:
        """Whether any of `partitions` has customers due."""
        return any(rescorer.has_due(p, now) for p in partitions)

    def run(
        self,
        rescorer: Rescorer,
        partitions: Sequence[int],
        lookup: RecordLookup,
        now: datetime | None,
        budget_seconds: float | None = None,
        chunk: int | None = None,
    ) -> RescoreResult:
        """One slice: rounds over the due customers of `partitions` until the budget is spent.

        `budget_seconds` narrows the slice's budget for this call, and `chunk` its
        rounds (neither ever widens): a slice ends at most one round past its
        budget, so a slice next to an event batch takes short rounds.
        """
        result = RescoreResult()
        if not partitions or now is None:
            return result
        budget = self.budget_seconds
        if budget_seconds is not None:
            budget = min(budget, budget_seconds)
        size = self.chunk if chunk is None else max(1, min(self.chunk, chunk))
        ordered = sorted(partitions)
        share = max(1, size // len(ordered))
        started = self.clock()
        while self.clock() - started < budget:
            round_ = rescorer.sweep_round(ordered, lookup, now, share)
            if not round_.swept and not self.pending(rescorer, ordered, now):
                break
            result.extend(round_)
        return result
