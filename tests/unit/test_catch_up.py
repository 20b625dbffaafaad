"""Catching stores up to their changelogs' ends before a partition is taken.

`streams.state.catch_up.catch_up` over a fake of our own changelog reader and
stores that record what they were given; the real probe is read against a real
broker in ``tests/integration/test_catch_up.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import pytest

from streams.state.catch_up import catch_up
from streams.state.changelog_probe import ChangelogRecord

Key = tuple[str, int]


class Reader:
    """A changelog per (topic, partition): its first offset and its records."""

    def __init__(self, logs: Mapping[Key, tuple[int, list[ChangelogRecord]]], end_past: int = 0):
        self.logs = logs
        self.end_past = end_past  # offsets past the last record (commit markers)
        self.read_ranges: list[dict[Key, tuple[int, int]]] = []

    async def ends(self, keys: list[Key]) -> dict[Key, tuple[int, int]]:
        bounds = {}
        for key in keys:
            start, records = self.logs.get(key, (0, []))
            end = (records[-1].offset + 1 + self.end_past) if records else start
            bounds[key] = (start, end)
        return bounds

    async def read(self, ranges: Mapping[Key, tuple[int, int]]) -> dict[Key, list[ChangelogRecord]]:
        self.read_ranges.append(dict(ranges))
        return {
            key: [r for r in self.logs[key][1] if first <= r.offset < end]
            for key, (first, end) in ranges.items()
        }


class Store:
    def __init__(self, name: str, next_offsets: dict[int, int | None]) -> None:
        self.table_name = name
        self.topic = f"app-{name}-changelog"
        self.next_offsets = next_offsets
        self.applied: dict[int, list[int]] = {}
        self.reflects: dict[int, int] = {}

    def next_offset(self, partition: int) -> int | None:
        return self.next_offsets.get(partition)

    def apply(
        self, partition: int, records: Sequence[ChangelogRecord], read_from: int | None = None
    ) -> None:
        assert read_from is not None  # the catch-up's records are all there is from there
        self.applied.setdefault(partition, []).extend(r.offset for r in records)

    def read_to(self, partition: int, end: int) -> None:
        self.reflects[partition] = end


def records(offsets: range) -> list[ChangelogRecord]:
    return [ChangelogRecord(o, f"k{o}".encode(), b"v") for o in offsets]


def test_only_what_lies_past_each_store_is_read_and_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    customers = Store("customers", {0: 10, 1: 5})
    positions = Store("positions", {0: 3, 1: None})
    reader = Reader({
        ("app-customers-changelog", 0): (0, records(range(10))),  # all read already
        ("app-customers-changelog", 1): (0, records(range(8))),  # 5, 6, 7 left unread
        ("app-positions-changelog", 0): (0, records(range(3))),
        ("app-positions-changelog", 1): (2, records(range(2, 4))),  # nothing read, log from 2
    })  # fmt: skip
    with caplog.at_level(logging.WARNING):
        read = asyncio.run(catch_up(reader, [customers, positions], [1, 0]))
    assert reader.read_ranges == [
        {("app-customers-changelog", 1): (5, 8), ("app-positions-changelog", 1): (2, 4)}
    ]
    assert customers.applied == {1: [5, 6, 7]}
    assert positions.applied == {1: [2, 3]}
    assert read == {"customers": 3, "positions": 2}
    # every store now reflects its changelog's end, whether it read anything or not
    assert customers.reflects == {0: 10, 1: 8}
    assert positions.reflects == {0: 3, 1: 4}
    gaps = [r.getMessage() for r in caplog.records]
    assert gaps == [
        "store customers[1]: recovery left changelog offsets 5-7 unread; read 3 records",
        "store positions[1]: recovery left changelog offsets 2-3 unread; read 2 records",
    ]


def test_a_range_of_markers_only_is_read_and_reflected_without_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store("customers", {0: 4})
    reader = Reader({("app-customers-changelog", 0): (0, records(range(4)))}, end_past=1)
    with caplog.at_level(logging.INFO):
        read = asyncio.run(catch_up(reader, [store], [0], expected=True))
    assert reader.read_ranges == [{("app-customers-changelog", 0): (4, 5)}]
    assert read == {}  # no records: nothing counted
    assert store.applied == {0: []}
    assert store.reflects == {0: 5}  # past the commit marker, so recovery finds nothing left
    assert [r.levelno for r in caplog.records] == [logging.INFO]  # expected: not a gap


def test_no_partitions_or_no_stores_ask_nothing() -> None:
    reader = Reader({})
    assert asyncio.run(catch_up(reader, [Store("customers", {})], [])) == {}
    assert asyncio.run(catch_up(reader, [], [0, 1])) == {}
    assert reader.read_ranges == []
