"""Exactly-once steps on a real broker: fencing, and stores reading transactional changelogs.

`streams.transactions.Transactions` is driven directly (no worker, no timing):
a second claim of a partition aborts the first owner's open transaction and
refuses its commit. A durable store then reads a changelog of committed and
aborted transactions to its end: the committed records only, and a position
that counts the commit markers, so that Faust's recovery finds nothing left.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from rescorer.devkafka import ProvidedBroker
from streams.settings import WorkerSettings
from streams.state.catch_up import catch_up
from streams.state.changelog_probe import ChangelogProbe
from streams.transactions import CommitRefused, Transactions
from tests.integration.test_catch_up import durable_store
from tests.support.topics import create_topic

pytestmark = pytest.mark.integration


async def committed(settings: WorkerSettings, topic: str) -> list[bytes]:
    """Values a read_committed consumer finds on partition 0 of `topic`."""
    consumer = AIOKafkaConsumer(
        **settings.aiokafka_config(), isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=100)).values():
                values.extend(r.value for r in records if r.value is not None)
        return values
    finally:
        await consumer.stop()


async def send(transactions: Transactions, topic: str, value: bytes) -> None:
    producer = await transactions.producer(0)
    await (await producer.send(topic, value, key=b"k", partition=0))


def test_a_second_owner_fences_the_first_whose_open_step_is_refused_and_never_seen(
    kafka: ProvidedBroker, topic_prefix: str
) -> None:
    settings = WorkerSettings(
        kafka_bootstrap_servers=kafka.bootstrap_servers, app_id=f"{topic_prefix}-app"
    )
    topic = f"{topic_prefix}-changes"
    create_topic(settings, topic, 1)

    async def scenario() -> tuple[str, list[bytes], list[bytes]]:
        first, second = Transactions(settings, 64 * 1024), Transactions(settings, 64 * 1024)
        try:
            await first.claim({0})
            await send(first, topic, b"committed by the first owner")
            await first.commit()
            await send(first, topic, b"sent by the first owner, then fenced")
            await second.claim({0})  # the partition moved: its open transaction is aborted
            with pytest.raises(CommitRefused) as refused:
                await first.commit()
            with pytest.raises(CommitRefused):  # nor can it begin another step there
                await send(first, topic, b"sent after the fence")
            between = await committed(settings, topic)
            await send(second, topic, b"committed by the second owner")
            await second.commit()
            return str(refused.value), between, await committed(settings, topic)
        finally:
            await first.stop()
            await second.stop()

    refusal, between, after = asyncio.run(scenario())
    assert "were given to another worker" in refusal
    assert between == [b"committed by the first owner"]
    assert after == [b"committed by the first owner", b"committed by the second owner"]


def test_a_store_reads_the_committed_records_of_a_changelog_and_reflects_its_end(
    kafka: ProvidedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    settings = WorkerSettings(
        kafka_bootstrap_servers=kafka.bootstrap_servers, app_id=f"{topic_prefix}-app"
    )
    topic = f"{topic_prefix}-customers-changelog"
    create_topic(settings, topic, 1)

    async def scenario() -> tuple[dict[str, int], dict[str, int], dict[str, bytes], int | None]:
        producer = AIOKafkaProducer(
            **settings.aiokafka_config(), transactional_id=f"{topic_prefix}-writer"
        )
        await producer.start()
        try:
            for n in range(3):  # three committed steps, then one aborted
                async with producer.transaction():
                    await producer.send_and_wait(topic, json.dumps(n).encode(), key=b"c%d" % n)
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aborted", key=b"c0")
            await producer.abort_transaction()
        finally:
            await producer.stop()
        probe = ChangelogProbe(settings)
        store = durable_store(tmp_path, probe, topic)
        tps = {TP(topic, 0)}
        try:
            await store.on_rebalance(tps, set(), tps)
            first = await catch_up(probe, [store], [0], expected=True)
            again = await catch_up(probe, [store], [0], expected=True)
        finally:
            await probe.stop()
        return first, again, dict(store.partition_data(0)), store.persisted_offset(TP(topic, 0))

    first, again, data, persisted = asyncio.run(scenario())
    assert first == {"customers": 3}
    assert again == {}
    assert data == {"c0": b"0", "c1": b"1", "c2": b"2"}  # the aborted value is not applied
    # Records at 0, 2, 4 with their commit markers at 1, 3, 5; the aborted record at 6
    # and its marker at 7: the store reflects everything before offset 8.
    assert persisted == 7
