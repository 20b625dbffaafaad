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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from streams.state.changelog_probe import ChangelogProbe
from streams.state.store import DurableStore
from streams.state.trust import unread

log = logging.getLogger(__name__)


async def catch_up(
    probe: ChangelogProbe, stores: Sequence[DurableStore], partitions: Iterable[int]
) -> dict[str, int]:
    """Read into each store what its changelog holds past it, for these partitions.

    Returns the records read per table (only tables that read any).
    """
    wanted = sorted(partitions)
    keys = [(store.topic, p) for store in stores for p in wanted]
    if not keys:
        return {}
    bounds = await probe.ends(keys)
    read: dict[str, int] = {}
    for store in stores:
        for partition in wanted:
            start, end = bounds[(store.topic, partition)]
            first = unread(store.position(partition), start, end)
            if first is None:
                continue
            records = await probe.read(store.topic, partition, first, end)
            store.apply(partition, records)
            log.warning(
                "store %s[%d]: recovery left changelog offsets %d-%d unread; read %d records",
                store.table_name, partition, first, end - 1, len(records),
            )  # fmt: skip
            read[store.table_name] = read.get(store.table_name, 0) + len(records)
    return read
