"""Read changelog partitions beside Faust: their bounds and one record each (what
`streams.state.trust` needs), and a range of records (`streams.state.catch_up`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.settings import RescorerSettings
from streams.state.log_file import Position, fingerprint
from streams.state.trust import Changelog

PROBE_SECONDS = 10.0
READ_SECONDS = 60.0
"""How long reading a range of records may take before it is given up as stuck."""
READ_POLL_MS = 20
"""A fetch that returns only offsets without records (a commit marker) moves the
position on but returns nothing: poll briefly, so that the position is seen soon."""


class ChangelogRecord(NamedTuple):
    """One record of a changelog partition."""

    offset: int
    key: bytes | None
    value: bytes | None


class ReadIncomplete(RuntimeError):
    """A range of a changelog partition could not be read in `READ_SECONDS`."""


class ChangelogProbe:
    """A group-less consumer that looks at changelog partitions, started on first use."""

    def __init__(self, settings: RescorerSettings) -> None:
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **self.settings.aiokafka_config(),
                group_id=None,
                enable_auto_commit=False,
                fetch_max_wait_ms=50,
                max_partition_fetch_bytes=1024 * 1024,
                isolation_level="read_committed",  # no aborted transaction's records
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        """Disconnect (a later look connects again)."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def look(
        self, positions: Mapping[tuple[str, int], Position | None]
    ) -> dict[tuple[str, int], Changelog]:
        """Bounds of each (topic, partition), and the record at or after each position."""
        async with self._lock:
            consumer = await self._started()
            tps = {key: TopicPartition(*key) for key in positions}
            bounds = await _bounds(consumer, tps)
            wanted = {
                tps[key]: position.offset
                for key, (start, end) in bounds.items()
                if (position := positions[key]) is not None and start <= position.offset < end
            }
            found = await self._first_records(consumer, wanted)
            return {
                key: Changelog(start, end, found.get(tps[key]))
                for key, (start, end) in bounds.items()
            }

    async def ends(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        """(first offset, end offset) of each (topic, partition)."""
        async with self._lock:
            consumer = await self._started()
            return await _bounds(consumer, {key: TopicPartition(*key) for key in keys})

    async def read(
        self, ranges: Mapping[tuple[str, int], tuple[int, int]]
    ) -> dict[tuple[str, int], list[ChangelogRecord]]:
        """The records of each (topic, partition) from offset `start` up to (not
        including) `end`, all partitions read together.

        A range may end in offsets that hold no record a consumer returns (a
        transaction's commit marker, records of aborted transactions): a
        partition is done once the consumer's position reaches its end.
        """
        if not ranges:
            return {}
        async with self._lock:
            consumer = await self._started()
            tps = {key: TopicPartition(*key) for key in ranges}
            consumer.assign(list(tps.values()))
            for key, tp in tps.items():
                consumer.seek(tp, ranges[key][0])
            found: dict[TopicPartition, list[ChangelogRecord]] = {tp: [] for tp in tps.values()}
            ends = {tp: ranges[key][1] for key, tp in tps.items()}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READ_SECONDS
            try:
                waiting = list(ends)
                while True:
                    still = [tp for tp in waiting if await consumer.position(tp) < ends[tp]]
                    for tp in set(waiting) - set(still):  # done: fetch nothing more of it
                        consumer.pause(tp)
                    if not (waiting := still):
                        break
                    if loop.time() > deadline:
                        tp = waiting[0]
                        raise ReadIncomplete(
                            f"{tp.topic}[{tp.partition}]: read to offset "
                            f"{await consumer.position(tp)} of {ranges[(tp.topic, tp.partition)]} "
                            f"in {READ_SECONDS:.0f} s"
                        )
                    batches = await consumer.getmany(*waiting, timeout_ms=READ_POLL_MS)
                    for tp, records in batches.items():
                        found[tp].extend(
                            ChangelogRecord(r.offset, r.key, r.value)
                            for r in records
                            if r.offset < ends[tp]
                        )
            finally:
                consumer.assign([])
            return {key: found[tp] for key, tp in tps.items()}

    @staticmethod
    async def _first_records(
        consumer: AIOKafkaConsumer, wanted: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """(offset, fingerprint) of the first record at or after each wanted offset."""
        if not wanted:
            consumer.assign([])
            return {}
        consumer.assign(list(wanted))
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        found: dict[TopicPartition, tuple[int, int]] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROBE_SECONDS
        while len(found) < len(wanted) and loop.time() < deadline:
            missing = [tp for tp in wanted if tp not in found]
            batches = await consumer.getmany(*missing, timeout_ms=200)
            for tp, records in batches.items():
                if records and tp not in found:
                    record = records[0]
                    found[tp] = (record.offset, fingerprint(record.key, record.value))
                    consumer.pause(tp)
        consumer.assign([])
        return found


async def _bounds(
    consumer: AIOKafkaConsumer, tps: Mapping[tuple[str, int], TopicPartition]
) -> dict[tuple[str, int], tuple[int, int]]:
    """(first offset, end offset) of each (topic, partition)."""
    starts: dict[Any, int] = await consumer.beginning_offsets(list(tps.values()))
    ends: dict[Any, int] = await consumer.end_offsets(list(tps.values()))
    return {key: (starts[tp], ends[tp]) for key, tp in tps.items()}
