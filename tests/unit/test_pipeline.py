"""The step loop's decisions, with fakes of our own interfaces (no Kafka, no Faust).

What is checked here is the order the worker keeps around a rebalance: an
assignment is taken only once its own generation's recovery completed and no
rebalance began since, and a batch fetched before a revocation is dropped
whole, so a worker never writes for partitions the group is handing over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from scoring.standings import Standings
from streams.metrics import WorkerMetrics
from streams.ownership import Ownership
from streams.pipeline import Pipeline
from streams.settings import WorkerSettings
from streams.state.positions import Positions
from streams.worker_state import WorkerState
from tests.support.toy_model import toy_model

TOPIC = "events"


@dataclass
class Group:
    rebalancing_now: bool = False
    revoked: int = 0
    recovered: int | None = None

    def rebalancing(self) -> bool:
        return self.rebalancing_now

    def revocations(self) -> int:
        return self.revoked

    def recovered_generation(self) -> int | None:
        return self.recovered


@dataclass
class Tables:
    positions: Positions = field(default_factory=Positions)
    caught_up: list[list[int]] = field(default_factory=list)

    def record(self, key: str, partition: int) -> None:
        return None

    def standings(self, partition: int) -> Standings:
        return Standings.of_values([], [])

    def checkpoint(self, partition: int) -> None:
        return None

    def persisted_position(self, partition: int) -> int | None:
        return 10 * partition

    def forget(self, partition: int) -> None:
        self.positions.forget(partition)

    async def catch_up(self, partitions: Iterable[int]) -> dict[str, int]:
        self.caught_up.append(sorted(partitions))
        return {}


@dataclass
class Reader:
    """Hands out what a test queues; `on_fetch` runs while a fetch waits (a revocation)."""

    batches: list[list[Any]] = field(default_factory=list)
    assigned: list[dict[int, int | None]] = field(default_factory=list)
    on_fetch: Any = None

    async def assign(self, wanted: Mapping[int, int | None]) -> dict[int, int]:
        self.assigned.append(dict(wanted))
        return {}

    async def fetch(self, timeout: float, max_records: int) -> list[Any]:
        batch = self.batches.pop(0) if self.batches else []
        hook, self.on_fetch = self.on_fetch, None
        if hook is not None:
            await hook()
        return batch

    def highwater(self, partition: int) -> int | None:
        return None


@dataclass
class Delivery:
    delivered: list[Any] = field(default_factory=list)

    async def deliver(self, step: Any, meanwhile: Any = None) -> Any:
        """As `streams.delivery.Delivery.deliver`: the sweep slice is computed meanwhile."""
        self.delivered.append(step)
        return None if meanwhile is None else meanwhile()


def event(partition: int, offset: int) -> Any:
    body = (
        b'{"schema_version":1,"event_id":"e%d","customer_id":"c%d","type":"purchase",'
        b'"occurred_at":"2025-01-01T00:00:00Z","amount":5.0,"currency":"USD"}'
    ) % (offset, offset)
    return SimpleNamespace(topic=TOPIC, partition=partition, offset=offset,
                           key=b"c%d" % offset, value=body, timestamp=0)  # fmt: skip


def pipeline(group: Group, reader: Reader, delivery: Delivery) -> tuple[Pipeline, Ownership]:
    settings = WorkerSettings(topics={"events": TOPIC})  # type: ignore[arg-type]
    state = WorkerState(settings.rescore_config(), settings.drift_adwin_delta)
    state.take_model(toy_model())
    ownership = Ownership()

    async def commit(positions: Mapping[int, int]) -> bool:
        return True

    built = Pipeline(settings, state, ownership, Tables(), reader, delivery,  # type: ignore[arg-type]
                     WorkerMetrics(), group, commit)  # fmt: skip
    return built, ownership


def test_an_assignment_waits_for_its_generations_recovery_then_reads() -> None:
    group, reader = Group(revoked=1), Reader()
    steps, ownership = pipeline(group, reader, Delivery())
    ownership.on_assigned({0, 1}, generation=1, revocations=1)
    asyncio.run(steps.step())
    assert not ownership.reading and reader.assigned == []  # recovery not complete
    group.recovered = 1
    asyncio.run(steps.step())
    assert ownership.reading and ownership.owned == {0, 1}
    assert steps.tables.caught_up == [[0, 1]]  # the stores hold their whole changelogs
    assert reader.assigned == [{0: 0, 1: 10}]  # each at its persisted position


def test_a_late_recovery_of_an_assignment_being_handed_over_is_not_taken() -> None:
    """Faust's recovery of generation 1 ends after the next rebalance has begun."""
    group, reader = Group(revoked=1), Reader()
    steps, ownership = pipeline(group, reader, Delivery())
    ownership.on_assigned({0, 1}, generation=1, revocations=1)
    group.revoked = 2  # the consumer thread began rebalance 2...
    group.recovered = 1  # ...and generation 1's recovery completed afterwards
    asyncio.run(steps.step())
    assert not ownership.reading and ownership.owned == set()
    ownership.on_revoked()  # the worker hears of the revocation
    ownership.on_assigned({1}, generation=2, revocations=2)
    group.recovered = 2
    asyncio.run(steps.step())
    assert ownership.owned == {1} and reader.assigned == [{1: 10}]


@pytest.mark.parametrize("reassigned", [False, True], ids=["revoked", "revoked and reassigned"])
def test_a_batch_fetched_across_a_revocation_is_dropped_whole(reassigned: bool) -> None:
    group, delivery, reader = Group(revoked=1, recovered=1), Delivery(), Reader()
    steps, ownership = pipeline(group, reader, delivery)
    ownership.on_assigned({0}, generation=1, revocations=1)
    asyncio.run(steps.step())  # takes the assignment; nothing to fetch yet
    reader.batches = [[event(0, 0), event(0, 1)]]

    async def revoke() -> None:
        ownership.on_revoked()
        if reassigned:
            ownership.on_assigned({0}, generation=2, revocations=2)
            group.revoked, group.recovered = 2, 2
            await steps.step()  # a step in between takes the new assignment

    reader.on_fetch = revoke
    delivered = len(delivery.delivered)
    asyncio.run(steps.step())
    later = delivery.delivered[delivered:]
    assert all(not step.result.records and not step.positions for step in later)


def test_a_batch_of_an_owned_partition_is_delivered_with_its_positions() -> None:
    group, delivery = Group(revoked=1, recovered=1), Delivery()
    reader = Reader()
    steps, ownership = pipeline(group, reader, delivery)
    ownership.on_assigned({0}, generation=1, revocations=1)
    asyncio.run(steps.step())
    reader.batches = [[event(0, 0), event(0, 1)]]
    asyncio.run(steps.step())
    batch = delivery.delivered[-1]
    assert batch.positions == {0: 2}
    assert sorted(batch.result.records) == ["c0", "c1"]
