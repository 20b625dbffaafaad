"""Every place the worker relies on Faust's (and aiokafka's) internals, in one module.

Faust is run, not forked: the worker subclasses a few of its classes and
calls a few private methods where the public API has no way to say what a
batched worker needs. Each is named here with the reason, and
``tests/unit/test_faust_internals.py`` fails loudly when an upgrade of
faust-streaming or aiokafka moves one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced
from faust.stores.memory import Store as MemoryStore
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

FETCH_MAX_WAIT_MS = 100
"""Faust's consumer long-polls fetches for 1.5 s, and the offset requests of table
recovery queue behind that fetch on the same connection: 1.5 s per request at
every start and rebalance. The worker's Faust consumer fetches only feedback and
standby changelogs, where a tenth of a second of waiting is plenty."""


class GenerationRecovery(Recovery):
    """Faust's table recovery, remembering which group generation it last completed.

    ``app.rebalancing`` alone cannot say that the tables are recovered for the
    assignment at hand: a recovery finishing late sets it back to False after
    the next rebalance has already begun (`Recovery.on_recovery_completed`
    checks the generation before the consumer learns the new one), and the
    worker would then take an assignment whose partitions are being handed
    over, or one whose tables are still being restored.
    """

    recovered_generation: int | None = None

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Faust's completion; the generation is remembered if it is still the current one."""
        await super().on_recovery_completed(generation_id)
        if self.app.consumer_generation_id == generation_id:
            self.recovered_generation = generation_id


class PromptTableManager(TableManager):
    """Faust's table manager without the one-second sleep before recovery can start,
    and with a recovery that says which generation it completed.

    Faust waits a second at start in case an agent still declares tables; the
    worker declares all of its tables before the app starts.
    """

    @property
    def recovery(self) -> GenerationRecovery:
        """`TableManager.recovery`, as a `GenerationRecovery`."""
        if self._recovery is None:
            self._recovery = GenerationRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        assert isinstance(self._recovery, GenerationRecovery)  # noqa: S101 - built here only
        return self._recovery

    async def on_start(self) -> None:
        """`TableManager.on_start` minus ``await self.sleep(1.0)``."""
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class FaustGroup:
    """What the pipeline asks about the consumer group, answered from Faust's app.

    `revocations` counts rebalances begun (Faust counts them in the consumer's
    thread the moment a revocation starts), `generation` is the group generation
    of the latest assignment, and `recovered_generation` the one whose tables
    recovery last completed.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app

    def rebalancing(self) -> bool:
        """Whether Faust is between a revocation and the end of its recovery."""
        return bool(self.app.rebalancing)

    def revocations(self) -> int:
        """Rebalances begun so far."""
        return int(self.app.rebalancing_count)

    def generation(self) -> int:
        """The group generation of the latest assignment."""
        return int(self.app.consumer_generation_id)

    def recovered_generation(self) -> int | None:
        """The generation whose table recovery completed last (None: none yet)."""
        recovery = getattr(self.app.tables, "recovery", None)
        return recovery.recovered_generation if isinstance(recovery, GenerationRecovery) else None


def shorten_fetch_wait(consumer: Any) -> Any:
    """Make a Faust-built aiokafka consumer long-poll for `FETCH_MAX_WAIT_MS` (before start)."""
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


def read_committed(consumer: Any) -> Any:
    """Make a Faust-built aiokafka consumer read committed records only (before start).

    Faust reads ``read_committed`` only in its own ``exactly_once`` mode, which the
    worker does not use (`streams.transactions` says why): its table recovery and
    standbys would otherwise apply records of aborted transactions. For changelogs
    written without transactions the two levels read the same records.
    """
    consumer._isolation_level = "read_committed"
    return consumer


def standby_lag(app: Any) -> int:
    """Changelog records the standby replicas still have to apply to catch up.

    Faust's recovery measures each standby partition against the changelog's
    end when the standby started: once the standby has read past it, Faust's
    figure goes negative (and `standby_remaining_total` sums those with the
    positive ones), so each partition counts at least 0 here.
    """
    remaining = app.tables.recovery.standby_remaining()
    return sum(max(0, int(value)) for value in remaining.values())


def aside_consumer(topics: Iterable[str]) -> type[faust_aiokafka.Consumer]:
    """A Faust aiokafka consumer class that leaves `topics` to someone else.

    The events topic stays in Faust's subscription: that is what makes the
    consumer group assign its partitions, co-partitioned with the tables'
    changelogs, and move them between workers. Faust never fetches it, though:
    its partitions are paused in the underlying aiokafka consumer the moment
    they are assigned (in the consumer's own thread, before any fetch), and left
    out of the partitions Faust resumes after recovery; `streams.batch_reader`
    reads them instead. The thread's consumer also long-polls for only
    `FETCH_MAX_WAIT_MS`, and reads committed records only.
    """
    aside = frozenset(topics)

    class AsideThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            return read_committed(shorten_fetch_wait(super()._create_worker_consumer(transport)))

        async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
            paused = [TopicPartition(t.topic, t.partition) for t in assigned if t.topic in aside]
            if paused:
                self._ensure_consumer().pause(*paused)
            await super().on_partitions_assigned(assigned, generation_id)

    class AsideConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return AsideThread(self, loop=self.loop, beacon=self.beacon)

        def _set_active_tps(self, tps: set[TP]) -> set[TP]:
            active: set[TP] = super()._set_active_tps(tps)
            active.difference_update({tp for tp in active if tp.topic in aside})
            return active

        def resume_partitions(self, tps: Iterable[TP]) -> None:
            super().resume_partitions({tp for tp in tps if tp.topic not in aside})

        def on_buffer_drop(self, tp: TP) -> None:
            if tp.topic not in aside:
                super().on_buffer_drop(tp)

    return AsideConsumer


async def commit_offsets(app: faust.App, offsets: Mapping[TP, int]) -> bool:
    """Commit given offsets through Faust's consumer.

    Faust's public ``commit`` commits only what went through its own stream,
    and none of the events do; its ``_commit`` takes the offsets to commit.
    """
    consumer: Any = app.consumer
    return bool(await consumer._commit(offsets))


def remember_partition(store: MemoryStore[Any, Any], key: str, partition: int) -> None:
    """Record a key's partition in Faust's memory store, as its recovery does, so that
    the store forgets the key when a later recovery finds the partition gone."""
    store._key_partition[key] = partition


def partition_of_keys(store: MemoryStore[Any, Any]) -> Mapping[Any, int]:
    """Each key's partition in Faust's memory store."""
    owner: Mapping[Any, int] = store._key_partition
    return owner


def producer_fenced(producer: Any) -> bool:
    """Whether an aiokafka producer was fenced: another producer with its
    transactional id started (a newer epoch), so nothing it sends is accepted.

    aiokafka says ``ProducerFenced`` only to whatever was waiting when the
    refusal came back: a send's future, or the commit then under way. Its
    sender task ends with that error and puts the transaction manager in its
    fatal state; a later send fails with ``IllegalOperation`` ("not in
    transaction"), a later ``begin_transaction`` or ``commit_transaction`` on
    an assertion of that state machine. Which a resumed zombie meets depends
    on timing; the sender task's end says what it was either way.
    """
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    if task is None or not task.done() or task.cancelled():
        return False
    return isinstance(task.exception(), ProducerFenced)
