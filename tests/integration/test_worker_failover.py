"""Two workers share the partitions; when one is killed the other recovers its state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from offline.kafka_io import publish_model
from rescorer.devkafka import ProvidedBroker
from tests.support.toy_model import toy_model
from tests.support.worker_harness import (
    Stack,
    WorkerProcess,
    event,
    produce,
    read_all,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
CUSTOMERS = [f"f{i:04d}" for i in range(300)]


def latest(stack: Stack) -> dict[str, dict[str, Any]]:
    return {a["customer_id"]: a for a in read_all(stack, stack.topics.assignments)}


def all_have(stack: Stack, frequency: int) -> bool:
    current = latest(stack)
    return all(c in current and current[c]["features"]["frequency"] == frequency for c in CUSTOMERS)


@pytest.fixture
def stack(kafka: ProvidedBroker, tmp_path: Path) -> Stack:
    return Stack(kafka.bootstrap_servers, f"f{uuid.uuid4().hex[:8]}", tmp_path, partitions=4)


def test_a_killed_workers_partitions_recover_on_the_other(stack: Stack) -> None:
    publish_model(stack.settings(), toy_model())
    first = WorkerProcess(stack, "a")
    second: WorkerProcess | None = None
    try:
        first.wait_for_log("customers restored")
        second = WorkerProcess(stack, "b")
        second.wait_for_log("customers restored")
        produce(stack, [event(f"{c}-1", c, T0, 10.0) for c in CUSTOMERS])
        produce(stack, [event(f"{c}-2", c, T0 + timedelta(hours=1), 15.0) for c in CUSTOMERS])
        wait_until("round one on both workers", lambda: all_have(stack, 2), first, timeout=90)
        for worker in (first, second):
            assert "applied=" in worker.log() or worker.alive()
        second.kill()  # no goodbye: the group notices through the session timeout
        produce(stack, [event(f"{c}-3", c, T0 + timedelta(hours=2), 20.0) for c in CUSTOMERS])
        try:
            wait_until(
                "the survivor to carry every customer's history forward",
                lambda: all_have(stack, 3),
                first,
                timeout=120,
            )
        except AssertionError:
            current = latest(stack)
            short = {
                c: (current[c]["features"], current[c]["as_of"]) if c in current else None
                for c in CUSTOMERS
                if current.get(c, {}).get("features", {}).get("frequency") != 3
            }
            raise AssertionError(
                f"{len(short)} customers short: {sorted(short.items())[:20]}"
            ) from None
        final = latest(stack)
        assert {final[c]["features"]["monetary"] for c in CUSTOMERS} == {45.0}
        assert first.alive()
        log = first.log()
        assert "customers restored" in log
    finally:
        first.stop()
        if second is not None and second.alive():
            second.stop()
