"""The batch reader on a real broker: exactly the assigned partitions, each from its position
(or the log start), in offset order, and the end offsets it saw."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import pytest

from rescorer.devkafka import ProvidedBroker
from schemas.settings import RescorerSettings
from streams.batch_reader import BatchReader
from tests.support.topics import create_topic, send

pytestmark = pytest.mark.integration
PER_PARTITION = 10


def fill(settings: RescorerSettings, topic: str, partitions: int) -> None:
    create_topic(settings, topic, partitions)
    send(
        settings,
        topic,
        (
            (partition, None, f"{partition}:{n}".encode())
            for partition in range(partitions)
            for n in range(PER_PARTITION)
        ),
    )


async def read_until(reader: BatchReader, wanted: int) -> dict[int, list[int]]:
    """Offsets per partition over as many batches as it takes to see `wanted` records."""
    seen: dict[int, list[int]] = defaultdict(list)
    for _ in range(60):
        for record in await reader.fetch(timeout=1.0, max_records=7):
            seen[record.partition].append(record.offset)
            assert record.value == f"{record.partition}:{record.offset}".encode()
        if sum(map(len, seen.values())) >= wanted:
            break
    # Nothing more than what was asked for arrives afterwards.
    for record in await reader.fetch(timeout=0.5, max_records=100):
        seen[record.partition].append(record.offset)
    return dict(seen)


def test_the_reader_reads_the_assigned_partitions_from_their_positions(
    kafka: ProvidedBroker, topic_prefix: str
) -> None:
    settings = RescorerSettings(kafka_bootstrap_servers=kafka.bootstrap_servers)
    topic = f"{topic_prefix}-events"
    fill(settings, topic, 3)

    async def scenario() -> None:
        reader = BatchReader(settings, topic)
        with pytest.raises(RuntimeError, match="not started"):
            reader.consumer  # noqa: B018 - the property is what is tested
        await reader.start()
        try:
            assert await reader.fetch(timeout=0.1, max_records=10) == []  # nothing assigned
            assert await reader.assign({0: None, 1: 4}) == {0: 0, 1: 4}
            seen = await read_until(reader, PER_PARTITION + PER_PARTITION - 4)
            assert seen == {0: list(range(PER_PARTITION)), 1: list(range(4, PER_PARTITION))}
            assert reader.highwater(0) == PER_PARTITION and reader.highwater(2) is None
            # A new assignment replaces the old one: only partition 2, from offset 7.
            assert await reader.assign({2: 7}) == {2: 7}
            assert await read_until(reader, 3) == {2: [7, 8, 9]}
            assert reader.highwater(0) is None
        finally:
            await reader.stop()
            await reader.stop()  # stopping twice is harmless

    asyncio.run(scenario())


def test_a_consumer_that_stopped_fetching_is_replaced_and_reading_goes_on_exactly(
    kafka: ProvidedBroker, topic_prefix: str
) -> None:
    """The consumer's fetch routine ends (what a broker outage sometimes leaves behind in
    aiokafka); the broker still holds records; the reader starts a new consumer at the
    offsets it delivered and reads on, no record twice or lost. While nothing is behind,
    a quiet reader keeps its consumer."""
    settings = RescorerSettings(kafka_bootstrap_servers=kafka.bootstrap_servers)
    topic = f"{topic_prefix}-events"
    fill(settings, topic, 2)
    renewals: list[int] = []

    async def scenario() -> None:
        reader = BatchReader(settings, topic, lambda: renewals.append(1), stall_seconds=1.0)
        await reader.start()
        try:
            await reader.assign({0: None, 1: None})
            assert await read_until(reader, 2 * PER_PARTITION) == {
                0: list(range(PER_PARTITION)), 1: list(range(PER_PARTITION))
            }  # fmt: skip
            for _ in range(4):  # quiet at the end: the broker holds nothing more
                assert await reader.fetch(timeout=0.5, max_records=10) == []
            assert renewals == []
            first = reader.consumer
            fetcher = first._fetcher
            fetcher._fetch_task.cancel()  # aiokafka's fetch routine ends; nothing says so
            with contextlib.suppress(asyncio.CancelledError):
                await fetcher._fetch_task
            send(settings, topic, ((1, None, f"1:{PER_PARTITION + n}".encode()) for n in range(5)))
            assert await read_until(reader, 5) == {1: list(range(PER_PARTITION, PER_PARTITION + 5))}
            assert renewals == [1] and reader.consumer is not first
        finally:
            await reader.stop()

    asyncio.run(scenario())
