"""Run `rescorer worker` as a real process against the test broker, and read its outputs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition

from rescorer.common import scrape_metrics, stop_process
from rescorer.devkafka.local import free_port
from schemas.settings import RescorerSettings, TopicNames


@dataclass
class Stack:
    """Topic names and settings of one isolated worker deployment on the shared broker."""

    bootstrap: str
    prefix: str
    workdir: Path
    partitions: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)

    @cached_property
    def topics(self) -> TopicNames:
        p = self.prefix
        return TopicNames(
            events=f"{p}-events", changes=f"{p}-changes", assignments=f"{p}-segments",
            band_changes=f"{p}-band-changes",
            dead_letters=f"{p}-dlq", models=f"{p}-models", retrain_requests=f"{p}-retrain",
            feedback=f"{p}-feedback", feedback_latest=f"{p}-feedback-latest",
        )  # fmt: skip

    def settings(self) -> RescorerSettings:
        return RescorerSettings(kafka_bootstrap_servers=self.bootstrap, topics=self.topics)

    def env(self, name: str, metrics_port: int = 0, data: str | None = None) -> dict[str, str]:
        t = self.topics
        env = {
            **os.environ,
            "RESCORER_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            # every topic, so one added to TopicNames cannot fall back to its shared default
            **{f"RESCORER_TOPIC_{name.upper()}": str(v) for name, v in t.model_dump().items()},
            "RESCORER_APP_ID": self.prefix,
            "RESCORER_PARTITIONS": str(self.partitions),
            "RESCORER_MODEL_DIR": str(self.workdir / "no-models"),
            "RESCORER_DATA_DIR": str(self.workdir / f"data-{data or name}"),
            "RESCORER_BATCH_WITHIN_SECONDS": "0.02",
            "RESCORER_SESSION_TIMEOUT_SECONDS": "6",
            "RESCORER_COMMIT_INTERVAL_SECONDS": "0.5",
            "RESCORER_LEARNING_RATE": "0",
            "RESCORER_METRICS_PORT": str(metrics_port),
            "RESCORER_WEB_PORT": "0",
        }
        env.update(self.extra_env)
        return env


class WorkerProcess:
    """One worker subprocess; its log goes to a file the test can show on failure."""

    def __init__(
        self, stack: Stack, name: str, *, web: bool = False, data: str | None = None
    ) -> None:
        """`data`: the data directory's name (default: the worker's own, ``data-{name}``)."""
        self.log_path = stack.workdir / f"worker-{name}.log"
        self._log = self.log_path.open("wb")
        self.metrics_port = free_port()
        self.web_port = free_port() if web else 0
        env = stack.env(name, self.metrics_port, data)
        if web:  # the lookup API, reachable by the other workers on loopback
            env |= {"RESCORER_WEB_PORT": str(self.web_port), "RESCORER_WEB_HOST": "127.0.0.1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rescorer", "worker", "--log-level", "info"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def metrics(self) -> dict[str, float]:
        """The worker's /metrics, as {series with labels: value}."""
        return scrape_metrics(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5)

    def get(self, path: str) -> tuple[int, Any]:
        """(status, decoded JSON body) of a GET on the worker's lookup API."""
        from urllib.error import HTTPError
        from urllib.request import urlopen

        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urlopen(url, timeout=10) as response:
                return response.status, json.loads(response.read())
        except HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} in the worker log after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(line for line in self.log().splitlines() if "kafka.conn" not in line)[
            -lines * 200 :
        ]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log.close()

    def stop(self) -> int:
        code = stop_process(self.process)
        self._log.close()
        return code


def event(
    event_id: str, customer: str, at: datetime, amount: float | None = 50.0, kind: str = "purchase"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id, "customer_id": customer, "type": kind,
        "occurred_at": at.isoformat(),
    }  # fmt: skip
    if amount is not None:
        body["amount"] = amount
    return body


def produce(
    stack: Stack,
    events: Iterable[dict[str, Any]],
    partition: int | None = None,
) -> int:
    """Events to the events topic, keyed by customer (Kafka's default partitioner)."""
    messages = [(str(b["customer_id"]).encode(), json.dumps(b).encode()) for b in events]
    produce_raw(stack, messages, partition)
    return len(messages)


def produce_raw(
    stack: Stack,
    messages: Iterable[tuple[bytes | None, bytes]],
    partition: int | None = None,
    topic: str | None = None,
) -> None:
    """Raw messages to the events topic (or `topic`), as fast as the broker takes them."""

    async def send_all() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=stack.bootstrap, linger_ms=20, max_batch_size=512 * 1024
        )
        await producer.start()
        try:
            for key, value in messages:
                await producer.send(
                    topic or stack.topics.events, value, key=key, partition=partition
                )
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send_all())


def clock_tick(stack: Stack, at: datetime, tag: str) -> None:
    """Advance event time on every partition (a purchase by a per-partition clock customer)."""
    for p in range(stack.partitions):
        produce(stack, [event(f"clock-{tag}-{p}", f"clock-{p}", at, 1.0)], partition=p)


def read_all(stack: Stack, topic: str, committed: bool = True) -> list[dict[str, Any]]:
    """Every value currently on `topic`, decoded: by default ``read_committed`` (what a
    downstream service sees; for topics written without transactions, simply all),
    else with aborted and open transactions' records too."""
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
        receive_message_max_bytes=64 * 2**20,  # a fetch of every partition's 1 MiB at once
    )  # fmt: skip
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            return []
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out: list[dict[str, Any]] = []
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(json.loads(r.value) for r in records)
        return out
    finally:
        consumer.close()


def wait_until(
    what: str,
    check: Callable[[], Any],
    worker: WorkerProcess | None = None,
    timeout: float = 60.0,
) -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = (
                f"\nworker log:\n{worker.tail()}\n{progress(worker)}\n{stacks(worker)}"
                if worker
                else ""
            )
            raise AssertionError(f"timed out waiting for {what}{detail}")
        time.sleep(0.5)


WATCHED_SERIES = (
    "rescorer_events_consumed_total",
    "rescorer_consumer_lag_messages",
    "rescorer_events_processed_total",
    "rescorer_watermark_lag_seconds",
    "rescorer_event_reader_renewals_total",
    "rescorer_input_",
)


def progress(worker: WorkerProcess) -> str:
    """A live worker's input series (consumed, processed, lag per partition, reader
    renewals), for a wait that timed out: whether it is behind, and on which partitions."""
    if not worker.alive():
        return ""
    try:
        series = worker.metrics()
    except OSError as exc:
        return f"(no metrics from the worker: {exc})"
    lines = [f"  {k} {v:g}" for k, v in sorted(series.items()) if k.startswith(WATCHED_SERIES)]
    return "the worker's input metrics:\n" + "\n".join(lines)


def stacks(worker: WorkerProcess) -> str:
    """Where a live worker waits, for a wait that timed out: its threads (py-spy dump)
    and its asyncio tasks' stacks, which mode's worker writes to its log on SIGUSR1
    (shown without the locals it adds)."""
    if not worker.alive():
        return f"(the worker exited with code {worker.process.poll()})"
    spy = Path(sys.executable).with_name("py-spy")
    try:
        dump = subprocess.run(
            [str(spy), "dump", "--pid", str(worker.process.pid)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        threads = f"py-spy dump of the worker:\n{dump.stdout}{dump.stderr}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        threads = f"(no py-spy dump of the worker: {exc})"
    before = len(worker.log())
    worker.process.send_signal(signal.SIGUSR1)
    time.sleep(3)
    cried = worker.log()[before:].splitlines()
    tasks = [
        line
        for i, line in enumerate(cried)
        if line.startswith(("  TASK ", "THREAD "))
        or line.lstrip().startswith("File ")
        or (i and cried[i - 1].lstrip().startswith("File "))
    ]
    return threads + "asyncio tasks (SIGUSR1):\n" + "\n".join(tasks)
