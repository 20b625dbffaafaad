"""The worker's three tables over Faust's memory store: keys, changelog writes, reads back.

A real (unstarted) Faust app builds the tables; the outbox is a list. The
durable store's bookkeeping is in test_durable_store.py.
"""

from __future__ import annotations

import asyncio
import json

import faust

from scoring.customer_record import CustomerRecord
from scoring.customer_state import CustomerState
from streams.state.tables import StateTables, changelog_topic


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes | None, bytes]] = []

    async def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic, partition, key, value))


def tables() -> StateTables:
    return StateTables(faust.App("app-t", autodiscover=False, store="memory://"), 4)


def test_records_checkpoints_and_positions_go_to_their_stores_and_changelogs() -> None:
    state = tables()
    outbox = Outbox()
    a = CustomerRecord(CustomerState(window_days=365), partition=1, segment_id=2, model_version=1)
    b = CustomerRecord(CustomerState(window_days=365), partition=3)
    state.positions.hold({1: 40})

    async def scenario() -> None:
        await state.write(outbox, {"a": a, "b": b}, {1: {"learned": 3}})
        await state.write_positions(outbox)

    asyncio.run(scenario())
    assert [(topic, p, key) for topic, p, key, _ in outbox.sent] == [
        (changelog_topic("app-t", "customers"), 1, b"a"),
        (changelog_topic("app-t", "customers"), 3, b"b"),
        (changelog_topic("app-t", "centroids"), 1, b"p1"),
        (changelog_topic("app-t", "positions"), 1, b"p1"),
    ]
    assert outbox.sent[0][3] == a.dumps()  # the changelog carries the store's bytes
    assert state.record("a", 1) == a
    assert state.find_record("b", [0, 1, 2, 3]) == b
    assert state.find_record("c", [0, 1, 2, 3]) is None
    assert state.checkpoint(1) == {"learned": 3} and state.checkpoint(0) is None
    assert state.persisted_position(1) == 40 and state.persisted_position(2) is None
    assert state.positions.sent == {1: 40}  # written, not yet acknowledged
    assert list(state.standings(1).keys) == ["a"] and len(state.standings(0).keys) == 0


def test_a_position_of_the_older_layout_is_still_read_once() -> None:
    """Before positions had their own table they were "o{n}" in the centroids table."""
    state = tables()
    state.checkpoints.store.put("o2", 2, json.dumps({"next_offset": 17}).encode())
    assert state.persisted_position(2) == 17
    state.position_table.store.put("p2", 2, json.dumps({"next_offset": 30}).encode())
    assert state.persisted_position(2) == 30  # the own table wins once it has a value
