"""Customer records survive the changelog round trip exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.customer_record import (
    HISTORY_LIMIT,
    CustomerRecord,
    Move,
    from_micros,
    to_micros,
)
from scoring.customer_state import CustomerState

moments = st.integers(0, 2_000_000_000_000_000).map(from_micros)


@given(
    window=st.integers(1, 400),
    last=st.none() | moments,
    days=st.dictionaries(
        st.integers(0, 30_000),
        st.tuples(st.integers(0, 999), st.integers(-(10**12), 10**12)),
        max_size=30,
    ),
    seen=st.dictionaries(st.text(min_size=1, max_size=20), st.integers(0, 30_000), max_size=30),
    partition=st.integers(0, 1023),
    segment=st.none() | st.integers(0, 31),
    version=st.none() | st.integers(1, 10**6),
    as_of=st.none() | moments,
    vector=st.none() | st.tuples(st.floats(0, 1e6), st.integers(0, 10**6), st.floats(0, 1e9)),
)
def test_dumps_loads_round_trip(
    window: int,
    last: datetime | None,
    days: dict[int, tuple[int, int]],
    seen: dict[str, int],
    partition: int,
    segment: int | None,
    version: int | None,
    as_of: datetime | None,
    vector: tuple[float, int, float] | None,
) -> None:
    record = CustomerRecord(
        CustomerState(window, last, days, seen), partition, segment, version, as_of, vector
    )
    again = CustomerRecord.loads(record.dumps())
    assert again == record
    assert again.dumps() == record.dumps()


def test_micros_are_exact() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment
    assert to_micros(moment + timedelta(microseconds=1)) - to_micros(moment) == 1


@pytest.mark.parametrize("data", [b"", b"[]", b'{"f": 2}', b'{"f": 1}', b"\xff"])
def test_anything_else_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="record"):
        CustomerRecord.loads(data)


def test_the_history_keeps_the_latest_moves_and_round_trips() -> None:
    record = CustomerRecord(CustomerState(window_days=365))
    for n in range(HISTORY_LIMIT + 5):
        record.remember(Move(1_718_000_000 + n, None if n == 0 else n % 3, (n + 1) % 3, "event", 1))
    assert len(record.history) == HISTORY_LIMIT
    assert record.history[-1].as_of == 1_718_000_000 + HISTORY_LIMIT + 4
    assert record.history[0].as_of == 1_718_000_000 + 5
    again = CustomerRecord.loads(record.dumps())
    assert again.history == record.history
    empty = CustomerRecord(CustomerState(window_days=365))
    assert b'"h"' not in empty.dumps() and CustomerRecord.loads(empty.dumps()).history == []
    per_move = (len(record.dumps()) - len(empty.dumps())) / HISTORY_LIMIT
    assert per_move < 25  # the bytes the README quotes per remembered change
    other = CustomerRecord(CustomerState(window_days=365), model_version=2)
    other.remember(Move(1_718_000_000, 1, 2, "model_update", 1))
    assert CustomerRecord.loads(other.dumps()).history == other.history
