"""The drift loop end to end: a behaviour shift raises drift, the worker asks for a
retrain, `rescorer retrain` trains and promotes a new model, the worker switches to it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from offline.simulator import event_bodies, generate
from offline.synthetic import BehaviourShift
from rescorer.devkafka import ProvidedBroker
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.support.worker_harness import Stack, WorkerProcess, produce, read_all, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

END = datetime(2025, 6, 30, tzinfo=UTC)
TRAINING = ["--bootstrap", "5", "--holdout-days", "0", "--k-max", "5"]


def cli(stack: Stack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rescorer", *args],
        env=stack.env("cli"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def total(series: dict[str, float], name: str) -> float:
    return sum(v for k, v in series.items() if k == name or k.startswith(name + "{"))


def test_a_behaviour_shift_leads_to_a_promoted_model_the_worker_switches_to(
    kafka: ProvidedBroker, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    stack = Stack(
        kafka.bootstrap_servers, f"r{uuid.uuid4().hex[:8]}", tmp_path, partitions=2,
        extra_env={
            "RESCORER_MODEL_DIR": str(models),
            "RESCORER_DRIFT_INTERVAL_SECONDS": "1",
            "RESCORER_DRIFT_MAX_LAG_EVENTS": "100",
            "RESCORER_RETRAIN_PSI_SUSTAIN_SECONDS": "3",
            "RESCORER_RETRAIN_MIN_CUSTOMERS": "200",
        },
    )  # fmt: skip
    # Regular customers stop buying altogether at the end of the history.
    events, _ = generate(1500, 365, END, 150, 11, 0.0, BehaviourShift("regular", 0.0, END))
    history = events.filter(pl.col("occurred_at") <= END)
    live = events.filter(pl.col("occurred_at") > END)
    history_file = tmp_path / "history.jsonl"
    history_file.write_text("".join(json.dumps(b) + "\n" for b in event_bodies(history)))

    trained = cli(stack, "train", "--events", str(history_file), "--publish", *TRAINING)
    assert trained.returncode == 0, trained.stderr
    # The whole history is there before the worker starts, as in a backfill:
    # drift is only judged once the worker has caught up with it.
    ensure_topics(WorkerSettings(**dict(stack.settings()), partitions=stack.partitions))
    produce(stack, event_bodies(history))
    worker = WorkerProcess(stack, "w")
    try:
        worker.wait_for_log("customers restored")
        wait_until(
            "the history to be processed",
            lambda: total(worker.metrics(), "rescorer_events_consumed_total") == history.height
            and total(worker.metrics(), "rescorer_consumer_lag_messages") == 0,
            worker, timeout=180,
        )  # fmt: skip
        recency_psi = 'rescorer_feature_psi{feature="recency_days"}'
        before = wait_until(  # the next drift tick after catch-up publishes the PSI
            "the drift of the caught-up population",
            lambda: (series := worker.metrics()).get(recency_psi) is not None and series,
            worker, timeout=30,
        )  # fmt: skip
        assert before[recency_psi] < 0.25
        assert read_all(stack, stack.topics.retrain_requests) == []

        produce(stack, event_bodies(live))
        wait_until(
            "a retrain request",
            lambda: read_all(stack, stack.topics.retrain_requests) != [],
            worker, timeout=180,
        )  # fmt: skip
        (request,) = read_all(stack, stack.topics.retrain_requests)
        assert request["model_version"] == 1
        assert request["evidence"]["triggers"]  # the detector or the PSI, whichever is first
        wait_until(
            "recency drift to show once the live traffic is in",
            lambda: worker.metrics()['rescorer_feature_psi{feature="recency_days"}'] > 0.25,
            worker, timeout=120,
        )  # fmt: skip
        assert total(worker.metrics(), "rescorer_retrain_requests_total") == 1  # cooldown

        retrained = cli(stack, "retrain", "--from-kafka", *TRAINING)
        assert retrained.returncode == 0, retrained.stdout + retrained.stderr
        assert "1 pending retrain request(s)" in retrained.stdout
        assert "promoted v2" in retrained.stdout, retrained.stdout
        assert "published v2" in retrained.stdout

        worker.wait_for_log("switched to model v2", timeout=30)
        assert worker.metrics()["rescorer_model_version"] == 2
        again = cli(stack, "retrain", "--from-kafka", *TRAINING)
        assert again.returncode == 0, again.stderr
        assert "nothing to do" in again.stdout
    finally:
        worker.stop()
