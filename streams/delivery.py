"""The order of effects, in one place: send, flush, persist, positions.

Each pipeline step delivers an event batch and, computed while the batch's
outputs are on their way to Kafka, a sweep slice, with one flush (one wait
for Kafka's acknowledgements) per step:

1. the batch's dead letters, segment changes, risk-band changes and assignments
   are sent; while
   Kafka appends them, the slice is computed and its outputs are sent too;
   then the step flushes: all of it is acknowledged, together with what the
   previous step sent after its own flush;
2. only then are the step's touched customer records (and centroid
   checkpoints) written to their tables and changelogs (`streams.state`: in
   memory at once, in the store's files once the next flush acknowledged
   them, with the changelog offsets Kafka returned);
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas._base import json_bytes
from schemas.settings import TopicNames
from scoring.reassignment import RescoreResult
from streams.intake import Letter
from streams.settings import WorkerSettings
from streams.state.log_file import Position, fingerprint
from streams.state.tables import StateTables

MAX_BATCH_BYTES = 512 * 1024


@dataclass(frozen=True)
class Step:
    """What one delivery lands: the core's result, dead letters, positions, checkpoints."""

    result: RescoreResult
    letters: Sequence[Letter] = ()
    positions: Mapping[int, int] = field(default_factory=dict)
    """Partition -> next input offset, for partitions whose input the step consumed."""
    checkpoints: Mapping[int, dict[str, object]] = field(default_factory=dict)


class DeliveryFailed(RuntimeError):
    """Kafka did not acknowledge a record; nothing after it was persisted."""


@dataclass
class _Pending:
    """A submitted batch: its future and its last record (for the acknowledged offsets)."""

    future: asyncio.Future[Any]
    topic: str
    partition: int
    records: int
    last: tuple[bytes | None, bytes]


class _Outbox:
    """Records of one step, batched per (topic, partition), then awaited together."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.open: dict[tuple[str, int], tuple[Any, int, tuple[bytes | None, bytes]]] = {}
        self.pending: list[_Pending] = []

    async def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        opened = self.open.get((topic, partition))
        batch = self.producer.create_batch() if opened is None else opened[0]
        count = 0 if opened is None else opened[1]
        if batch.append(key=key, value=value, timestamp=None) is not None:
            self.open[(topic, partition)] = (batch, count + 1, (key, value))
            return
        if opened is not None:
            await self._submit(topic, partition, opened)
        batch = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is not None:
            self.open[(topic, partition)] = (batch, 1, (key, value))
            return
        # Larger than a whole batch: the plain API sends it (or says why not).
        self.open.pop((topic, partition), None)
        future = await self.producer.send(topic, value, key=key, partition=partition)
        self.pending.append(_Pending(future, topic, partition, 1, (key, value)))

    async def _submit(
        self, topic: str, partition: int, opened: tuple[Any, int, tuple[bytes | None, bytes]]
    ) -> None:
        batch, count, last = opened
        batch.close()
        future = await self.producer.send_batch(batch, topic, partition=partition)
        self.pending.append(_Pending(future, topic, partition, count, last))

    async def submit(self) -> None:
        """Hand every open batch to the producer (sent as soon as the loop runs)."""
        for (topic, partition), opened in self.open.items():
            await self._submit(topic, partition, opened)
        self.open.clear()

    async def flush(self) -> dict[tuple[str, int], Position]:
        """Submit what is open, wait until Kafka acknowledged all of it, and say where it is.

        Returns, per (topic, partition) written to, the offset of the last record
        and its fingerprint.
        """
        await self.submit()
        pending, self.pending = self.pending, []
        if not pending:
            return {}
        results = await asyncio.gather(*(p.future for p in pending), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise DeliveryFailed(f"Kafka did not acknowledge {len(errors)} batches: {errors[0]!r}")
        reached: dict[tuple[str, int], Position] = {}
        for sent, metadata in zip(pending, results, strict=True):
            last = metadata.offset + sent.records - 1  # type: ignore[union-attr] # errors raised
            held = reached.get((sent.topic, sent.partition))
            if held is None or last > held.offset:
                reached[(sent.topic, sent.partition)] = Position(last, fingerprint(*sent.last))
        return reached


class Delivery:
    """Owns the worker's producer and the order in which a step's effects land."""

    def __init__(self, settings: WorkerSettings, state: StateTables) -> None:
        self.settings = settings
        self.topics: TopicNames = settings.topics
        self.state = state
        self._producer: AIOKafkaProducer | None = None
        self._outbox: _Outbox | None = None

    async def start(self) -> None:
        """Connect the producer."""
        producer = AIOKafkaProducer(
            **self.settings.aiokafka_config(),
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
        self.state.sealing()
        self.state.acknowledged(await self.outbox.flush())

    async def flush(self) -> None:
        """Make everything sent so far durable, positions included (before a handover)."""
        await self._flush()
        if self.state.positions.held:
            await self.state.write_positions(self.outbox)
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
        for landed in (step, extra):
            if landed is not None:
                await self.state.write(self.outbox, landed.result.records, landed.checkpoints)
        await self.state.write_positions(self.outbox)
        self.state.positions.hold(step.positions)
        await self.outbox.submit()
        return extra

    async def _send_outputs(self, step: Step) -> None:
        outbox = self.outbox
        topics = self.topics
        for letter in step.letters:
            await outbox.send(
                topics.dead_letters, letter.partition, letter.key,
                json_bytes(letter.letter),
            )  # fmt: skip
        records = step.result.records
        leave_out = None if self.settings.changes_include_features else {"features"}
        for change in step.result.changes:
            key = change.customer_id
            await outbox.send(
                topics.changes, records[key].partition, key.encode(),
                json_bytes(change, exclude=leave_out),
            )  # fmt: skip
        for crossing in step.result.band_changes:
            key = crossing.customer_id
            await outbox.send(
                topics.band_changes, records[key].partition, key.encode(),
                json_bytes(crossing),
            )  # fmt: skip
        for assignment in step.result.assignments:
            key = assignment.customer_id
            await outbox.send(
                topics.assignments, records[key].partition, key.encode(),
                json_bytes(assignment),
            )  # fmt: skip

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one record outside the step order (a retrain request) and wait for it."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("delivery is not started")
        await producer.send_and_wait(topic, value, key=key)
