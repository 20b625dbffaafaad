"""Kafka transactions for exactly-once steps: one transactional producer per owned partition.

Everything a step writes for a customer goes to the partition number of the
customer's events (every topic is co-partitioned with the input): its dead
letters, segment changes, risk-band changes, assignments, changelog records,
the partition's centroid checkpoint and input position. So each owned
partition gets a producer of its own, with the transactional id
``{app_id}-step-{partition}``, and a step's effects on a partition are one
transaction: a ``read_committed`` consumer sees all of them or none.

**Fencing.** Starting a producer registers its transactional id with the
transaction coordinator (InitProducerId), which bumps the id's epoch: a
transaction the partition's previous owner left open is aborted, and every
later send or commit of that owner (a zombie after a long pause, the other
side of a network partition) is refused with ``ProducerFenced``. The durable
store claims a partition this way before it reads the partition's changelog
to its end (`streams.state.store`), so what it reads is exactly what was
committed, and nobody else can add to it.

**Commit order.** `commit` ends every open transaction, in parallel. A
refused or failed commit leaves the in-memory state ahead of Kafka: the
worker must stop (`CommitRefused`), and its partitions are brought up again
from what was committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced

from schemas.settings import transactional_id_prefix
from streams.faust_internals import producer_fenced
from streams.settings import WorkerSettings

log = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_MS = 60_000
"""How long the coordinator keeps a transaction open before it aborts it itself."""


class CommitRefused(RuntimeError):
    """A transaction could not be committed; nothing of it is visible to read_committed."""


def fenced_out(partitions: Iterable[int] | None = None) -> CommitRefused:
    """The refusal of a worker whose partitions another worker has taken."""
    which = "its partitions" if partitions is None else f"partitions {sorted(partitions)}"
    return CommitRefused(
        f"{which} were given to another worker, whose producer fenced this one's: the "
        "step in flight is not committed (nothing of it is visible to read_committed "
        "consumers)"
    )


def fence_of(
    errors: Iterable[BaseException], fenced: Iterable[int], partitions: Iterable[int] | None = None
) -> CommitRefused | None:
    """`fenced_out` when another worker's producer fenced this one's, else None.

    `fenced` are the partitions whose producer is known fenced
    (`streams.faust_internals.producer_fenced`): aiokafka says ``ProducerFenced``
    only to what was waiting when the refusal came, and later sends, begins and
    commits fail with other errors (IllegalOperation, an assertion). Failing
    that, a ``ProducerFenced`` among `errors` names `partitions` (None: all).

    >>> str(fence_of([AssertionError()], [2])).split(" were")[0]
    'partitions [2]'
    >>> fence_of([AssertionError()], []) is None
    True
    """
    known = sorted(fenced)
    if known:
        return fenced_out(known)
    if any(isinstance(e, ProducerFenced) for e in errors):
        return fenced_out(partitions)
    return None


def transactional_id(app_id: str, partition: int) -> str:
    """The transactional id of the producer that writes a partition's steps.

    >>> transactional_id("segment-rescorer", 3)
    'segment-rescorer-step-3'
    """
    return f"{transactional_id_prefix(app_id)}{partition}"


class Transactions:
    """The transactional producers of the partitions this worker claimed."""

    def __init__(self, settings: WorkerSettings, max_batch_bytes: int) -> None:
        self.settings = settings
        self.max_batch_bytes = max_batch_bytes
        self._producers: dict[int, AIOKafkaProducer] = {}
        self._open: set[int] = set()
        self._refused: dict[int, CommitRefused] = {}
        """Partitions whose producer Kafka refused: no transaction can begin there again."""
        self._lock = asyncio.Lock()

    @property
    def claimed(self) -> set[int]:
        """The partitions whose producers are started."""
        return set(self._producers)

    async def claim(self, partitions: Iterable[int]) -> None:
        """Own exactly these partitions' transactional ids: start (and so fence) the new
        ones' producers, stop the others'."""
        wanted = set(partitions)
        async with self._lock:
            for partition in sorted(set(self._producers) - wanted):
                await self._release(partition)
            new = sorted(wanted - set(self._producers))
            started = await asyncio.gather(*(self._start(p) for p in new))
            self._producers.update(zip(new, started, strict=True))
            if new:
                log.info("transactional ids of partitions %s claimed (previous owners fenced)", new)

    async def _start(self, partition: int) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **self.settings.aiokafka_config(),
            transactional_id=transactional_id(self.settings.app_id, partition),
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            linger_ms=0,
            max_batch_size=self.max_batch_bytes,
            max_request_size=4 * self.max_batch_bytes,
        )
        await producer.start()  # InitProducerId: the epoch moves on, the old owner is fenced
        return producer

    async def producer(self, partition: int) -> AIOKafkaProducer:
        """The producer of a claimed partition, in a transaction (begun on first use)."""
        producer = self._producers.get(partition)
        if producer is None:
            raise CommitRefused(f"partition {partition} is not claimed by this worker")
        if partition in self._refused:
            raise self._refused[partition]
        if partition not in self._open:
            try:
                await producer.begin_transaction()
            except Exception as exc:  # aiokafka asserts once its producer is fenced
                refusal = self.fenced([exc], [partition]) or CommitRefused(
                    f"no transaction could begin on partition {partition}: {exc!r}"
                )
                self._refused[partition] = refusal
                raise refusal from exc
            self._open.add(partition)
        return producer

    async def commit(self) -> None:
        """Commit every open transaction (in parallel); `CommitRefused` if any is not."""
        opened, self._open = sorted(self._open), set()
        if not opened:
            return
        results = await asyncio.gather(
            *(self._producers[p].commit_transaction() for p in opened), return_exceptions=True
        )
        outcomes = zip(opened, results, strict=True)
        failed = {p: r for p, r in outcomes if isinstance(r, BaseException)}
        if not failed:
            return
        error = next(iter(failed.values()))
        refusal = self.fenced(failed.values(), failed) or CommitRefused(
            f"Kafka did not commit the step's transactions of partitions {sorted(failed)}: "
            f"{error!r}"
        )
        self._refused.update(dict.fromkeys(failed, refusal))
        raise refusal from error

    def fenced(
        self, errors: Iterable[BaseException], partitions: Iterable[int] | None = None
    ) -> CommitRefused | None:
        """`fence_of` these errors of these claimed partitions (None: all of them)."""
        among = list(self._producers if partitions is None else partitions)
        known = [p for p in among if p in self._producers and producer_fenced(self._producers[p])]
        return fence_of(errors, known, partitions)

    async def stop(self) -> None:
        """Stop every producer (an open transaction is aborted by the next owner's claim)."""
        async with self._lock:
            for partition in sorted(self._producers):
                await self._release(partition)

    async def _release(self, partition: int) -> None:
        producer = self._producers.pop(partition)
        self._open.discard(partition)
        self._refused.pop(partition, None)
        try:
            await producer.stop()
        except Exception as exc:  # a fenced producer may fail to close cleanly
            log.info("producer of partition %d stopped with %r", partition, exc)
