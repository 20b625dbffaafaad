"""Sweep slices: bounded by their budget, fair across partitions, covering every due customer."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from schemas import CustomerEvent, EventType
from scoring.customer_record import CustomerRecord
from scoring.reassignment import RescoreConfig, Rescorer
from scoring.sweep_slices import SweepSlicer
from tests.support.toy_model import toy_model

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


class TickingClock:
    """A clock that advances by `step` every time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def loaded(
    customers_per_partition: int, partitions: int
) -> tuple[Rescorer, dict[str, CustomerRecord]]:
    """A rescorer whose every customer is due (as after a model swap)."""
    rescorer = Rescorer(toy_model(), RescoreConfig(learning_rate=0.0))
    records: dict[str, CustomerRecord] = {}
    for p in range(partitions):
        batch = [
            (p, CustomerEvent(event_id=f"e{p}-{i}", customer_id=f"c{p}-{i}",
                              type=EventType.PURCHASE, occurred_at=T0 - timedelta(hours=i),
                              amount=10.0 + i))
            for i in range(customers_per_partition)
        ]  # fmt: skip
        records.update(rescorer.process(batch, lambda k, _: records.get(k), T0).records)
        rescorer.shard(p).due.reschedule_all(0)
    return rescorer, records


def served(result: object) -> Counter[int]:
    """Customers re-scored per partition by one slice."""
    counts: Counter[int] = Counter()
    for evaluation in result.evaluations:  # type: ignore[attr-defined]
        for slot, partition in enumerate(evaluation.partitions):
            counts[partition] += int(evaluation.rows_of(slot).sum())
    return counts


def test_a_slice_stops_at_its_budget_and_every_round_serves_every_partition_alike() -> None:
    rescorer, records = loaded(40, 3)
    # The clock advances one unit per read and is read once per round:
    # a budget of 2.5 units allows two rounds of 10 customers per partition.
    slicer = SweepSlicer(budget_seconds=2.5, chunk=30, clock=TickingClock(1.0))
    slices = [
        served(slicer.run(rescorer, [0, 1, 2], lambda k, _: records.get(k), T0)) for _ in range(3)
    ]
    assert slices[0] == {0: 20, 1: 20, 2: 20}
    assert slices[1] == {0: 20, 1: 20, 2: 20}
    assert slices[2] == {}  # nothing left: the slice ends at once


def test_repeated_slices_sweep_every_due_customer_exactly_once() -> None:
    rescorer, records = loaded(500, 4)
    slicer = SweepSlicer(budget_seconds=0.005, chunk=64)
    total: Counter[int] = Counter()
    slices = 0
    while slicer.pending(rescorer, [0, 1, 2, 3], T0):
        total += served(slicer.run(rescorer, [0, 1, 2, 3], lambda k, _: records.get(k), T0))
        slices += 1
        assert slices < 10_000
    assert total == {0: 500, 1: 500, 2: 500, 3: 500}
    for p in range(4):  # everyone is scheduled again, in the future
        due = rescorer.shard(p).due
        assert len(due) == 500 and (due.next_due() or 0) > int(T0.timestamp() * 1e6)


def test_nothing_due_or_no_clock_means_an_empty_slice() -> None:
    rescorer = Rescorer(toy_model())
    slicer = SweepSlicer()
    assert not slicer.pending(rescorer, [0, 1], T0)
    assert slicer.run(rescorer, [0, 1], lambda k, _: None, T0).swept == 0
    assert slicer.run(rescorer, [], lambda k, _: None, T0).swept == 0
    with pytest.raises(ValueError, match="positive"):
        SweepSlicer(budget_seconds=0)


def test_a_slice_next_to_a_batch_takes_shorter_rounds_never_longer_ones() -> None:
    rescorer, records = loaded(40, 3)
    slicer = SweepSlicer(budget_seconds=2.5, chunk=30, clock=TickingClock(1.0))
    short = served(slicer.run(rescorer, [0, 1, 2], lambda k, _: records.get(k), T0, chunk=6))
    assert short == {0: 4, 1: 4, 2: 4}  # two rounds of 2 per partition
    wider = served(slicer.run(rescorer, [0, 1, 2], lambda k, _: records.get(k), T0, chunk=300))
    assert wider == {0: 20, 1: 20, 2: 20}  # the slicer's own chunk of 30 still bounds a round
