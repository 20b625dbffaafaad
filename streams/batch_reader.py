"""The events topic read in whole fetched batches, off Faust's per-message stream.

Faust's consumer group decides which event partitions this worker owns (and
keeps the events topic subscribed, paused, so partitions co-partition with
the tables' changelogs); this reader is a group-less aiokafka consumer that
`assign`s exactly those partitions and reads them from the worker's own
persisted positions. A batch is whatever one ``getmany`` returns: every
record from each partition's position on, in offset order.

A consumer that stops fetching is replaced. After a broker outage longer
than its request timeout, aiokafka's consumer sometimes brings nothing more,
with no error, its fetch requests waiting on answers that never come (seen
with `py-spy` and mode's SIGUSR1 task dump in the broker-outage scenario;
aio-libs/aiokafka#1037 reports the like): the worker then sat on its
partitions doing nothing. So when fetches have brought
nothing for `STALL_SECONDS` while the broker's end offsets are past the
positions (or it does not answer), a new consumer is started, given the
same partitions at the offsets delivered so far, and the old one is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from schemas.settings import RescorerSettings

FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024
TOP_UP_SECONDS = 0.005
STALL_SECONDS = 20.0
"""Fetches bringing nothing this long: the broker is asked whether there was anything."""
ASK_SECONDS = 10.0
"""How long the end offsets, a consumer's start and an old consumer's stop may take."""

log = logging.getLogger(__name__)
T = TypeVar("T")


def stalled(positions: Mapping[int, int], ends: Mapping[int, int] | None) -> list[int]:
    """The partitions whose end offset is past the position (all of them when the broker
    gave no end offsets: no answer is no evidence of health).

    >>> stalled({0: 5, 1: 9}, {0: 5, 1: 12})
    [1]
    >>> stalled({0: 5}, None)
    [0]
    """
    if ends is None:
        return sorted(positions)
    return sorted(p for p, at in positions.items() if ends.get(p, at) > at)


async def within(work: Awaitable[T], seconds: float) -> T:
    """`work`'s result if it ends within `seconds`, else TimeoutError at once.

    Unlike `asyncio.wait_for`, which waits for the cancelled work to end: a
    stuck consumer's stop or request can ignore its cancellation, and the
    step would wait on it for ever. Such work is cancelled and left behind.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        task.add_done_callback(_forget)
        raise TimeoutError(f"not done in {seconds:.0f} s")
    return task.result()


def _forget(task: asyncio.Future[Any]) -> None:
    """Take the outcome of work left behind, so asyncio does not report it unretrieved."""
    if not task.cancelled():
        task.exception()


class BatchReader:
    """Reads the owned event partitions from given positions, a batch at a time."""

    def __init__(
        self,
        settings: RescorerSettings,
        topic: str,
        on_renewal: Callable[[], None] = lambda: None,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._on_renewal = on_renewal
        self._stall_seconds = stall_seconds
        self._next: dict[int, int] = {}
        """Per assigned partition, the offset after the last record delivered."""
        self._quiet_since: float | None = None
        self._quiet_logged = False
        """Whether this quiet spell's healthy check was logged (once per spell)."""

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **self.settings.aiokafka_config(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # an upstream transaction's events once committed
            max_partition_fetch_bytes=FETCH_BYTES_PER_PARTITION,
        )

    async def start(self) -> None:
        """Connect (no partitions yet)."""
        consumer = self._new_consumer()
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
        self._next = dict(resolved)
        self._quiet_since = None
        self._quiet_logged = False
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
        if records:
            self._quiet_since = None
            self._quiet_logged = False
            return records
        now = time.monotonic()
        if self._quiet_since is None:
            self._quiet_since = now
        elif now - self._quiet_since >= self._stall_seconds:
            self._quiet_since = now  # asked again one period later, if still quiet
            await self._renew_if_stalled()
        return records

    def _flatten(
        self, fetched: dict[Any, list[ConsumerRecord[Any, Any]]]
    ) -> list[ConsumerRecord[Any, Any]]:
        records: list[ConsumerRecord[Any, Any]] = []
        delivered = self._next
        for tp, batch in fetched.items():
            if batch:
                records.extend(batch)
                delivered[tp.partition] = batch[-1].offset + 1
        return records

    async def _renew_if_stalled(self) -> None:
        """Replace the consumer when the broker holds records it does not fetch."""
        consumer = self.consumer
        assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not assigned:
            return
        ends: dict[int, int] | None
        try:
            found = await within(consumer.end_offsets(assigned), ASK_SECONDS)
            ends = {tp.partition: int(offset) for tp, offset in found.items()}
            # A transaction's marker ends a partition past its last record: the fetch
            # position (past the markers) is what the end offset is compared with.
            at = {tp.partition: await within(consumer.position(tp), ASK_SECONDS)
                  for tp in assigned}  # fmt: skip
        except (KafkaError, TimeoutError):
            ends, at = None, dict(self._next)
        behind = stalled(at, ends)
        if not behind:
            if not self._quiet_logged:
                self._quiet_logged = True
                log.info("no events fetched for %.0f s, and the broker holds none past the "
                         "positions %s", self._stall_seconds, at)  # fmt: skip
            return
        why = "does not answer" if ends is None else f"holds records past partitions {behind}"
        log.warning("no events fetched for %.0f s while the broker %s: replacing the event "
                    "consumer", self._stall_seconds, why)  # fmt: skip
        await self._renew()

    async def _renew(self) -> None:
        """A new consumer on the same partitions, from the offsets delivered so far; the old
        one is kept when the new one cannot start (the broker is away)."""
        fresh = self._new_consumer()
        try:
            await within(fresh.start(), ASK_SECONDS)
        except (KafkaError, TimeoutError) as exc:
            log.warning("a new event consumer could not start (%s): keeping the old one", exc)
            with contextlib.suppress(Exception):
                await within(fresh.stop(), ASK_SECONDS)
            return
        old, self._consumer = self._consumer, fresh
        await self.assign(dict(self._next))
        self._on_renewal()
        log.warning("event consumer replaced: reading on from %s", self._next)
        if old is not None:
            with contextlib.suppress(Exception):
                await within(old.stop(), ASK_SECONDS)

    def highwater(self, partition: int) -> int | None:
        """The partition's end offset as of the last fetch (None before one)."""
        consumer = self.consumer
        tp = self._tp(partition)
        if tp not in consumer.assignment():
            return None
        mark = consumer.highwater(tp)
        return None if mark is None else int(mark)
