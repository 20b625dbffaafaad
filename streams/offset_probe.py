"""Which input offsets exist: the check behind `streams.positions` gap handling."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.settings import RescorerSettings
from streams.kafka_clients import aiokafka_config


class OffsetProbe:
    """A group-less consumer that reads one record to find the next existing offset."""

    def __init__(self, settings: RescorerSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    async def first_at_or_after(
        self, partition: int, offset: int, timeout: float = 5.0
    ) -> int | None:
        """The first record offset >= `offset` (the log start if that is later), or None."""
        consumer = await self._client()
        tp = TopicPartition(self.topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        if offset >= end:
            return None
        consumer.seek(tp, offset)
        batch: dict[Any, list[Any]] = await consumer.getmany(
            tp, timeout_ms=int(timeout * 1000), max_records=1
        )
        records = batch.get(tp) or []
        return int(records[0].offset) if records else None

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **aiokafka_config(self.settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        """Stop the consumer if it was started."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
