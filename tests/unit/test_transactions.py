"""How `Transactions` names a refusal: a fenced producer says its partitions were
given to another worker, whichever call of aiokafka's met the fence."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import pytest
from aiokafka.errors import IllegalOperation, KafkaTimeoutError, ProducerFenced

from streams.settings import WorkerSettings
from streams.transactions import CommitRefused, Transactions


class Producer:
    """An aiokafka producer as `Transactions` calls it, with the sender task a
    fenced one ends (`streams.faust_internals.producer_fenced`)."""

    def __init__(self, sender_ends_with: BaseException | None, fails_with: BaseException) -> None:
        self.sender_ends_with = sender_ends_with
        self.fails_with = fails_with
        self.begun = 0
        self._sender = SimpleNamespace(sender_task=None)

    async def end_sender(self) -> None:
        async def run() -> None:
            if self.sender_ends_with is not None:
                raise self.sender_ends_with

        task = asyncio.ensure_future(run())
        await asyncio.wait([task])
        self._sender.sender_task = task

    async def begin_transaction(self) -> None:
        self.begun += 1
        if self.begun > 1:
            raise self.fails_with

    async def commit_transaction(self) -> None:
        raise self.fails_with

    async def stop(self) -> None:
        return None


def transactions(producers: dict[int, Producer]) -> Transactions:
    txns = Transactions(WorkerSettings(), max_batch_bytes=1 << 20)
    txns._producers.update(producers)  # type: ignore[arg-type]
    return txns


FENCED_STATE = AssertionError("Invalid state transition TransactionState.FATAL_ERROR -> ...")


@pytest.mark.parametrize(
    ("sender_ends_with", "says"),
    [
        (ProducerFenced(), "partitions [1] were given to another worker"),
        (None, "Kafka did not commit the step's transactions of partitions [1]: AssertionError"),
    ],
)
def test_a_commit_that_fails_after_a_fence_says_the_partitions_moved(
    sender_ends_with: BaseException | None, says: str
) -> None:
    async def check() -> None:
        producer = Producer(sender_ends_with, FENCED_STATE)
        await producer.end_sender()
        txns = transactions({1: producer})
        await txns.producer(1)
        with pytest.raises(CommitRefused, match=r".*".join(map(_escape, says.split()))):
            await txns.commit()
        with pytest.raises(CommitRefused):  # and every later step of the partition
            await txns.producer(1)

    asyncio.run(check())


@pytest.mark.parametrize(
    ("sender_ends_with", "says"),
    [
        (ProducerFenced(), "partitions [2] were given to another worker"),
        (KafkaTimeoutError(), "no transaction could begin on partition 2: AssertionError"),
    ],
)
def test_a_transaction_that_cannot_begin_after_a_fence_says_the_partitions_moved(
    sender_ends_with: BaseException, says: str
) -> None:
    async def check() -> None:
        producer = Producer(sender_ends_with, FENCED_STATE)
        producer.begun = 1  # its first transaction was committed earlier
        await producer.end_sender()
        txns = transactions({2: producer})
        with pytest.raises(CommitRefused, match=r".*".join(map(_escape, says.split()))):
            await txns.producer(2)

    asyncio.run(check())


def test_a_commit_refused_with_producer_fenced_says_so_without_the_sender() -> None:
    async def check() -> None:
        producer = Producer(None, ProducerFenced())
        txns = transactions({3: producer})
        await txns.producer(3)
        with pytest.raises(CommitRefused, match="were given to another worker"):
            await txns.commit()

    asyncio.run(check())


def _escape(word: str) -> str:
    return re.escape(word)


def test_a_fence_is_known_from_the_sender_or_from_producer_fenced_itself() -> None:
    async def check() -> None:
        fenced, failed, running = (
            Producer(ProducerFenced(), FENCED_STATE),
            Producer(KafkaTimeoutError(), FENCED_STATE),
            Producer(None, FENCED_STATE),
        )
        await fenced.end_sender()
        await failed.end_sender()
        txns = transactions({5: fenced, 6: failed, 7: running})
        quiet = IllegalOperation("Can't send messages while not in transaction")
        assert "partitions [5] were given" in str(txns.fenced([quiet]))
        assert txns.fenced([quiet], [6, 7]) is None
        assert "partitions [6] were given" in str(txns.fenced([ProducerFenced()], [6]))
        assert "its partitions were given" in str(
            transactions({7: running}).fenced([ProducerFenced()])
        )

    asyncio.run(check())
