"""The events topic read in whole fetched batches, off Faust's per-message stream.

Faust's consumer group decides which event partitions this worker owns (and
keeps the events topic subscribed, paused, so partitions co-partition with
the tables' changelogs); this reader is a group-less aiokafka consumer that
`assign`s exactly those partitions and reads them from the worker's own
persisted positions. A batch is whatever one ``getmany`` returns: every
record from each partition's position on, in offset order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from schemas.settings import RescorerSettings

FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024
TOP_UP_SECONDS = 0.005


class BatchReader:
    """Reads the owned event partitions from given positions, a batch at a time."""

    def __init__(self, settings: RescorerSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Connect (no partitions yet)."""
        consumer = AIOKafkaConsumer(
            **self.settings.aiokafka_config(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # an upstream transaction's events once committed
            max_partition_fetch_bytes=FETCH_BYTES_PER_PARTITION,
        )
        await consumer.start()
        self._consumer = consumer

    async def stop(self) -> None:
        """Disconnect."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the batch reader is not started")
        return self._consumer

    def _tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.topic, partition)

    async def assign(self, positions: Mapping[int, int | None]) -> dict[int, int]:
        """Read exactly these partitions, each from its position (None: the log start).

        Returns the position of every partition; anything fetched before is dropped.
        """
        consumer = self.consumer
        parts = [self._tp(p) for p in sorted(positions)]
        consumer.assign(parts)
        unknown = [self._tp(p) for p, offset in positions.items() if offset is None]
        starts: dict[Any, int] = await consumer.beginning_offsets(unknown) if unknown else {}
        resolved: dict[int, int] = {}
        for partition, offset in positions.items():
            tp = self._tp(partition)
            at = starts[tp] if offset is None else offset
            consumer.seek(tp, at)
            resolved[partition] = at
        return resolved

    async def fetch(self, timeout: float, max_records: int) -> list[ConsumerRecord[Any, Any]]:
        """The next batch: records of every assigned partition, in offset order per partition.

        aiokafka fetches ahead, but asks again for a partition only once what
        it holds was taken; a buffer taken at the start of a step can be as old
        as the previous step. So a batch that was waiting is topped up with
        what a fresh fetch brings within `TOP_UP_SECONDS`: up to now, not up to
        the previous step.
        """
        consumer = self.consumer
        if not consumer.assignment():
            return []
        records = self._flatten(
            await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        )
        if records and len(records) < max_records:
            fresh = await consumer.getmany(
                timeout_ms=int(TOP_UP_SECONDS * 1000), max_records=max_records - len(records)
            )
            records.extend(self._flatten(fresh))
        return records

    @staticmethod
    def _flatten(
        fetched: dict[Any, list[ConsumerRecord[Any, Any]]],
    ) -> list[ConsumerRecord[Any, Any]]:
        records: list[ConsumerRecord[Any, Any]] = []
        for batch in fetched.values():
            records.extend(batch)
        return records

    def highwater(self, partition: int) -> int | None:
        """The partition's end offset as of the last fetch (None before one)."""
        consumer = self.consumer
        tp = self._tp(partition)
        if tp not in consumer.assignment():
            return None
        mark = consumer.highwater(tp)
        return None if mark is None else int(mark)
