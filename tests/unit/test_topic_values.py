"""Values out of real Kafka record batches (aiokafka's own builder writes them, its C
reader parses them): span bounds, compacted offsets, aborted transactions, CRCs."""

from __future__ import annotations

import pytest
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from offline.topic_values import Span, batch_values, verify_crcs


def batch(base: int, offsets: list[int], producer: int = -1, transactional: bool = False) -> bytes:
    """A v2 batch starting at `base` holding records at `offsets` (gaps: compaction)."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=transactional, producer_id=producer,
        producer_epoch=0 if producer >= 0 else -1, base_sequence=0 if producer >= 0 else -1,
        batch_size=1 << 20,
    )  # fmt: skip
    for offset in offsets:
        builder.append(offset - base, timestamp=None, key=b"k", value=b"v%d" % offset, headers=[])
    built = bytearray(builder.build())
    built[0:8] = base.to_bytes(8, "big")  # the broker assigns the base offset
    return bytes(built)


def test_every_value_in_offset_order_and_the_position_past_the_last_batch() -> None:
    data = batch(0, [0, 1, 2]) + batch(3, [3, 4])
    span = Span(0, 10)
    assert batch_values(MemoryRecords(data), span) == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    assert span.position == 5 and not span.done


def test_records_before_the_start_and_at_or_after_the_end_are_dropped() -> None:
    data = batch(0, [0, 1, 2, 3]) + batch(4, [4, 5, 6])
    span = Span(2, 5)
    assert batch_values(MemoryRecords(data), span) == [b"v2", b"v3", b"v4"]
    assert span.done


def test_a_compacted_batch_moves_the_position_past_its_last_offset() -> None:
    span = Span(0, 100)
    assert batch_values(MemoryRecords(batch(10, [10, 13, 17])), span) == [b"v10", b"v13", b"v17"]
    assert span.position == 18


def test_an_aborted_transactions_batches_are_dropped_and_others_kept() -> None:
    data = (
        batch(0, [0, 1], producer=7, transactional=True)  # before the aborted one began
        + batch(2, [2, 3], producer=7, transactional=True)  # aborted
        + batch(4, [4], producer=8, transactional=True)  # another producer's
        + batch(5, [5])  # not transactional
    )
    span = Span(0, 6)
    values = batch_values(MemoryRecords(data), span, aborted=[(7, 2)])
    assert values == [b"v0", b"v1", b"v4", b"v5"]
    assert span.done


def test_a_flipped_byte_fails_the_crc_and_intact_or_partial_batches_pass() -> None:
    good = batch(0, [0, 1, 2]) + batch(3, [3])
    verify_crcs(good)
    verify_crcs(good + batch(4, [4, 5])[:30])  # a fetch may end inside a batch
    broken = bytearray(good)
    broken[-3] ^= 0x01  # inside the second batch's last record
    with pytest.raises(CorruptRecordException, match="offset 3"):
        verify_crcs(bytes(broken))
