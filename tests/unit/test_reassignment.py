"""The re-scoring core: first assignment, bursts, silence, duplicates, model swaps, bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import CustomerEvent, EventType
from schemas.segments import FEATURE_NAMES, ChangeReason, SegmentAssignment, SegmentChange
from scoring.customer_record import CustomerRecord
from scoring.online_clusters import OnlineCentroids
from scoring.reassignment import RecordLookup, RescoreConfig, Rescorer
from scoring.standings import Standings
from tests.support.toy_model import AT_RISK, CENTROIDS, CHAMPIONS, REGULAR, toy_model

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
FROZEN = RescoreConfig(margin=0.10, learning_rate=0.0)


def purchase(customer: str, at: datetime, amount: float = 50.0, n: int = 0) -> CustomerEvent:
    return CustomerEvent(
        event_id=f"{customer}-{at.isoformat()}-{n}",
        customer_id=customer,
        type=EventType.PURCHASE,
        occurred_at=at,
        amount=amount,
    )


def purchases_in_time_order(raw: list[tuple[int, int, int]]) -> list[CustomerEvent]:
    """(customer, hours after T0, amount) triples as purchases sorted by event time."""
    return sorted(
        (
            purchase(f"c{c}", T0 + timedelta(hours=h), float(a), n)
            for n, (c, h, a) in enumerate(raw)
        ),
        key=lambda e: e.occurred_at,
    )


def by_key(records: dict[str, CustomerRecord]) -> RecordLookup:
    """A lookup over a plain dict (the partition does not matter)."""

    def lookup(key: str, _partition: int) -> CustomerRecord | None:
        return records.get(key)

    return lookup


class Harness:
    """A rescorer with a dict as its store, persisting records after each call."""

    def __init__(self, config: RescoreConfig = FROZEN) -> None:
        self.rescorer = Rescorer(toy_model(), config)
        self.records: dict[str, CustomerRecord] = {}
        self.changes: list[SegmentChange] = []
        self.assignments: list[SegmentAssignment] = []

    def lookup(self, key: str, _partition: int) -> CustomerRecord | None:
        return self.records.get(key)

    def feed(self, *events: CustomerEvent, partition: int = 0) -> list[SegmentChange]:
        result = self.rescorer.process([(partition, e) for e in events], self.lookup, T0)
        return self._keep(result)

    def sweep(self, partition: int = 0, limit: int = 1000) -> list[SegmentChange]:
        return self._keep(self.rescorer.sweep(partition, self.lookup, T0, limit))

    def _keep(self, result: object) -> list[SegmentChange]:
        from scoring.reassignment import RescoreResult

        assert isinstance(result, RescoreResult)
        self.records.update(result.records)
        self.changes.extend(result.changes)
        self.assignments.extend(result.assignments)
        return result.changes


def test_first_purchase_assigns_and_sessions_do_not() -> None:
    h = Harness()
    session = CustomerEvent(event_id="s1", customer_id="c", type=EventType.SESSION, occurred_at=T0)
    assert h.feed(session) == []
    (change,) = h.feed(purchase("c", T0))
    assert change.previous_segment_id is None
    assert change.segment_id == REGULAR
    assert change.reason is ChangeReason.EVENT
    assert change.trigger_event_id == purchase("c", T0).event_id
    SegmentChange.model_validate_json(change.model_dump_json())  # a valid contract


def test_a_burst_of_purchases_moves_a_customer_up() -> None:
    h = Harness()
    h.feed(purchase("c", T0))
    burst = [purchase("c", T0 + timedelta(hours=i + 1), 80.0) for i in range(6)]
    (change,) = h.feed(*burst)
    assert (change.previous_segment_id, change.segment_id) == (REGULAR, CHAMPIONS)
    assert change.features.frequency == 7
    assert change.features.monetary == pytest.approx(530.0)


def test_silence_moves_a_customer_through_the_sweep_with_reason_recency() -> None:
    h = Harness()
    h.feed(*[purchase("c", T0 + timedelta(hours=i), 80.0) for i in range(7)])
    assert h.records["c"].segment_id == CHAMPIONS
    # Time passes only through other customers' events on the same partition.
    h.feed(purchase("other", T0 + timedelta(days=200)))
    assert h.records["c"].segment_id == CHAMPIONS  # no event of c's yet
    (change,) = [c for c in h.sweep() if c.customer_id == "c"]
    assert (change.previous_segment_id, change.segment_id) == (CHAMPIONS, AT_RISK)
    assert change.reason is ChangeReason.RECENCY
    assert change.features.recency_days == pytest.approx(200 - 6 / 24)


def test_duplicates_change_nothing() -> None:
    h = Harness()
    events = [purchase("c", T0 + timedelta(hours=i), 80.0) for i in range(3)]
    h.feed(*events)
    before = h.records["c"].dumps()
    result = h.rescorer.process([(0, e) for e in events], h.lookup, T0)
    assert result.changes == [] and result.assignments == [] and result.records == {}
    assert result.counts["duplicate"] == 3
    assert h.records["c"].dumps() == before


def test_an_unchanged_segment_emits_no_change_but_an_assignment() -> None:
    h = Harness()
    h.feed(purchase("c", T0))
    assert h.feed(purchase("c", T0 + timedelta(hours=1), 1.0)) == []
    assert h.assignments[-1].features.frequency == 2


def test_hysteresis_keeps_a_boundary_customer_where_they_are() -> None:
    # A customer exactly between two centroids stays put with a margin and moves without one.
    model = toy_model(centroids=((0.0, 1.0, 4.0), (0.0, 1.0, 5.0), (9.0, 0.0, 0.0)))
    amount_near_first = 90.0  # log1p(90) = 4.51: slightly nearer the second centroid
    for margin, expected in ((0.10, 0), (0.0, 1)):
        rescorer = Rescorer(model, RescoreConfig(margin=margin, learning_rate=0.0))
        records: dict[str, CustomerRecord] = {}
        first = rescorer.process([(0, purchase("c", T0, 40.0))], by_key(records), T0)
        records.update(first.records)
        assert records["c"].segment_id == 0
        second = rescorer.process(
            [(0, purchase("c", T0 + timedelta(minutes=1), amount_near_first - 40.0, 1))],
            by_key(records),
            T0,
        )
        records.update(second.records)
        assert records["c"].segment_id == expected, margin


def test_events_older_than_the_window_are_counted_and_only_touch_recency() -> None:
    h = Harness()
    h.feed(purchase("c", T0))
    result = h.rescorer.process([(0, purchase("c", T0 - timedelta(days=400), 999.0))], h.lookup, T0)
    assert result.counts["too_old"] == 1
    assert h.records["c"].state.features(T0).monetary == 50.0  # type: ignore[union-attr]


def test_a_new_model_rescored_lazily_and_by_the_sweep_with_reason_model_update() -> None:
    h = Harness()
    h.feed(purchase("a", T0), purchase("b", T0))
    assert h.records["a"].segment_id == REGULAR
    # v2 moves "Regular" far away: both customers now belong elsewhere.
    moved = (CENTROIDS[0], (9.0, 9.0, 9.0), CENTROIDS[2])
    assert h.rescorer.set_model(toy_model(version=2, centroids=moved))
    (lazy,) = h.feed(purchase("a", T0 + timedelta(minutes=1), 1.0))
    assert lazy.reason is ChangeReason.MODEL_UPDATE and lazy.model_version == 2
    swept = h.sweep()
    assert [(c.customer_id, c.reason) for c in swept] == [("b", ChangeReason.MODEL_UPDATE)]
    assert h.records["b"].model_version == 2
    assert not h.rescorer.set_model(toy_model(version=2, centroids=moved))


def test_the_sweep_is_bounded_per_call_and_reaches_everyone() -> None:
    h = Harness()
    h.feed(*[purchase(f"c{i}", T0) for i in range(50)])
    h.feed(purchase("clock", T0 + timedelta(days=3)))
    assert h.sweep() == [] and h.rescorer.shard(0).due.next_due() is not None  # nothing due yet
    h.feed(purchase("clock", T0 + timedelta(days=31), n=1))  # past the 30-day recheck
    first = h.rescorer.sweep(0, h.lookup, T0, limit=20)
    assert first.swept == 20
    h._keep(first)
    h.sweep(limit=1000)
    assert all(h.records[f"c{i}"].as_of == T0 + timedelta(days=31) for i in range(50))


def test_partitions_keep_their_own_clock() -> None:
    h = Harness()
    h.feed(purchase("a", T0), partition=0)
    h.feed(purchase("b", T0), partition=1)
    h.feed(purchase("clock", T0 + timedelta(days=200)), partition=1)
    assert [c.customer_id for c in h.sweep(partition=0)] == []
    assert [c.customer_id for c in h.sweep(partition=1)] == ["b"]


def test_restore_shard_rebuilds_clock_and_due_times_and_centroids() -> None:
    config = RescoreConfig(margin=0.1, learning_rate=0.05)
    h = Harness(config)
    h.feed(*[purchase(f"c{i}", T0 + timedelta(hours=i), 10.0 * (i + 1)) for i in range(20)])
    checkpoint = h.rescorer.checkpoint(0)
    again = Rescorer(toy_model(), config)
    standings = Standings.of_records((k, r.dumps()) for k, r in h.records.items())
    shard = again.restore_shard(0, standings, checkpoint)
    assert shard.watermark == T0 + timedelta(hours=19)
    assert len(shard.due) == 20
    assert shard.centroids.checkpoint() == h.rescorer.shard(0).centroids.checkpoint()
    assert shard.centroids.checkpoint() != [list(c) for c in CENTROIDS]  # they learned


def test_learning_rate_zero_keeps_the_baseline() -> None:
    h = Harness(RescoreConfig(learning_rate=0.0))
    h.feed(*[purchase(f"c{i}", T0, 10.0 * (i + 1)) for i in range(30)])
    assert h.rescorer.shard(0).centroids.drift().max() == 0.0


def test_online_centroids_checkpoint_must_fit() -> None:
    centroids = OnlineCentroids(CENTROIDS, 0.1)
    with pytest.raises(ValueError, match="does not fit"):
        centroids.restore([[0.0, 0.0, 0.0]])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 24 * 400), st.integers(1, 500)),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 7),
)
def test_batching_does_not_change_state_or_final_segments_with_margin_zero(
    raw: list[tuple[int, int, int]], batch_size: int
) -> None:
    events = purchases_in_time_order(raw)
    config = RescoreConfig(margin=0.0, learning_rate=0.0)
    outcomes = []
    for size in (1, batch_size):
        rescorer = Rescorer(toy_model(), config)
        records: dict[str, CustomerRecord] = {}
        for start in range(0, len(events), size):
            chunk = [(0, e) for e in events[start : start + size]]
            records.update(rescorer.process(chunk, by_key(records), T0).records)
        end = events[-1].occurred_at
        rescorer.shard(0).due.reschedule_all(0)
        records.update(rescorer.sweep(0, by_key(records), T0, 10_000).records)
        outcomes.append({k: (r.segment_id, r.state.vector(end)) for k, r in records.items()})
    assert outcomes[0] == outcomes[1]


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.integers(0, 24 * 60), st.integers(1, 400)),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([0.0, 0.1, 0.3]),
)
def test_due_time_look_ahead_makes_the_moves_of_a_daily_sweep_at_most_a_period_later(
    raw: list[tuple[int, int, int]], margin: float
) -> None:
    """Skipping customers far from a boundary loses no move; a move is at most one period late.

    Reference: re-score everyone at every daily tick (recheck = sweep period).
    With the look-ahead a customer is due at the first sampled day on which the
    decision differs, so the move comes on that day's tick or the next one.
    """
    events = purchases_in_time_order(raw)
    days = 420
    outcomes = []
    for recheck in (timedelta(days=1), timedelta(days=30)):
        config = RescoreConfig(margin=margin, learning_rate=0.0, recheck_period=recheck)
        h = Harness(config)
        h.feed(*events)
        swept = 0
        for day in range(1, days):
            h.feed(purchase("clock", T0 + timedelta(days=day), 1.0, n=day))
            result = h.rescorer.sweep(0, h.lookup, T0, 10_000)
            swept += result.swept
            h._keep(result)
        moves: dict[str, list[tuple[int | None, int, datetime]]] = {}
        for c in h.changes:
            if c.customer_id != "clock":
                moves.setdefault(c.customer_id, []).append(
                    (c.previous_segment_id, c.segment_id, c.as_of)
                )
        outcomes.append((moves, swept))
    (daily, daily_swept), (ahead, ahead_swept) = outcomes
    settled = T0 + timedelta(days=days - 3)
    for customer, reference in daily.items():
        expected = [m for m in reference if m[2] <= settled]
        got = ahead.get(customer, [])[: len(expected)]
        assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in expected], customer
        for (_, _, late), (_, _, early) in zip(got, expected, strict=True):
            assert timedelta(0) <= late - early <= timedelta(days=2), customer
    assert ahead_swept <= daily_swept


def test_evaluations_say_whether_an_event_or_the_sweep_scored_them() -> None:
    h = Harness()
    result = h.rescorer.process([(0, purchase("c", T0, 80.0))], h.lookup, T0)
    h.records.update(result.records)
    assert [(len(e), e.by_event) for e in result.evaluations] == [(1, True)]
    assert result.evaluations[0].assigned_distances.shape == (1,)
    h.feed(purchase("other", T0 + timedelta(days=200)))
    swept = h.rescorer.sweep(0, h.lookup, T0, 1000)
    assert swept.evaluations and not any(e.by_event for e in swept.evaluations)


def test_evaluations_carry_the_previous_evaluation_of_each_customer() -> None:
    h = Harness()
    first = h.rescorer.process([(0, purchase("c", T0, 80.0))], h.lookup, T0)
    h.records.update(first.records)
    (block,) = first.evaluations
    assert not block.had.any()
    later = T0 + timedelta(days=3)
    again = h.rescorer.process([(0, purchase("c", later, 20.0, 1))], h.lookup, later)
    (block,) = again.evaluations
    assert block.had.tolist() == [True]
    assert block.before.tolist() == first.evaluations[0].raw.tolist()
    assert block.before_as_of.tolist() == first.evaluations[0].as_of_micros.tolist()
    assert block.raw[0, 1:].tolist() == [2.0, 100.0]


def test_a_block_of_rows_moves_the_centroids_as_rivers_learn_one_does_row_by_row() -> None:
    rng = np.random.default_rng(5)
    rows = np.asarray(CENTROIDS)[rng.integers(0, len(CENTROIDS), 400)] + rng.normal(
        0, 0.2, (400, 3)
    )
    one_by_one = OnlineCentroids(CENTROIDS, 0.001)
    for row in rows:
        one_by_one.learn_one(dict(zip(FEATURE_NAMES, row.tolist(), strict=True)))
    block = OnlineCentroids(CENTROIDS, 0.001)
    block.learn_many(rows)
    np.testing.assert_allclose(block.centroids(), one_by_one.centroids(), atol=1e-12)
    assert block.drift().max() > 0.0
    assert block.predict_one(dict(zip(FEATURE_NAMES, rows[0].tolist(), strict=True))) == (
        one_by_one.predict_one(dict(zip(FEATURE_NAMES, rows[0].tolist(), strict=True)))
    )
