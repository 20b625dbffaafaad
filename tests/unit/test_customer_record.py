"""Customer records survive the changelog round trip exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.customer_record import (
    BANDS,
    HEAD,
    HEAD_V2,
    HISTORY_LIMIT,
    RECORD_FORMAT,
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
    lifetime=st.none()
    | st.tuples(st.integers(0, 30_000), st.integers(0, 10**4), st.integers(0, 10**12)),
    refunds=st.dictionaries(st.integers(0, 30_000), st.integers(1, 10**12), max_size=5),
    traits=st.none()
    | st.tuples(st.sampled_from(BANDS), st.floats(0, 1, width=32), st.integers(0, 10**4)),
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
    lifetime: tuple[int, int, int] | None,
    refunds: dict[int, int],
    traits: tuple[str, float, int] | None,
) -> None:
    first, retired, micros = lifetime or (None, 0, 0)
    state = CustomerState(window, last, days, seen, first, retired, micros, refunds)
    record = CustomerRecord(state, partition, segment, version, as_of, vector)
    if traits is not None:
        record.band, record.p_alive, record.repeat_days = traits
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
    assert again == record and record.dumps()[0] == RECORD_FORMAT


def test_records_of_the_second_format_are_still_read() -> None:
    """Format 2 (no trait fields, no lifetime summary) loads; the first purchase is derived."""
    state = CustomerState(
        window_days=365,
        last_purchase=datetime(2025, 3, 1, 12, tzinfo=UTC),
        days={20100: (1, 5_000_000), 20140: (2, 7_000_000), 20130: (0, -1_000_000)},
    )
    current = CustomerRecord(state, partition=2, segment_id=1, model_version=3)
    current.as_of = datetime(2025, 3, 2, tzinfo=UTC)
    current.vector = (1.0, 3, 11.0)
    head = HEAD_V2.pack(2, 1, 3, epoch_micros(current.as_of), 1.0, 3, 11.0)
    raw = current.dumps()
    old = head + raw[HEAD.size :]
    record = CustomerRecord.loads(old)
    assert record.state.first_purchase_day == 20100  # the earliest purchase day held
    assert (record.band, record.p_alive, record.repeat_days) == (None, None, None)
    assert (record.segment_id, record.vector) == (1, (1.0, 3, 11.0))
    standings = Standings.of_values(["c"], [old])
    assert standings.bands.tolist() == [-1] and standings.alive[0] != standings.alive[0]
    assert standings.vectors[0].tolist() == [1.0, 3.0, 11.0]


def test_a_partitions_standings_equal_its_decoded_records() -> None:
    records = []
    for n in range(50):
        record = CustomerRecord(CustomerState(window_days=365), partition=1)
        if n % 3:
            record.segment_id, record.model_version = n % 4, 7
            record.as_of = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=n)
            record.vector = (n / 3, n % 5, 10.0 * n)
            if n % 2:
                record.band, record.p_alive, record.repeat_days = BANDS[n % 3], 0.5, n
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
        band = -1 if record.band is None else BANDS.index(record.band)
        assert standings.bands[row] == band
        assert (standings.alive[row] == 0.5) == (record.p_alive is not None)
    with pytest.raises(ValueError, match="not a record"):
        Standings.of_records([("bad", b"\x02\x00")])


def test_the_band_codes_are_the_traits_band_order() -> None:
    """The head's band codes are `BAND_ORDER`'s, which the core writes records by."""
    from scoring.traits import BAND_ORDER

    assert tuple(band.value for band in BAND_ORDER) == BANDS
