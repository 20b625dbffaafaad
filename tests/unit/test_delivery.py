"""The order of a step's effects (`streams.delivery`): outputs, flush, records, positions.

The producer is a fake that acknowledges when told to, and the tables a fake
that writes one changelog record per customer record; the order in which
sends, acknowledgements and writes happen is the logic under test (Kafka is
in the exactness scenarios).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import IllegalOperation, ProducerFenced

from schemas.dead_letter import DeadLetter
from scoring.reassignment import RescoreResult
from streams.delivery import Delivery, DeliveryFailed, Step, _Outbox
from streams.intake import Letter
from streams.settings import WorkerSettings
from streams.state.log_file import Position, fingerprint
from streams.state.positions import Positions
from streams.transactions import CommitRefused, fence_of

DLQ = "events-dlq"
CHANGELOG = "customers-changelog"
POSITIONS = "positions-changelog"


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []
        self.capacity = capacity

    def append(self, *, key: bytes | None, value: bytes, timestamp: None) -> object | None:
        if len(self.records) >= self.capacity or len(value) > 1000:
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        pass


class FakeProducer:
    """Batches of `capacity` records; each send is acknowledged when `ack` says so."""

    def __init__(self, log: list[str], capacity: int = 3) -> None:
        self.log = log
        self.capacity = capacity
        self.offsets: dict[tuple[str, int], int] = {}
        self.unacked: list[tuple[asyncio.Future[Any], Any]] = []
        self.fail = False

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> Any:
        return self._sent(topic, partition, len(batch.records))

    async def send(self, topic: str, value: bytes, key: bytes, partition: int) -> Any:
        return self._sent(topic, partition, 1)

    def _sent(self, topic: str, partition: int, count: int) -> asyncio.Future[Any]:
        base = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = base + count
        self.log.append(f"send {topic}[{partition}] x{count}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(RuntimeError("broker said no"))
        else:
            future.set_result(SimpleNamespace(offset=base))
        return future


class FakeTables:
    """`StateTables` as delivery uses it: a changelog record per customer record."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.positions = Positions()
        self.acknowledged_offsets: list[dict[tuple[str, int], Position]] = []

    def sealing(self) -> None:
        self.log.append("seal")
        self.positions.seal()

    def acknowledged(self, offsets: Mapping[tuple[str, int], Position]) -> None:
        self.log.append("acknowledged")
        self.acknowledged_offsets.append(dict(offsets))
        self.positions.acknowledged()

    async def write(self, outbox: _Outbox, records: Mapping[str, Any], checkpoints: Any) -> None:
        for key in records:
            self.log.append(f"write {key}")
            await outbox.send(CHANGELOG, 0, key.encode(), b"record")

    async def write_positions(self, outbox: _Outbox) -> None:
        for partition, offset in self.positions.release().items():
            self.log.append(f"position {partition}={offset}")
            await outbox.send(POSITIONS, partition, b"p%d" % partition, b"%d" % offset)


def letter(n: int) -> Letter:
    received = datetime(2025, 1, 1, tzinfo=UTC)
    dead = DeadLetter(payload=b"x", error="bad", error_type="json", topic="events",
                      partition=0, offset=n, received_at=received)  # fmt: skip
    return Letter(0, b"k%d" % n, dead)


def step(keys: list[str], letters: int, positions: dict[int, int]) -> Step:
    result = RescoreResult(records=dict.fromkeys(keys))  # type: ignore[arg-type]
    return Step(result, [letter(n) for n in range(letters)], positions)


def only(producer: FakeProducer) -> Any:
    async def producer_for(partition: int) -> FakeProducer:
        return producer

    return producer_for


class FakeTransactions:
    """`streams.transactions.Transactions` as delivery uses it: one producer per
    partition, each beginning a transaction on first use; `commit` ends them."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.producers: dict[int, FakeProducer] = {}
        self.open: set[int] = set()
        self.refuse = False
        self.fence_sends = False
        self.fenced_quietly: list[int] = []
        """Partitions fenced while their sends fail with another error."""

    async def claim(self, partitions: Any) -> None:
        self.log.append(f"claim {sorted(partitions)}")

    async def producer(self, partition: int) -> FakeProducer:
        if self.fence_sends:
            raise ProducerFenced()
        if partition not in self.open:
            self.log.append(f"begin {partition}")
            self.open.add(partition)
        return self.producers.setdefault(partition, FakeProducer(self.log))

    async def commit(self) -> None:
        if self.refuse:
            raise CommitRefused("fenced")
        for partition in sorted(self.open):
            self.log.append(f"commit {partition}")
        self.open.clear()

    async def stop(self) -> None:
        self.log.append("stop transactions")

    def fenced(self, errors: Any, partitions: Any = None) -> CommitRefused | None:
        return fence_of(errors, self.fenced_quietly, partitions)


def delivery(
    log: list[str],
    tables: FakeTables,
    producer: FakeProducer,
    transactions: FakeTransactions | None = None,
) -> Delivery:
    settings = WorkerSettings(topics={"dead_letters": DLQ})  # type: ignore[arg-type]
    built = Delivery(settings, tables, transactions)  # type: ignore[arg-type]
    built._producer = producer  # type: ignore[assignment]
    built._outbox = _Outbox(built._producer_for)
    return built


def test_records_follow_the_flush_of_their_outputs_and_positions_the_next_flush() -> None:
    log: list[str] = []
    tables = FakeTables(log)
    landing = delivery(log, tables, FakeProducer(log))

    def meanwhile() -> Step:
        log.append("sweep computed")
        return step(["swept"], 0, {})

    async def scenario() -> None:
        await landing.deliver(step(["a", "b"], 4, {0: 10}), meanwhile)
        log.append("-- next step")
        await landing.deliver(step(["c"], 0, {0: 12}))
        log.append("-- handover")
        await landing.flush()

    asyncio.run(scenario())
    assert log == [
        "send events-dlq[0] x3",  # the fourth letter opened a new batch
        "send events-dlq[0] x1",  # submitted before the sweep slice is computed
        "sweep computed",
        "seal", "acknowledged",  # the outputs (and the slice's) are acknowledged...
        "write a", "write b", "write swept",  # ...before their records are written
        "send customers-changelog[0] x3",
        "-- next step",
        "seal", "acknowledged",  # this flush acknowledges the first step's records...
        "write c",
        "position 0=10",  # ...so the first step's position is written now
        "send customers-changelog[0] x1", "send positions-changelog[0] x1",
        "-- handover",
        "seal", "acknowledged",  # the last records, then the position they stand for
        "position 0=12", "seal", "send positions-changelog[0] x1", "acknowledged",
    ]  # fmt: skip
    assert tables.positions.durable == {0: 12}
    # The acknowledged offsets name the last record of each (topic, partition) written.
    assert tables.acknowledged_offsets[1] == {
        (CHANGELOG, 0): Position(2, fingerprint(b"swept", b"record"))
    }


def test_an_unacknowledged_output_stops_the_step_before_any_record_is_written() -> None:
    log: list[str] = []
    tables = FakeTables(log)
    producer = FakeProducer(log)
    producer.fail = True
    landing = delivery(log, tables, producer)
    with pytest.raises(DeliveryFailed, match="did not acknowledge 1 batches"):
        asyncio.run(landing.deliver(step(["a"], 1, {0: 5})))
    assert not any(entry.startswith(("write", "position")) for entry in log)
    assert "acknowledged" not in log
    assert tables.positions.held == {} and tables.positions.durable == {}


def test_a_value_larger_than_a_batch_goes_on_its_own() -> None:
    log: list[str] = []

    async def scenario() -> dict[tuple[str, int], Position]:
        outbox = _Outbox(only(FakeProducer(log)))
        await outbox.send(DLQ, 1, b"a", b"small")
        await outbox.send(DLQ, 1, b"b", b"x" * 2000)
        return await outbox.flush()

    reached = asyncio.run(scenario())
    assert log == ["send events-dlq[1] x1", "send events-dlq[1] x1"]
    assert reached == {(DLQ, 1): Position(1, fingerprint(b"b", b"x" * 2000))}


def test_exactly_once_a_step_is_one_transaction_per_partition_committed_at_its_flush() -> None:
    log: list[str] = []
    tables = FakeTables(log)
    transactions = FakeTransactions(log)
    landing = delivery(log, tables, FakeProducer(log), transactions)

    def meanwhile() -> Step:
        log.append("sweep computed")
        return step(["swept"], 0, {})

    async def scenario() -> None:
        await landing.claim({0})
        await landing.deliver(step(["a", "b"], 4, {0: 10}), meanwhile)
        log.append("-- next step")
        await landing.deliver(step(["c"], 0, {0: 12}))
        log.append("-- handover")
        await landing.flush()

    asyncio.run(scenario())
    assert log == [
        "claim [0]",
        "begin 0",
        "send events-dlq[0] x3", "send events-dlq[0] x1",
        "sweep computed",
        "write a", "write b", "write swept",  # the records, in the same transaction...
        "position 0=10",  # ...and the step's own position, not the previous step's
        "seal",
        "send customers-changelog[0] x3", "send positions-changelog[0] x1",
        "commit 0", "acknowledged",  # the stores take the step once it is committed
        "-- next step",
        "write c", "begin 0", "position 0=12", "seal",
        "send customers-changelog[0] x1", "send positions-changelog[0] x1",
        "commit 0", "acknowledged",
        "-- handover",
        "seal", "acknowledged",  # nothing is held between steps: nothing to write
    ]  # fmt: skip
    assert tables.positions.durable == {0: 12}
    assert tables.positions.held == {}


def transactional(
    log: list[str], refuse: bool = False, fenced: bool = False
) -> tuple[FakeTables, Delivery]:
    """Fake tables and a delivery in exactly-once mode whose Kafka refuses as told."""
    tables = FakeTables(log)
    transactions = FakeTransactions(log)
    transactions.refuse, transactions.fence_sends = refuse, fenced
    return tables, delivery(log, tables, FakeProducer(log), transactions)


def test_exactly_once_a_refused_commit_makes_nothing_of_the_step_durable() -> None:
    log: list[str] = []
    tables, landing = transactional(log, refuse=True)
    with pytest.raises(CommitRefused):
        asyncio.run(landing.deliver(step(["a"], 1, {0: 5})))
    assert "acknowledged" not in log
    assert tables.positions.durable == {}


def test_exactly_once_a_send_refused_mid_step_stops_this_and_every_later_step() -> None:
    log: list[str] = []
    tables, landing = transactional(log, fenced=True)

    async def scenario() -> None:
        with pytest.raises(CommitRefused, match="were given to another worker"):
            await landing.deliver(step(["a"], 1, {0: 5}))
        with pytest.raises(CommitRefused):
            await landing.deliver(step(["b"], 0, {0: 6}))
        await landing.flush()  # a revocation after the refusal: nothing to write, no error

    asyncio.run(scenario())
    assert not any(entry.startswith(("write", "seal", "acknowledged")) for entry in log)
    assert tables.positions.durable == {}


def test_exactly_once_a_send_failing_after_a_fence_says_the_partitions_moved() -> None:
    """aiokafka refuses a fenced producer's sends with IllegalOperation, not ProducerFenced."""
    log: list[str] = []
    tables, landing = transactional(log)
    assert landing.transactions is not None
    fake: Any = landing.transactions

    async def refused(partition: int) -> FakeProducer:
        raise IllegalOperation("Can't send messages while not in transaction")

    fake.producer, fake.fenced_quietly = refused, [0]
    with pytest.raises(CommitRefused, match=r"partitions \[0\] were given to another worker"):
        asyncio.run(landing.deliver(step(["a"], 1, {0: 5})))
    fake.fenced_quietly = []
    with pytest.raises(CommitRefused, match="partitions \\[0\\] were given"):
        asyncio.run(landing.deliver(step(["b"], 0, {0: 6})))  # broken from then on
    assert tables.positions.durable == {}
