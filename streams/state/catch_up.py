"""Before a partition is taken: its stores hold the whole of their changelogs.

Faust's recovery reads each changelog partition from the offset its own
bookkeeping says comes next, and that bookkeeping can run ahead of what
reached a store: records it fetched for a partition while a rebalance was
taking the partition away are dropped with it, and its offset stays (a
partition that comes back in the next generation is then read from past
them). A worker that took such a partition would start from records older
than its input position says, and lose the events in between.

So each durable store's position is compared with its changelog's end (one
offsets request for every table and partition taken) and whatever lies
between is read here, with a warning naming the gap. Normally nothing does.

In exactly-once mode this is how every store comes up, at every rebalance,
before Faust's recovery looks: a transactional changelog ends in a commit
marker, which no consumer ever returns, and Faust's recovery (outside its
own transactional mode) would wait for it forever. Each store reads to the
committed end itself and then reports that it reflects the end, markers
included, so recovery finds nothing left to read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from streams.state.changelog_probe import ChangelogRecord
from streams.state.trust import unread

log = logging.getLogger(__name__)


class ChangelogReader(Protocol):
    """Reads changelog partitions' bounds and ranges (`ChangelogProbe`)."""

    async def ends(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]: ...
    async def read(
        self, ranges: Mapping[tuple[str, int], tuple[int, int]]
    ) -> dict[tuple[str, int], list[ChangelogRecord]]: ...


class CatchingUp(Protocol):
    """A store that can be brought up to its changelog's end (`DurableStore`)."""

    @property
    def topic(self) -> str: ...
    @property
    def table_name(self) -> str: ...
    def next_offset(self, partition: int) -> int | None: ...
    def apply(
        self, partition: int, records: Sequence[ChangelogRecord], read_from: int | None = None
    ) -> None: ...
    def read_to(self, partition: int, end: int) -> None: ...


async def catch_up(
    probe: ChangelogReader,
    stores: Sequence[CatchingUp],
    partitions: Iterable[int],
    expected: bool = False,
) -> dict[str, int]:
    """Read into each store what its changelog holds past it, for these partitions.

    Afterwards each store reflects its changelog up to the end measured here,
    transaction markers included. `expected`: reading is the normal way in
    (exactly once, at every rebalance), logged as such; otherwise records found
    unread are a gap recovery left, with a warning.
    Returns the records read per table (only tables that read any).
    """
    wanted = sorted(partitions)
    keys = [(store.topic, p) for store in stores for p in wanted]
    if not keys:
        return {}
    bounds = await probe.ends(keys)
    firsts = {
        (store.topic, p): unread(store.next_offset(p), *bounds[(store.topic, p)])
        for store in stores
        for p in wanted
    }
    found = await probe.read(
        {key: (first, bounds[key][1]) for key, first in firsts.items() if first is not None}
    )
    read: dict[str, int] = {}
    for store in stores:
        for partition in wanted:
            key = (store.topic, partition)
            first, end = firsts[key], bounds[key][1]
            if first is not None:
                records = found[key]
                store.apply(partition, records, read_from=first)
                if expected:
                    log.info(
                        "store %s[%d]: read changelog offsets %d-%d (%d records)",
                        store.table_name, partition, first, end - 1, len(records),
                    )  # fmt: skip
                elif records:
                    log.warning(
                        "store %s[%d]: recovery left changelog offsets %d-%d unread; "
                        "read %d records",
                        store.table_name, partition, first, end - 1, len(records),
                    )  # fmt: skip
                if records:
                    read[store.table_name] = read.get(store.table_name, 0) + len(records)
            store.read_to(partition, end)
    return read
