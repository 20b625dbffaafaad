"""The lookup API against two real workers: either one answers for any customer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from offline.kafka_io import publish_model
from rescorer.devkafka import ProvidedBroker
from scoring.holdout import HoldoutPolicy
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

CUSTOMERS = [f"look-{n}" for n in range(40)]


def test_a_lookup_at_either_worker_returns_the_owners_answer(
    kafka: ProvidedBroker, tmp_path: Path
) -> None:
    stack = Stack(
        kafka.bootstrap_servers, f"l{uuid.uuid4().hex[:8]}", tmp_path, partitions=4,
        extra_env={"RESCORER_HOLDOUT_SHARE": "0.3"},
    )  # fmt: skip
    holdout = HoldoutPolicy(share=0.3)
    publish_model(stack.settings(), toy_model())
    first = WorkerProcess(stack, "a", web=True)
    second = WorkerProcess(stack, "b", web=True)
    workers = (first, second)
    try:
        for worker in workers:
            worker.wait_for_log("customers restored")
        start = datetime(2024, 1, 1, tzinfo=UTC)
        bodies = []
        for n, customer in enumerate(CUSTOMERS):
            # Two purchases a month apart, so every customer has a change history.
            bodies.append(event(f"{customer}-1", customer, start, 20.0 + n))
            bodies.append(event(f"{customer}-2", customer, start + timedelta(days=200), 900.0))
        produce(stack, bodies[0::2])
        wait_until(
            "first assignments",
            lambda: len({a["customer_id"] for a in read_all(stack, stack.topics.assignments)})
            == len(CUSTOMERS),
            first, timeout=90,
        )  # fmt: skip
        produce(stack, bodies[1::2])
        wait_until(
            "both workers to own partitions and the second purchases to land",
            lambda: all(w.get("/segments")[0] == 200 for w in workers)
            and sum(s["population"] for s in first.get("/segments")[1]["segments"])
            == len(CUSTOMERS)
            and first.get("/segments")[1]["partitions_reporting"] == 4,
            first, timeout=90,
        )  # fmt: skip
        latest = {a["customer_id"]: a for a in read_all(stack, stack.topics.assignments)}
        for customer in CUSTOMERS:
            answers = [w.get(f"/customers/{quote(customer)}") for w in workers]
            assert answers[0] == answers[1], customer
            status, body = answers[0]
            assert status == 200
            assert body["customer_id"] == customer
            assert body["segment_id"] == latest[customer]["segment_id"]
            assert body["features"] == latest[customer]["features"]
            assert abs(sum(body["membership"].values()) - 1) < 1e-4
            assert set(body) >= {"confidence", "holdout", "model_version", "as_of"}
            # The worker flags the customers replay and the report flag.
            assert body["holdout"] == holdout.is_holdout(customer, body["segment_id"])
            assert latest[customer]["holdout"] == body["holdout"]
            assert latest[customer]["membership"].keys() == body["membership"].keys()
        moved = [
            customer
            for customer in CUSTOMERS
            if len(second.get(f"/customers/{customer}/history")[1]["changes"]) >= 2
        ]
        assert moved, "no customer changed segment twice"
        status, history = first.get(f"/customers/{moved[0]}/history?limit=1")
        assert status == 200 and len(history["changes"]) == 1
        assert history["changes"][0]["previous_segment_name"]

        status, body = first.get("/customers/nobody-at-all")
        assert status == 404 and body["error"] == "unknown customer"
        status, body = second.get("/customers/" + "x" * 129)
        assert status == 400 and "longer than 128" in body["error"]
        status, body = first.get(f"/customers/{CUSTOMERS[0]}/history?limit=abc")
        assert status == 400 and "limit" in body["error"]

        both = [w.get("/segments")[1] for w in workers]
        assert both[0]["segments"] == both[1]["segments"]
        assert both[0]["workers_reporting"] == 2
    finally:
        for worker in workers:
            worker.stop()
