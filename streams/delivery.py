"""The order of effects, in one place: send, flush, persist, positions.

Each pipeline step delivers an event batch and, computed while the batch's
outputs are on their way to Kafka, a sweep slice, with one flush (one wait
for Kafka's acknowledgements) per step:

1. the batch's dead letters, segment changes and assignments are sent; while
   Kafka appends them, the slice is computed and its outputs are sent too;
   then the step flushes: all of it is acknowledged, together with what the
   previous step sent after its own flush;
2. only then are the step's touched customer records (and centroid
   checkpoints) written to their tables and changelogs;
3. the input positions the *previous* step reached are written now, because
   its records were acknowledged by this step's flush; this step's positions
   wait for the next flush in the same way (or for a revocation or shutdown,
   which flush twice: records, then positions). A position is *durable* once
   acknowledged, and only durable positions are committed to the group.

Every record is therefore written after the outputs it stands for, and every
position after the records. A crash before a step's records are acknowledged
replays its batch against the old state and re-sends its outputs (at least
once). A crash after that replays events whose ids the restored state
already holds, so they count once and emit nothing again. A swept customer
whose record was lost is simply due again after a restart.

Records go out through aiokafka's batch API, one batch per (topic,
partition) at a time: outputs of a customer go to the partition number of
its events, so every topic stays co-partitioned with the input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.settings import TopicNames
from scoring.reassignment import Rescored
from streams.intake import Letter
from streams.kafka_clients import aiokafka_config
from streams.settings import WorkerSettings
from streams.table_access import PartitionedTable

MAX_BATCH_BYTES = 512 * 1024


@dataclass(frozen=True)
class Step:
    """What one delivery lands: the core's result, dead letters, positions, checkpoints."""

    result: Rescored
    letters: Sequence[Letter] = ()
    positions: Mapping[int, int] = field(default_factory=dict)
    """Partition -> next input offset, for partitions whose input the step consumed."""
    checkpoints: Mapping[int, dict[str, object]] = field(default_factory=dict)


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge a record; nothing after it was persisted."""


class _Outbox:
    """Records of one step, batched per (topic, partition), then awaited together."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.open: dict[tuple[str, int], Any] = {}
        self.pending: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        batch = self.open.get((topic, partition))
        if batch is None:
            batch = self.open[(topic, partition)] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is not None:
            return
        await self._submit(topic, partition, batch)
        batch = self.open[(topic, partition)] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            # Larger than a whole batch: the plain API sends it (or says why not).
            del self.open[(topic, partition)]
            future = await self.producer.send(topic, value, key=key, partition=partition)
            self.pending.append(future)

    async def _submit(self, topic: str, partition: int, batch: Any) -> None:
        batch.close()
        self.pending.append(await self.producer.send_batch(batch, topic, partition=partition))

    async def submit(self) -> None:
        """Hand every open batch to the producer (sent as soon as the loop runs)."""
        for (topic, partition), batch in self.open.items():
            await self._submit(topic, partition, batch)
        self.open.clear()

    async def flush(self) -> None:
        """Submit what is open and wait until Kafka acknowledged all of it."""
        await self.submit()
        pending, self.pending = self.pending, []
        if not pending:
            return
        results = await asyncio.gather(*pending, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise DeliveryFailed(f"Kafka did not acknowledge {len(errors)} batches: {errors[0]!r}")


class Delivery:
    """Owns the worker's producer and the order in which a step's effects land."""

    def __init__(
        self,
        settings: WorkerSettings,
        records: PartitionedTable,
        checkpoints: PartitionedTable,
        positions: PartitionedTable,
    ) -> None:
        self.settings = settings
        self.topics: TopicNames = settings.topics
        self.records = records
        self.checkpoints = checkpoints
        self.positions = positions
        self.durable_positions: dict[int, int] = {}
        """Next input offset per partition whose position record Kafka acknowledged."""
        self._sent_positions: dict[int, int] = {}
        self._held_positions: dict[int, int] = {}
        """Positions reached by a step whose records are not acknowledged yet."""
        self._producer: AIOKafkaProducer | None = None
        self._outbox: _Outbox | None = None

    async def start(self) -> None:
        """Connect the producer."""
        producer = AIOKafkaProducer(
            **aiokafka_config(self.settings),
            acks="all",
            linger_ms=0,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=4 * MAX_BATCH_BYTES,
        )
        await producer.start()
        self._producer = producer
        self._outbox = _Outbox(producer)

    async def stop(self) -> None:
        """Acknowledge what is in flight (positions included), then disconnect."""
        if self._producer is not None:
            try:
                await self.flush()
            finally:
                await self._producer.stop()
                self._producer = None
                self._outbox = None

    @property
    def started(self) -> bool:
        """Whether the producer is connected."""
        return self._producer is not None

    @property
    def outbox(self) -> _Outbox:
        if self._outbox is None:
            raise RuntimeError("delivery is not started")
        return self._outbox

    async def _flush(self) -> None:
        await self.outbox.flush()
        self.durable_positions.update(self._sent_positions)
        self._sent_positions.clear()

    async def _release_positions(self) -> None:
        """Write the held positions: the records they stand after were acknowledged."""
        held, self._held_positions = self._held_positions, {}
        for partition, next_offset in held.items():
            key = position_key(partition)
            value = {"next_offset": next_offset}
            self.positions.put(key, partition, value)
            await self.outbox.send(
                self.positions.changelog, partition, key.encode(), json.dumps(value).encode()
            )
            self._sent_positions[partition] = next_offset

    def forget(self, partition: int) -> None:
        """A partition is gone: its positions are no longer this worker's to commit."""
        self.durable_positions.pop(partition, None)
        self._sent_positions.pop(partition, None)
        self._held_positions.pop(partition, None)

    async def flush(self) -> None:
        """Make everything sent so far durable, positions included (before a handover)."""
        await self._flush()
        if self._held_positions:
            await self._release_positions()
            await self._flush()

    async def deliver(
        self, step: Step, meanwhile: Callable[[], Step | None] | None = None
    ) -> Step | None:
        """Land `step`, and the step `meanwhile` computes while Kafka appends its outputs.

        Returns what `meanwhile` computed (None when there was nothing).
        """
        await self._send_outputs(step)
        extra: Step | None = None
        if meanwhile is not None:
            await self.outbox.submit()
            await asyncio.sleep(0)  # the request goes on the wire before the CPU work
            extra = meanwhile()
            if extra is not None:
                await self._send_outputs(extra)
        await self._flush()
        await self._send_state(step)
        if extra is not None:
            await self._send_state(extra)
        await self._release_positions()
        self._held_positions.update(step.positions)
        await self.outbox.submit()
        return extra

    async def _send_outputs(self, step: Step) -> None:
        outbox = self.outbox
        topics = self.topics
        for letter in step.letters:
            await outbox.send(
                topics.dead_letters, letter.partition, letter.key,
                letter.letter.model_dump_json().encode(),
            )  # fmt: skip
        records = step.result.records
        leave_out = None if self.settings.changes_include_features else {"features"}
        for change in step.result.changes:
            key = change.customer_id
            await outbox.send(
                topics.changes, records[key].partition, key.encode(),
                change.model_dump_json(exclude=leave_out).encode(),
            )  # fmt: skip
        for assignment in step.result.assignments:
            key = assignment.customer_id
            await outbox.send(
                topics.assignments, records[key].partition, key.encode(),
                assignment.model_dump_json().encode(),
            )  # fmt: skip

    async def _send_state(self, step: Step) -> None:
        outbox = self.outbox
        for key, record in step.result.records.items():
            data = record.dumps()
            self.records.put(key, record.partition, data)
            await outbox.send(self.records.changelog, record.partition, key.encode(), data)
        for partition, checkpoint in step.checkpoints.items():
            key = f"p{partition}"
            self.checkpoints.put(key, partition, checkpoint)
            await outbox.send(
                self.checkpoints.changelog, partition, key.encode(), json.dumps(checkpoint).encode()
            )

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one record outside the step order (a retrain request) and wait for it."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("delivery is not started")
        await producer.send_and_wait(topic, value, key=key)


def position_key(partition: int) -> str:
    """The positions table's key of a partition."""
    return f"p{partition}"
