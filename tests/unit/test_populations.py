"""Segment populations: restored per partition, moved by every change, holdout kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.events import CustomerEvent, EventType
from schemas.segments import ChangeReason, RfmFeatures, SegmentChange
from scoring.customer_record import CustomerRecord
from scoring.holdout import HoldoutPolicy
from scoring.populations import Populations
from scoring.reassignment import RescoreConfig, Rescorer, RescoreResult
from scoring.standings import Standings
from tests.support.toy_model import toy_model_with_traits

T = datetime(2025, 1, 1, tzinfo=UTC)


def standings(segments: list[int], prefix: str = "c") -> Standings:
    n = len(segments)
    return Standings(
        [f"{prefix}{i}" for i in range(n)], np.asarray(segments, dtype=np.int64),
        np.ones(n, dtype=np.int64), np.full(n, 5, dtype=np.int64), np.zeros((n, 3)),
    )  # fmt: skip


def change(customer: str, before: int | None, after: int, policy: HoldoutPolicy) -> SegmentChange:
    return SegmentChange(
        customer_id=customer, previous_segment_id=before,
        previous_segment_name=None if before is None else str(before), segment_id=after,
        membership={str(after): 1.0}, confidence=1.0,
        segment_name=str(after), model_version=1, reason=ChangeReason.EVENT,
        features=RfmFeatures(recency_days=1.0, frequency=1, monetary=1.0), as_of=T,
        emitted_at=T, holdout=policy.is_holdout(customer, after),
    )  # fmt: skip


def test_partitions_add_up_and_a_dropped_one_leaves() -> None:
    populations = Populations(HoldoutPolicy())
    populations.set_partition(0, standings([0, 0, 1, -1]))
    populations.set_partition(1, standings([1, 2], prefix="d"))
    customers, held = populations.totals()
    assert +customers == {0: 2, 1: 2, 2: 1} and not +held
    populations.drop_partition(1)
    assert +populations.totals()[0] == {0: 2, 1: 1}


def test_changes_move_customers_and_the_holdout_moves_with_them() -> None:
    policy = HoldoutPolicy(share=0.5, salt="s")
    customers = [f"c{i}" for i in range(200)]
    populations = Populations(policy)
    populations.set_partition(0, standings([0] * 200))
    before_held = populations.totals()[1][0]
    assert before_held == sum(policy.is_holdout(c, 0) for c in customers)
    moved = [change(c, 0, 1, policy) for c in customers[:50]]
    assert populations.moved(moved, dict.fromkeys(customers, 0))
    total, held = populations.totals()
    assert total[0] == 150 and total[1] == 50
    assert held[0] == sum(policy.is_holdout(c, 0) for c in customers[50:])
    assert held[1] == sum(policy.is_holdout(c, 1) for c in customers[:50])
    assert not populations.moved([], {})


def test_band_cells_kept_by_evaluations_equal_a_restore_from_the_records() -> None:
    """Bands and mean p_alive moved evaluation by evaluation (events, the sweep, a
    re-banding as customers fall silent) equal what a restore reads from the records."""
    rescorer = Rescorer(toy_model_with_traits(), RescoreConfig(clock="wall"))
    live = Populations(HoldoutPolicy())
    records: dict[str, CustomerRecord] = {}
    seen: set[int] = set()

    def lookup(key: str, _p: int) -> CustomerRecord | None:
        return records.get(key)

    def observe(result: RescoreResult) -> None:
        for evaluation in result.evaluations:
            assert evaluation.traits is not None and evaluation.segment_ids is not None
            live.rescored(evaluation.traits, evaluation.segment_ids, evaluation.row_partitions)
            records.update(zip(evaluation.keys, evaluation.records, strict=True))
        seen.update(band for _, band in +live.bands()[0])

    start = T + timedelta(hours=12)
    for day in range(0, 120, 3):
        now = start + timedelta(days=day)
        batch = [
            (n % 2, CustomerEvent(event_id=f"e{day}-{n}", customer_id=f"c{n}",
                                  type=EventType.PURCHASE, occurred_at=now, amount=10.0 + n))
            for n in range(12) if (day // 3) % (n + 1) == 0
        ]  # fmt: skip
        observe(rescorer.process(batch, lookup, now))
        observe(rescorer.sweep_round([0, 1], lookup, now, 5))
    for day in range(120, 500, 7):
        observe(rescorer.sweep_round([0, 1], lookup, start + timedelta(days=day), 100))
    restored = Populations(HoldoutPolicy())
    for partition in (0, 1):
        restored.set_partition(
            partition,
            Standings.of_records(
                (k, r.dumps()) for k, r in sorted(records.items()) if r.partition == partition
            ),
        )
    cells, alive = live.bands()
    assert cells == restored.bands()[0] and sum(cells.values()) == 12
    assert seen == {0, 1, 2}  # the customers went through every band
    assert alive.keys() == restored.bands()[1].keys()
    for segment, total in alive.items():
        assert total == pytest.approx(restored.bands()[1][segment], abs=1e-6)
