"""Intake of a fetched batch: ownership, positions, decoding and dead letters, in one pass."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from streams.intake import take
from streams.state.positions import Positions

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 1_700_000_000_000


def event(customer: str, n: int, kind: str = "purchase") -> bytes:
    body: dict[str, object] = {
        "event_id": f"{customer}-{n}",
        "customer_id": customer,
        "type": kind,
        "occurred_at": "2024-03-01T10:00:00Z",
    }
    if kind != "session":
        body["amount"] = 5.0
    return json.dumps(body).encode()


def test_events_keep_their_order_and_every_admitted_message_moves_its_position() -> None:
    positions = Positions()
    positions.restore(0, 10)
    positions.restore(1, 0)
    batch = [
        Record(0, 10, b"a", event("a", 1)),
        Record(1, 0, b"b", event("b", 1, "session")),
        Record(0, 11, b"a", event("a", 2, "refund")),
    ]
    intake = take(batch, "events", {0, 1}, positions, NOW)
    assert [(p, e.event_id) for p, e in intake.events] == [(0, "a-1"), (1, "b-1"), (0, "a-2")]
    assert intake.positions == {0: 12, 1: 1}
    assert positions.next_offset == {0: 12, 1: 1}
    assert dict(intake.types) == {"purchase": 1, "session": 1, "refund": 1}
    assert intake.timestamps_ms == [1_700_000_000_000] * 3
    assert intake.admitted == 3 and not intake.letters


def test_bad_messages_become_dead_letters_on_their_own_partition_and_count_as_processed() -> None:
    positions = Positions()
    batch = [
        Record(2, 5, b"x", b"{not json"),
        Record(2, 6, None, event("y", 1)),
        Record(2, 7, b"other", event("z", 1)),
        Record(2, 8, b"z", event("z", 2)),
    ]
    intake = take(batch, "events", {2}, positions, NOW)
    assert [e.event_id for _, e in intake.events] == ["z-2"]
    assert [(d.partition, d.key, d.letter.offset) for d in intake.letters] == [
        (2, b"x", 5), (2, None, 6), (2, b"other", 7),
    ]  # fmt: skip
    assert dict(intake.rejected) == {"invalid_json": 1, "missing_key": 1, "key_mismatch": 1}
    assert all(d.letter.topic == "events" and d.letter.received_at == NOW for d in intake.letters)
    assert intake.positions == {2: 9}


def test_processed_offsets_and_partitions_not_owned_are_left_alone_and_holes_are_crossed() -> None:
    positions = Positions()
    positions.restore(0, 3)
    batch = [
        Record(0, 2, b"a", event("a", 1)),  # processed before (a re-delivery)
        Record(0, 3, b"a", event("a", 2)),
        Record(0, 7, b"a", event("a", 3)),  # 4-6 hold no records (markers, compaction)
        Record(5, 0, b"c", event("c", 1)),  # revoked between the fetch and now
    ]
    intake = take(batch, "events", {0}, positions, NOW)
    assert [e.event_id for _, e in intake.events] == ["a-2", "a-3"]
    assert dict(intake.verdicts) == {"seen": 1, "gap": 1, "not_owned": 1}
    assert intake.positions == {0: 8}
    assert 5 not in positions.next_offset
