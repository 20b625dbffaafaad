"""Streaming state equals the batch features, for any order and with duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.event_validation import EVENT_SCHEMA
from offline.features import rfm_features
from schemas import CustomerEvent, EventType
from scoring.customer_state import CustomerState
from scoring.rfm import amount_to_micros, day_number

START = datetime(2023, 1, 1, tzinfo=UTC)

event_strategy = st.builds(
    lambda n, kind, minutes, cents: CustomerEvent(
        event_id=f"e{n}",
        customer_id="c",
        type=kind,
        occurred_at=START + timedelta(minutes=minutes),
        amount=None if kind is EventType.SESSION else cents / 100,
    ),
    st.integers(0, 40),
    st.sampled_from(list(EventType)),
    st.integers(0, 60 * 24 * 500),
    st.integers(1, 10_000_000),
)


def unique_ids(events: list[CustomerEvent]) -> list[CustomerEvent]:
    """Same id, same event: duplicates are redeliveries, not conflicting facts."""
    first: dict[str, CustomerEvent] = {}
    for e in events:
        first.setdefault(e.event_id, e)
    return [first[e.event_id] for e in events]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(event_strategy, min_size=1, max_size=40),
    st.randoms(use_true_random=False),
    st.integers(1, 400),
)
def test_stream_equals_batch_in_any_order(
    events: list[CustomerEvent], rnd: object, window: int
) -> None:
    events = unique_ids(events)
    shuffled = list(events) + list(events[: len(events) // 2])  # with redeliveries
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    as_of = max(e.occurred_at for e in events)
    state = CustomerState(window_days=window)
    watermark = START
    for event in shuffled:
        watermark = max(watermark, event.occurred_at)
        state.apply(event, watermark)
    streamed = state.features(as_of)
    frame = pl.DataFrame(
        [
            {
                "event_id": e.event_id,
                "customer_id": e.customer_id,
                "type": e.type.value,
                "occurred_at": e.occurred_at,
                "amount": e.amount,
            }
            for e in events
        ],
        schema=EVENT_SCHEMA,
    )
    batch = rfm_features(frame, as_of, window)
    if batch.height == 0:
        assert streamed is None
        return
    row = batch.row(0, named=True)
    assert streamed is not None
    assert (streamed.recency_days, streamed.frequency, streamed.monetary) == (
        row["recency_days"],
        row["frequency"],
        row["monetary"],
    )


def test_state_stays_bounded_by_the_window() -> None:
    state = CustomerState(window_days=30)
    for i in range(2000):
        when = START + timedelta(hours=6 * i)
        state.apply(
            CustomerEvent(
                event_id=f"e{i}", customer_id="c", type="purchase", occurred_at=when, amount=1.0
            ),
            when,
        )
    assert len(state.days) <= 31
    assert len(state.seen) <= 31 * 4


@settings(max_examples=300, deadline=None)
@given(
    st.lists(event_strategy, min_size=1, max_size=40),
    st.lists(st.integers(-60 * 24 * 30, 60 * 24 * 600), min_size=1, max_size=4),
)
def test_one_pass_scoring_equals_the_vector_and_a_recount_of_the_history(
    events: list[CustomerEvent], offsets: list[int]
) -> None:
    events = list({e.event_id: e for e in unique_ids(events)}.values())
    state = CustomerState(window_days=800)  # nothing leaves the window: the recount is plain
    watermark = START
    for event in sorted(events, key=lambda e: e.occurred_at):
        watermark = max(watermark, event.occurred_at)
        state.apply(event, watermark)
    purchases = [e for e in events if e.type is EventType.PURCHASE]
    for minutes in offsets:
        as_of = START + timedelta(minutes=minutes)
        scored = state.scored(as_of)
        vector = state.vector(as_of)
        if vector is None:
            assert scored is None and state.lifetime(as_of) is None
            continue
        assert scored is not None and scored[0] == vector
        life = scored[1]
        assert life is not None and life == state.lifetime(as_of)
        first, end = min(day_number(e.occurred_at) for e in purchases), day_number(as_of)
        repeat = {day_number(e.occurred_at) for e in purchases} - {first}
        repeat = {d for d in repeat if d <= end}
        last = max(e.occurred_at for e in purchases)
        assert (life.x, life.t_x, life.T) == (len(repeat), day_number(last) - first, end - first)
        assert life.repeat_micros == sum(
            amount_to_micros(e.amount or 0.0) for e in purchases
            if day_number(e.occurred_at) in repeat
        )  # fmt: skip
