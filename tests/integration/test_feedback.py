"""Feedback end to end: the worker validates, counts and keeps it; retrain reads it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from offline.kafka_io import publish_model, read_latest_feedback
from rescorer.devkafka import ProvidedBroker
from tests.support.toy_model import toy_model
from tests.support.worker_harness import (
    Stack,
    WorkerProcess,
    event,
    produce,
    produce_raw,
    read_all,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def feedback(customer: str, segment: int, by: str = "crm-team") -> tuple[bytes, bytes]:
    body = {"customer_id": customer, "proposed_segment_id": segment, "given_by": by,
            "given_at": "2024-03-02T09:00:00Z"}  # fmt: skip
    return customer.encode(), json.dumps(body).encode()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rescorer", *args],
        env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def test_feedback_is_validated_counted_and_kept_latest_per_customer(
    kafka: ProvidedBroker, tmp_path: Path
) -> None:
    stack = Stack(kafka.bootstrap_servers, f"f{uuid.uuid4().hex[:8]}", tmp_path, partitions=2)
    publish_model(stack.settings(), toy_model())
    worker = WorkerProcess(stack, "w")
    try:
        worker.wait_for_log("customers restored")
        customers = [f"fb-{n}" for n in range(6)]
        at = datetime(2024, 3, 1, tzinfo=UTC)
        produce(stack, [event(f"{c}-1", c, at, 500.0) for c in customers])
        assigned = wait_until(
            "assignments",
            lambda: (a := {x["customer_id"]: x for x in read_all(stack, stack.topics.assignments)})
            and len(a) == len(customers) and a,
            worker, timeout=60,
        )  # fmt: skip
        good = [feedback(c, 0) for c in customers] + [feedback(customers[0], 2, "second-look")]
        bad = [
            (b"fb-0", b"{not json"),
            (b"someone-else", feedback("fb-1", 1)[1]),
            feedback("fb-2", -4),
        ]
        produce_raw(stack, good + bad, topic=stack.topics.feedback)
        letters = wait_until(
            "the bad feedback dead-lettered",
            lambda: (d := [x for x in read_all(stack, stack.topics.dead_letters)
                           if x["topic"] == stack.topics.feedback]) and len(d) == 3 and d,
            worker, timeout=60,
        )  # fmt: skip
        assert sorted(x["error_type"] for x in letters) == [
            "invalid_feedback", "invalid_json", "key_mismatch",
        ]  # fmt: skip
        latest = wait_until(
            "the latest feedback per customer",
            lambda: len(f := read_latest_feedback(stack.settings())) == len(customers) and f,
            worker, timeout=60,
        )  # fmt: skip
        by_customer = {f.customer_id: f for f in latest}
        assert by_customer["fb-0"].proposed_segment_id == 2
        assert by_customer["fb-0"].given_by == "second-look"
        series = worker.metrics()
        counted = {k: v for k, v in series.items() if k.startswith("rescorer_feedback_total{")}
        assert sum(counted.values()) == len(good)
        names = {s.segment_id: s.name for s in toy_model().segments}
        current = assigned["fb-3"]["segment_name"]
        key = (
            f'rescorer_feedback_total{{current_segment="{current}",proposed_segment="{names[0]}"}}'
        )
        assert series[key] >= 1
    finally:
        assert worker.stop() == 0, worker.tail()


def test_retrain_reports_the_feedback_each_model_agrees_with(
    kafka: ProvidedBroker, tmp_path: Path
) -> None:
    from offline.simulator import event_bodies, generate

    stack = Stack(
        kafka.bootstrap_servers, f"g{uuid.uuid4().hex[:8]}", tmp_path, partitions=2,
        extra_env={"RESCORER_MODEL_DIR": str(tmp_path / "models")},
    )  # fmt: skip
    events, _ = generate(400, 200, datetime(2025, 1, 1, tzinfo=UTC), 1, 3, 0.0, None)
    produce(stack, event_bodies(events))
    env = stack.env("cli")
    training = ["--from-kafka", "--bootstrap", "3", "--holdout-days", "0"]
    first = cli(env, "train", *training)
    assert first.returncode == 0, first.stderr
    customers = sorted(set(events["customer_id"].to_list()))[:60]
    produce_raw(stack, [feedback(c, 0) for c in customers], topic=stack.topics.feedback_latest)
    again = cli(env, "retrain", "--force", *training)
    assert again.returncode in (0, 3), again.stdout + again.stderr
    assert "feedback agreement on" in again.stdout, again.stdout
    line = next(x for x in again.stdout.splitlines() if x.startswith("feedback agreement"))
    records = int(line.split(" on ")[1].split()[0])
    assert 50 <= records <= 60
