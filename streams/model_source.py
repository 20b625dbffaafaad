"""Where the worker's model comes from: the compacted models topic, else the directory.

Every worker reads the whole models topic (no consumer group), so each one
sees every promotion. Artifacts are validated with `load_segment_model`; a
bad one is logged and counted and never replaces the current model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.model import ModelRejected, SegmentModel, load_segment_model
from streams.settings import WorkerSettings

log = logging.getLogger(__name__)

OnModel = Callable[[SegmentModel], Awaitable[None]]
OnRejected = Callable[[ModelRejected], None]


def model_from_directory(directory: Path, verify_keys: Sequence[bytes] = ()) -> SegmentModel | None:
    """The active model of a registry directory, or None (missing, empty, invalid, unsigned)."""
    from schemas.registry import ModelRegistry

    if not directory.is_dir():
        return None
    try:
        return ModelRegistry(directory, verify_keys).active()
    except (ModelRejected, ValueError, OSError) as exc:
        log.warning("model directory %s: %s", directory, exc)
        return None


class ModelWatcher:
    """Follows the models topic and hands every valid artifact to `on_model`."""

    def __init__(
        self, settings: WorkerSettings, on_model: OnModel, on_rejected: OnRejected
    ) -> None:
        self.settings = settings
        self.on_model = on_model
        self.on_rejected = on_rejected
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        """Read from the beginning, then keep polling; falls back to the directory once."""
        settings = self.settings
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            # Offset requests queue behind a pending fetch on the same connection: a
            # long poll would delay the first model (and so the start) by as much.
            fetch_max_wait_ms=100,
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            **settings.aiokafka_config(),
        )
        await consumer.start()
        try:
            # The models topic has one partition (one key, "active"); see ensure_topics.
            partitions = [TopicPartition(settings.topics.models, 0)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            latest = await self._drain_to(consumer, end)
            if latest is None:
                latest = model_from_directory(settings.model_dir, settings.verification_keys)
                if latest is not None:
                    log.info("no model on %s; using v%d from %s", settings.topics.models,
                             latest.version, settings.model_dir)  # fmt: skip
            if latest is not None:
                await self.on_model(latest)
            self.caught_up.set()
            while True:
                batches = await consumer.getmany(timeout_ms=int(settings.model_poll_seconds * 1000))
                for records in batches.values():
                    for record in records:
                        model = self._validate(record.value)
                        if model is not None:
                            await self.on_model(model)
        finally:
            await consumer.stop()

    async def _drain_to(
        self, consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]
    ) -> SegmentModel | None:
        latest: SegmentModel | None = None
        while await _behind(consumer, end):
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    model = self._validate(record.value)
                    if model is not None:
                        latest = model
        return latest

    def _validate(self, value: bytes | None) -> SegmentModel | None:
        if value is None:
            return None
        try:
            return load_segment_model(value, self.settings.verification_keys)
        except ModelRejected as exc:
            log.error("rejected a model from %s: %s", self.settings.topics.models, exc)
            self.on_rejected(exc)
            return None


async def _behind(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return True
    return False
