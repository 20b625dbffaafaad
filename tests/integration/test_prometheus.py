"""A real Prometheus scrapes a worker under simulated traffic and evaluates every
query of the dashboards and rules: a panel or rule that returns nothing fails."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.request import urlopen

import pytest
import yaml

from offline.kafka_io import publish_model
from offline.simulator import event_bodies, generate
from offline.synthetic import MALFORMED_KINDS, malformed
from rescorer.common import stop_process
from rescorer.devkafka import ProvidedBroker
from rescorer.devkafka.local import free_port
from tests.support.monitoring import RULES, dashboard_queries, rule_queries
from tests.support.toy_model import toy_model_with_traits
from tests.support.worker_harness import (
    Stack,
    WorkerProcess,
    produce,
    produce_raw,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOB = "segment-rescorer"


def api(port: int, path: str) -> Any:
    with urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


def query(port: int, expr: str) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = api(port, f"/api/v1/query?query={quote(expr)}")
    except OSError as exc:  # HTTP 400 for a query Prometheus cannot parse
        return {"status": "error", "error": str(exc)}
    return answer


def scraped(port: int) -> bool:
    """Prometheus is up and has scraped its target."""
    try:
        targets = api(port, "/api/v1/targets")["data"]["activeTargets"]
    except OSError:  # not listening yet
        return False
    return any(t["health"] == "up" for t in targets)


def consumed(worker: WorkerProcess) -> float:
    """Events the worker has counted, whatever their outcome."""
    return sum(v for k, v in worker.metrics().items() if k.startswith("rescorer_events_consumed"))


def start_prometheus(
    binary: str, workdir: Path, target: str
) -> tuple[subprocess.Popen[bytes], int]:
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"  # the shipped file, evaluated every second for the test
    (workdir / "rules.yml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (workdir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary, f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, port


def test_every_dashboard_and_rule_query_returns_series(
    kafka: ProvidedBroker, tmp_path: Path, prometheus_tools: dict[str, str]
) -> None:
    stack = Stack(
        kafka.bootstrap_servers, f"p{uuid.uuid4().hex[:8]}", tmp_path, partitions=2,
        extra_env={"RESCORER_DRIFT_INTERVAL_SECONDS": "1", "RESCORER_LEARNING_RATE": "0.01"},
    )  # fmt: skip
    publish_model(stack.settings(), toy_model_with_traits())
    worker = WorkerProcess(stack, "w")
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        worker.wait_for_log("customers restored")
        prometheus, port = start_prometheus(
            prometheus_tools["prometheus"], tmp_path, f"127.0.0.1:{worker.metrics_port}"
        )
        # Scraped before any traffic, so increase() over the run sees all of it.
        wait_until(
            "Prometheus to scrape the worker",
            lambda: scraped(port),
            worker, timeout=60,
        )  # fmt: skip
        events, _ = generate(300, 120, datetime(2025, 3, 1, tzinfo=UTC), 1, 5, 0.0, None)
        bodies = list(event_bodies(events))
        # Two halves, the second after the first is processed: a batch coalesces a
        # customer's outputs, so a backlog read in one batch gives only first
        # assignments; exits need customers assigned before later events move them.
        half = len(bodies) // 2
        produce(stack, bodies[:half])
        wait_until(
            "the first half to be processed",
            lambda: consumed(worker) >= half,
            worker, timeout=120,
        )  # fmt: skip
        produce(stack, bodies[half:])
        produce_raw(stack, [malformed(bodies[i], k) for i, k in enumerate(MALFORMED_KINDS)])
        wait_until(
            "the traffic to be processed and scraped",
            lambda: query(port, f'sum(rescorer_events_consumed_total{{job="{JOB}"}})')["data"][
                "result"
            ]
            and float(
                query(port, "sum(rescorer_events_consumed_total)")["data"]["result"][0]["value"][1]
            )
            >= len(bodies) - 20,
            worker, timeout=120,
        )  # fmt: skip
        time.sleep(8)  # a few more scrapes and rule evaluations for rates and rules
        empty, failed = [], []
        for item in dashboard_queries() + rule_queries():
            answer = query(port, item.expr)
            if answer.get("status") != "success":
                failed.append(f"{item.where}: {answer.get('error')}\n    {item.expr}")
            elif not answer["data"]["result"]:
                empty.append(f"{item.where}\n    {' '.join(item.expr.split())}")
        assert not failed, "queries Prometheus rejects:\n" + "\n".join(failed)
        assert not empty, "queries without series:\n" + "\n".join(empty)
    finally:
        if prometheus is not None:
            stop_process(prometheus)
        worker.stop()
