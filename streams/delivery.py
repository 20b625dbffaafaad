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

With ``RESCORER_PROCESSING_GUARANTEE=exactly_once`` a step writes all of
that (outputs, records, checkpoints, its own positions) for each partition in
the partition's Kafka transaction (`streams.transactions`), committed at the
step's one flush; the stores take the step's records once the commit is
through. A crash before the commit leaves nothing visible to read_committed
consumers, and the partition's next owner (this worker after a restart
included) starts from the last committed step.

Records go out through aiokafka's batch API, one batch per (topic,
partition) at a time: outputs of a customer go to the partition number of
its events, so every topic stays co-partitioned with the input.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import IllegalOperation, KafkaError

from schemas._base import json_bytes
from schemas.settings import TopicNames
from scoring.reassignment import RescoreResult
from streams.intake import Letter
from streams.settings import WorkerSettings
from streams.state.log_file import Position, fingerprint
from streams.state.tables import StateTables
from streams.transactions import CommitRefused

log = logging.getLogger(__name__)

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

    def __init__(self, message: str, errors: Sequence[BaseException] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


@dataclass
class _Pending:
    """A submitted batch: its future and its last record (for the acknowledged offsets)."""

    future: asyncio.Future[Any]
    topic: str
    partition: int
    records: int
    last: tuple[bytes | None, bytes]


ProducerFor = Callable[[int], Awaitable[AIOKafkaProducer]]
"""The producer that writes a partition (in exactly-once mode, in its transaction)."""


@dataclass
class _Open:
    """A batch being filled for one (topic, partition), and the producer it belongs to."""

    producer: AIOKafkaProducer
    batch: Any
    records: int
    last: tuple[bytes | None, bytes]


class _Outbox:
    """Records of one step, batched per (topic, partition), then awaited together."""

    def __init__(self, producer_for: ProducerFor) -> None:
        self.producer_for = producer_for
        self.open: dict[tuple[str, int], _Open] = {}
        self.pending: list[_Pending] = []

    async def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        opened = self.open.get((topic, partition))
        if opened is not None:
            if opened.batch.append(key=key, value=value, timestamp=None) is not None:
                opened.records += 1
                opened.last = (key, value)
                return
            await self._submit(topic, partition, opened)
        producer = opened.producer if opened is not None else await self.producer_for(partition)
        batch = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is not None:
            self.open[(topic, partition)] = _Open(producer, batch, 1, (key, value))
            return
        # Larger than a whole batch: the plain API sends it (or says why not).
        self.open.pop((topic, partition), None)
        future = await producer.send(topic, value, key=key, partition=partition)
        self.pending.append(_Pending(future, topic, partition, 1, (key, value)))

    async def _submit(self, topic: str, partition: int, opened: _Open) -> None:
        opened.batch.close()
        future = await opened.producer.send_batch(opened.batch, topic, partition=partition)
        self.pending.append(_Pending(future, topic, partition, opened.records, opened.last))

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
            raise DeliveryFailed(
                f"Kafka did not acknowledge {len(errors)} batches: {errors[0]!r}", errors
            )
        reached: dict[tuple[str, int], Position] = {}
        for sent, metadata in zip(pending, results, strict=True):
            last = metadata.offset + sent.records - 1  # type: ignore[union-attr] # errors raised
            held = reached.get((sent.topic, sent.partition))
            if held is None or last > held.offset:
                reached[(sent.topic, sent.partition)] = Position(last, fingerprint(*sent.last))
        return reached


class StepTransactions(Protocol):
    """Per-partition Kafka transactions (`streams.transactions.Transactions`)."""

    async def claim(self, partitions: Iterable[int]) -> None: ...
    async def producer(self, partition: int) -> AIOKafkaProducer: ...
    async def commit(self) -> None: ...
    async def stop(self) -> None: ...
    def fenced(
        self, errors: Iterable[BaseException], partitions: Iterable[int] | None = None
    ) -> CommitRefused | None: ...


class Delivery:
    """Owns the worker's producers and the order in which a step's effects land.

    At least once (the default), a step's outputs are acknowledged before its
    records are written, and its positions after its records (see above). With
    `transactions` (exactly once), all of a step's effects on a partition are
    written in that partition's transaction, committed at the step's flush:
    the order within a transaction no longer matters, since none of it is
    visible (to read_committed consumers, and to recovery) before the commit.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        state: StateTables,
        transactions: StepTransactions | None = None,
    ) -> None:
        self.settings = settings
        self.topics: TopicNames = settings.topics
        self.state = state
        self.transactions = transactions
        self.broken: DeliveryFailed | CommitRefused | None = None
        """Why a step failed: the in-memory state is then ahead of Kafka for good."""
        self._producer: AIOKafkaProducer | None = None
        self._outbox: _Outbox | None = None

    async def start(self) -> None:
        """Connect the producer (retrain requests and feedback's dead letters; at least
        once, every step's effects too)."""
        producer = AIOKafkaProducer(
            **self.settings.aiokafka_config(),
            acks="all",
            linger_ms=0,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=4 * MAX_BATCH_BYTES,
        )
        await producer.start()
        self._producer = producer
        self._outbox = _Outbox(self._producer_for)

    async def _producer_for(self, partition: int) -> AIOKafkaProducer:
        if self.transactions is not None:
            return await self.transactions.producer(partition)
        if self._producer is None:
            raise RuntimeError("delivery is not started")
        return self._producer

    async def claim(self, partitions: Iterable[int]) -> None:
        """Exactly once: own these partitions' transactional ids (fencing their previous
        owners) before their state is read. At least once: nothing to do."""
        if self.transactions is not None:
            await self.transactions.claim(partitions)

    async def stop(self) -> None:
        """Acknowledge what is in flight (positions included), then disconnect."""
        if self._producer is not None:
            try:
                await self.flush()
            finally:
                await self._producer.stop()
                self._producer = None
                self._outbox = None
                if self.transactions is not None:
                    await self.transactions.stop()

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
        if self.broken is not None:
            raise self.broken
        self.state.sealing()
        try:
            reached = await self.outbox.flush()
            if self.transactions is not None:
                await self.transactions.commit()
        except (DeliveryFailed, CommitRefused) as exc:
            if (broken := self._refused(exc)) is exc:
                raise
            raise broken from exc
        self.state.acknowledged(reached)

    def _refused(self, exc: Exception) -> DeliveryFailed | CommitRefused:
        """What a failed send, flush or commit makes of this delivery, broken from now on.

        Exactly once, Kafka refusing a transaction's send is `CommitRefused`, and a
        fenced producer (another worker owns the partitions) says so; an output
        not acknowledged stays `DeliveryFailed`.
        """
        errors = exc.errors if isinstance(exc, DeliveryFailed) else [exc]
        fenced = None if self.transactions is None else self.transactions.fenced(errors)
        broken: DeliveryFailed | CommitRefused
        if isinstance(exc, CommitRefused):
            broken = exc
        elif fenced is not None:
            broken = fenced
        elif isinstance(exc, DeliveryFailed):
            broken = exc
        else:
            broken = CommitRefused(f"Kafka refused the step's transaction: {exc!r}")
        self.broken = broken
        return broken

    async def flush(self) -> None:
        """Make everything sent so far durable, positions included (before a handover).

        After a failed step nothing more can be made durable: nothing happens."""
        if self.broken is not None:
            log.warning("nothing flushed: the worker's last step failed (%s)", self.broken)
            return
        await self._flush()
        if self.state.positions.held:
            await self.state.write_positions(self.outbox)
            await self._flush()

    async def deliver(
        self, step: Step, meanwhile: Callable[[], Step | None] | None = None
    ) -> Step | None:
        """Land `step`, and the step `meanwhile` computes while Kafka appends its outputs.

        Returns what `meanwhile` computed (None when there was nothing). Exactly
        once, a step Kafka refuses at any point (a send as well as the commit)
        raises `CommitRefused`, and so does every later step.
        """
        if self.broken is not None:
            raise self.broken
        try:
            return await self._deliver(step, meanwhile)
        except (KafkaError, IllegalOperation) as exc:  # a send Kafka refused outright
            if self.transactions is None:
                raise
            raise self._refused(exc) from exc

    async def _deliver(
        self, step: Step, meanwhile: Callable[[], Step | None] | None
    ) -> Step | None:
        await self._send_outputs(step)
        extra: Step | None = None
        if meanwhile is not None:
            await self.outbox.submit()
            await asyncio.sleep(0)  # the request goes on the wire before the CPU work
            extra = meanwhile()
            if extra is not None:
                await self._send_outputs(extra)
        if self.transactions is None:
            await self._flush()  # at least once: the outputs are acknowledged first
        for landed in (step, extra):
            if landed is not None:
                await self.state.write(self.outbox, landed.result.records, landed.checkpoints)
        if self.transactions is not None:
            self.state.positions.hold(step.positions)  # in the same transaction
            await self.state.write_positions(self.outbox)
            await self._flush()
            return extra
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
