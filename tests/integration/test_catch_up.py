"""Before a partition is taken, its store reads what recovery left of its changelog.

A real broker and the worker's own changelog probe; the store is the
worker's durable store, outside Faust (as in tests/unit/test_durable_store.py).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from rescorer.devkafka import ProvidedBroker
from schemas.settings import RescorerSettings
from streams.state.catch_up import catch_up
from streams.state.changelog_probe import ChangelogProbe
from streams.state.context import StoreContext
from streams.state.store import DurableStore
from tests.support.topics import create_topic, send

pytestmark = pytest.mark.integration


def durable_store(directory: Path, probe: ChangelogProbe, topic: str) -> DurableStore:
    context = StoreContext(directory, "app", probe)
    table = SimpleNamespace(
        name="customers", changelog_topic=SimpleNamespace(get_topic_name=lambda: topic)
    )
    app = SimpleNamespace(assignor=SimpleNamespace(assigned_standbys=set))
    return DurableStore(
        "rescorer://", app, table, table_name="customers", options={"rescorer_state": context}
    )


def changelog_event(partition: int, offset: int, key: bytes, value: bytes) -> Any:
    return SimpleNamespace(
        message=SimpleNamespace(partition=partition, offset=offset, key=key, value=value)
    )


def test_a_store_left_behind_by_recovery_reads_the_rest_and_one_at_the_end_reads_nothing(
    kafka: ProvidedBroker, topic_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = RescorerSettings(kafka_bootstrap_servers=kafka.bootstrap_servers)
    topic = f"{topic_prefix}-customers-changelog"
    create_topic(settings, topic, 2)
    # Partition 0: customer c{n % 40} gets value n, 300 records; partition 1: 5 records.
    values = {0: [(f"c{n % 40}".encode(), str(n).encode()) for n in range(300)]}
    values[1] = [(f"d{n}".encode(), b"x") for n in range(5)]
    send(settings, topic, ((p, k, v) for p, rows in values.items() for k, v in rows))

    async def scenario() -> tuple[dict[str, int], dict[str, int], DurableStore]:
        probe = ChangelogProbe(settings)
        store = durable_store(tmp_path, probe, topic)
        tps = {TP(topic, 0), TP(topic, 1)}
        await store.on_rebalance(tps, set(), tps)
        # Recovery applied partition 0 up to offset 119 only, partition 1 completely.
        store.apply_changelog_batch(
            [changelog_event(0, n, k, v) for n, (k, v) in enumerate(values[0][:120])]
            + [changelog_event(1, n, k, v) for n, (k, v) in enumerate(values[1])],
            to_key=None,
            to_value=None,
        )
        try:
            first = await catch_up(probe, [store], [0, 1])
            again = await catch_up(probe, [store], [0, 1])
        finally:
            await probe.stop()
        return first, again, store

    with caplog.at_level(logging.WARNING, logger="streams.state.catch_up"):
        first, again, store = asyncio.run(scenario())
    assert first == {"customers": 180}
    assert again == {}
    assert store.partition_data(0) == {f"c{n % 40}": str(n).encode() for n in range(260, 300)}
    assert store.persisted_offset(TP(topic, 0)) == 299
    assert len(store.partition_data(1)) == 5
    assert [r.getMessage() for r in caplog.records] == [
        "store customers[0]: recovery left changelog offsets 120-299 unread; read 180 records"
    ]
