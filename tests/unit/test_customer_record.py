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
    epoch_micros,
    from_epoch_micros,
)
from scoring.customer_state import CustomerState
from scoring.standings import Standings

moments = st.integers(0, 2_000_000_000_000_000).map(from_epoch_micros)


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
    assert from_epoch_micros(epoch_micros(moment)) == moment
    assert epoch_micros(moment + timedelta(microseconds=1)) - epoch_micros(moment) == 1


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


def test_records_of_the_first_format_are_still_read() -> None:
    first = (
        b'{"f":1,"p":3,"w":365,"lp":1735689600000000,"d":[[20089,2,45000000]],'
        b'"s":[["e1",20089]],"seg":2,"mv":4,"at":1735689600000000,"v":[12.5,3,57.0],'
        b'"h":"67a1b2c0,,2,e"}'
    )
    record = CustomerRecord.loads(first)
    assert (record.partition, record.segment_id, record.model_version) == (3, 2, 4)
    assert record.vector == (12.5, 3, 57.0)
    assert record.history[0].model_version == 4
    again = CustomerRecord.loads(record.dumps())  # written back in the current format
    assert again == record and record.dumps()[0] == 2


def test_a_partitions_standings_equal_its_decoded_records() -> None:
    records = []
    for n in range(50):
        record = CustomerRecord(CustomerState(window_days=365), partition=1)
        if n % 3:
            record.segment_id, record.model_version = n % 4, 7
            record.as_of = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=n)
            record.vector = (n / 3, n % 5, 10.0 * n)
        records.append((f"c{n}", record))
    standings = Standings.of_records((key, r.dumps()) for key, r in records)
    for row, (key, record) in enumerate(records):
        assert standings.keys[row] == key
        assert standings.segment[row] == (-1 if record.segment_id is None else record.segment_id)
        if record.vector is None:
            assert not standings.evaluated[row]
        else:
            assert standings.as_of[row] == epoch_micros(record.as_of)
            assert tuple(standings.vectors[row]) == record.vector
    with pytest.raises(ValueError, match="not a record"):
        Standings.of_records([("bad", b"\x02\x00")])
