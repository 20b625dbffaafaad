"""Benchmark: the stream worker beside a bare Kafka pipe, a raw consumer and Faust agents.

With a real local broker (the same provider as the tests), in one run, on the
same pre-produced topic (default 500k events for 100k customers, synthetic
log, 8 partitions) and a model trained on the same log:

- (raw) an aiokafka consumer reads the topic from offset 0 to the end;
- (pipe) the reference: aiokafka ``getmany`` + pydantic decode of every event +
  2 records produced per event (what a worker must write: changelog +
  assignment) with the plain ``send`` API to an 8-partition topic, flushed;
- (empty) a Faust agent that does nothing: Faust's per-message ceiling;
- (naive) the textbook Faust agent (bench/naive_agent.py);
- (worker) ``rescorer worker`` from offset 0 to the end;
- (plain) what the live traits cost: in rounds (``--traits-rounds``, default
  3), the worker with the model's predictive part removed and with the whole
  model, catch-up only, back to back in alternating order; the median ratio;
- (eos) the worker with ``RESCORER_PROCESSING_GUARANTEE=exactly_once``: every
  figure of the durable store's phase, what Kafka transactions cost.

Rates of the Faust apps and the worker are measured from their consumer
group's committed offsets (the worker commits only positions whose outputs
and changelog are acknowledged), from the first commit to the last, so
start-up is excluded alike. Then, with the worker caught up:

- drift sanity: the largest feature PSI the worker reports on this no-drift
  history (its reference is the same history);
- restart: SIGTERM (time to exit), start again, seconds until it has restored
  its customers and turns a new event into a change;
- latency: events produced at a fixed rate (default 5,000/s for 30 s), each a
  new customer's first purchase, dated 40 days after the history so that the
  whole pre-loaded population becomes due for the sweep at once; latency runs
  from the event's produce time to the moment the broker appended its change
  (the changes topic is created with ``LogAppendTime``), and (``p99_visible``)
  to the moment a ``read_committed`` consumer received it: in exactly-once
  mode a change is visible only once its transaction is committed;
- state: mean size of the latest changelog value per customer.

Usage: ``python bench/stream_throughput.py [--customers 100000] [--events 500000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPartition
from kafka.admin import NewTopic

from offline.event_validation import Rejections
from offline.events_io import EventLog
from offline.synthetic import synthetic_events
from offline.trainer import TrainConfig, train
from rescorer.common import scrape_metrics, stop_process
from rescorer.devkafka import provide_broker
from rescorer.devkafka.local import free_port
from schemas.events import CustomerEvent
from schemas.registry import ModelRegistry

PARTITIONS = 8
ROOT = Path(__file__).resolve().parents[1]


def history(customers: int, events: int) -> pl.DataFrame:
    """`events` events of `customers` synthetic customers, each with its first purchase."""
    frame, _ = synthetic_events(customers, seed=7)
    frame = frame.with_row_index("row")
    first = (
        frame.filter(pl.col("type") == "purchase")
        .sort("occurred_at")
        .group_by("customer_id", maintain_order=True)
        .first()
    )
    rest = frame.join(first.select("row"), on="row", how="anti")
    keep = min(rest.height, max(0, events - first.height))
    sample = pl.concat([first.select(frame.columns), rest.sample(n=keep, seed=7)])
    return sample.drop("row").sort("occurred_at")


def produce_history(bootstrap: str, topic: str, frame: pl.DataFrame) -> int:
    rows = frame.with_columns(frame["occurred_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, batch_size=512 * 1024,
        buffer_memory=256 * 1024 * 1024,
    )  # fmt: skip
    n = 0
    for row in rows.iter_rows(named=True):
        body = {k: v for k, v in row.items() if v is not None}
        producer.send(topic, key=row["customer_id"].encode(), value=json.dumps(body).encode())
        n += 1
    producer.flush()
    producer.close()
    return n


async def consume_rate(bootstrap: str, topic: str, total: int, out_topic: str | None) -> float:
    """Events/s from the first fetch to the end: raw, or as a pipe producing 2 per event."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen, start = 0, None
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            if start is None and batches:
                start = time.perf_counter()
            for tp, records in batches.items():
                seen += len(records)
                if out_topic is None:
                    continue
                for record in records:
                    event = CustomerEvent.model_validate_json(record.value)
                    for _ in range(2):
                        await producer.send(
                            out_topic, record.value, key=event.customer_id.encode(),
                            partition=tp.partition,
                        )  # fmt: skip
        await producer.flush()
        assert start is not None
        return total / (time.perf_counter() - start)
    finally:
        await consumer.stop()
        await producer.stop()


async def copy_topic(bootstrap: str, source: str, target: str, total: int) -> None:
    """Every record of `source` into the same partition of `target`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await consumer.start()
    await producer.start()
    try:
        parts = [TopicPartition(source, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        copied = 0
        while copied < total:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                batch = producer.create_batch()
                for record in records:
                    if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                        batch.close()
                        await producer.send_batch(batch, target, partition=tp.partition)
                        batch = producer.create_batch()
                        batch.append(key=record.key, value=record.value, timestamp=None)
                batch.close()
                await producer.send_batch(batch, target, partition=tp.partition)
                copied += len(records)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()


def worker_env(
    bootstrap: str, app_id: str, models_topic: str, model_dir: Path, data_dir: Path
) -> dict[str, str]:
    """A bench worker's environment: this process's, with its own topics (named after
    `app_id`), its model registry and data directory, no standbys, drift every 2 s."""
    return {
        **os.environ, "RESCORER_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "RESCORER_APP_ID": app_id,
        "RESCORER_TOPIC_EVENTS": f"{app_id}-events", "RESCORER_TOPIC_CHANGES": f"{app_id}-changes",
        "RESCORER_TOPIC_BAND_CHANGES": f"{app_id}-band-changes",
        "RESCORER_TOPIC_ASSIGNMENTS": f"{app_id}-segments",
        "RESCORER_TOPIC_DEAD_LETTERS": f"{app_id}-dlq", "RESCORER_TOPIC_MODELS": models_topic,
        "RESCORER_TOPIC_RETRAIN_REQUESTS": f"{app_id}-retrain",
        "RESCORER_TOPIC_FEEDBACK": f"{app_id}-feedback",
        "RESCORER_TOPIC_FEEDBACK_LATEST": f"{app_id}-feedback-latest",
        "RESCORER_PARTITIONS": str(PARTITIONS), "RESCORER_MODEL_DIR": str(model_dir),
        "RESCORER_DATA_DIR": str(data_dir), "RESCORER_STANDBY_REPLICAS": "0",
        "RESCORER_DRIFT_INTERVAL_SECONDS": "2",
    }  # fmt: skip


def committed(admin: KafkaAdminClient, group: str, topic: str) -> int:
    try:
        offsets = admin.list_consumer_group_offsets(group)
    except Exception:  # the group may not exist yet
        return 0
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def group_rate(
    bootstrap: str,
    group: str,
    topic: str,
    total: int,
    child: subprocess.Popen[bytes],
    log: Path,
    profile: Profile | None = None,
) -> float:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise SystemExit(f"{group} exited early; see {log}")
            done = committed(admin, group, topic)
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
                if profile is not None:
                    profile.start(child.pid)
            if done >= total:
                if profile is not None:
                    profile.stop()
                assert first is not None
                if done == first[1]:
                    raise SystemExit(f"{group}: everything arrived in one commit; use more events")
                return (done - first[1]) / (now - first[0])
            time.sleep(0.1)
        raise SystemExit(f"{group} did not finish; see {log}")
    finally:
        admin.close()


class ChangeWatch:
    """Reads the changes topic from its current end, matching changes to probe events,
    as a downstream service would (``read_committed``)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False,
            isolation_level="read_committed", fetch_max_wait_ms=20,
        )  # fmt: skip
        parts = [KafkaPartition(topic, p) for p in self.consumer.partitions_for_topic(topic)]
        self.consumer.assign(parts)
        self.consumer.seek_to_end(*parts)
        for tp in parts:
            self.consumer.position(tp)

    def collect(self, sent: dict[str, int], timeout: float) -> dict[str, tuple[int, int]]:
        """Per probe event id, (when the broker appended its change, when this consumer
        received it) in ms, until all arrived or `timeout`. The two differ by the
        poll's delay, and in exactly-once mode by the wait for the commit."""
        seen: dict[str, tuple[int, int]] = {}
        deadline = time.monotonic() + timeout
        while len(seen) < len(sent) and time.monotonic() < deadline:
            polled = self.consumer.poll(timeout_ms=200)
            received = int(time.time() * 1000)
            for records in polled.values():
                for record in records:
                    trigger = json.loads(record.value).get("trigger_event_id") or ""
                    if trigger in sent:
                        seen[trigger] = (record.timestamp, received)
        return seen

    def follow(self, into: dict[str, tuple[int, int]], stop: threading.Event) -> None:
        """Like `collect`, for every change, into `into`, until `stop` is set (run in a
        thread while the probe produces, so that the receive time is when it arrived)."""
        while not stop.is_set():
            polled = self.consumer.poll(timeout_ms=100)
            received = int(time.time() * 1000)
            for records in polled.values():
                for record in records:
                    trigger = json.loads(record.value).get("trigger_event_id") or ""
                    into[trigger] = (record.timestamp, received)

    def close(self) -> None:
        self.consumer.close()


def probe_event(
    producer: KafkaProducer, topic: str, event_id: str, at: datetime, partition: int | None = None
) -> int:
    body = {"event_id": event_id, "customer_id": event_id, "type": "purchase",
            "occurred_at": at.isoformat(), "amount": 42.0}  # fmt: skip
    stamp = int(time.time() * 1000)
    producer.send(topic, key=event_id.encode(), value=json.dumps(body).encode(),
                  timestamp_ms=stamp, partition=partition)  # fmt: skip
    return stamp


async def produce_at_rate(
    bootstrap: str, topic: str, rate: int, seconds: float, start_at: datetime
) -> dict[str, int]:
    """New customers' first purchases at `rate`/s: {event id: produce time in ms}.

    Sent every 20 ms through aiokafka's batch API, round-robin over the
    partitions (every event is a different customer), so that the load
    generator takes as little as possible of the CPU the worker shares.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent: dict[str, int] = {}
    try:
        tick = 0.02
        per_tick = max(1, int(rate * tick))
        begin = time.perf_counter()
        n = 0
        while time.perf_counter() - begin < seconds:
            batches = {p: producer.create_batch() for p in range(PARTITIONS)}
            stamp = int(time.time() * 1000)
            for _ in range(per_tick):
                event_id = f"lat-{n}"
                at = start_at + timedelta(seconds=n / rate)
                body = {"event_id": event_id, "customer_id": event_id, "type": "purchase",
                        "occurred_at": at.isoformat(), "amount": 42.0}  # fmt: skip
                batches[n % PARTITIONS].append(
                    key=event_id.encode(), value=json.dumps(body).encode(), timestamp=stamp
                )
                sent[event_id] = stamp
                n += 1
            for partition, batch in batches.items():
                batch.close()
                await producer.send_batch(batch, topic, partition=partition)
            await asyncio.sleep(max(0.0, begin + (n / per_tick) * tick - time.perf_counter()))
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def latency(
    bootstrap: str, events: str, changes: str, rate: int, seconds: float, start_at: datetime
) -> tuple[float, float, float, int, int]:
    """(p50 ms, p99 ms, p99 visible ms, matched, sent): from event produce time to change
    append time, and (p99 visible) to when a read_committed consumer received it."""
    watch = ChangeWatch(bootstrap, changes)
    arrived: dict[str, tuple[int, int]] = {}
    stop = threading.Event()
    follower = threading.Thread(target=watch.follow, args=(arrived, stop), daemon=True)
    follower.start()
    try:
        sent = asyncio.run(produce_at_rate(bootstrap, events, rate, seconds, start_at))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not sent.keys() <= arrived.keys():
            time.sleep(0.2)
    finally:
        stop.set()
        follower.join()
        watch.close()
    seen = {e: arrived[e] for e in sent if e in arrived}
    if not seen:
        raise SystemExit("no segment changes arrived for the latency probe")
    delays = [seen[e][0] - sent[e] for e in seen]
    visible = [seen[e][1] - sent[e] for e in seen]
    return (
        float(np.percentile(delays, 50)), float(np.percentile(delays, 99)),
        float(np.percentile(visible, 99)), len(seen), len(sent),
    )  # fmt: skip


def state_bytes(bootstrap: str, topic: str) -> tuple[float, int]:
    """Mean bytes of the latest value (+ key) per key of a changelog, and the key count."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [KafkaPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    latest: dict[bytes, int] = {}
    while any(consumer.position(tp) < end[tp] for tp in parts):
        for records in consumer.poll(timeout_ms=500, max_records=50_000).values():
            for record in records:
                latest[record.key] = len(record.value or b"") + len(record.key or b"")
    consumer.close()
    return sum(latest.values()) / max(1, len(latest)), len(latest)


class Worker:
    """A `rescorer worker` subprocess with its metrics port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rescorer", "worker", "--log-level", "info"],
            env={**env, "RESCORER_METRICS_PORT": str(self.port), "RESCORER_WEB_PORT": "0"},
            stdout=self._out, stderr=subprocess.STDOUT, cwd=log.parent,
        )  # fmt: skip

    def metrics(self) -> dict[str, float]:
        return scrape_metrics(f"http://127.0.0.1:{self.port}/metrics", timeout=5)

    def total(self, prefix: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    def terminate(self) -> float:
        """SIGTERM; seconds until the process exited."""
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        finally:
            self._out.close()
        return time.perf_counter() - started

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        self.process.send_signal(signal.SIGKILL)
        try:
            self.process.wait(60)
        finally:
            self._out.close()

    def stop(self) -> None:
        stop_process(self.process, 60)
        self._out.close()


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except OSError:
            pass  # metrics not up yet
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def spy_command() -> str:
    """py-spy: beside this interpreter (the dev extra installs it into the venv), else PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.is_file() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy, in the dev extra)")
    return found


class Profile:
    """py-spy samples of a process (collapsed stacks to a file), and its top frames."""

    def __init__(self, out: Path | None) -> None:
        self.out = out
        self._spy: subprocess.Popen[bytes] | None = None

    def start(self, pid: int) -> None:
        if self.out is None or self._spy is not None:
            return
        self._spy = subprocess.Popen(
            [spy_command(), "record", "--pid", str(pid), "--format", "raw",
             "--output", str(self.out), "--rate", "200", "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self._spy is None or self.out is None:
            return
        self._spy.send_signal(signal.SIGINT)
        self._spy.wait(60)
        self._spy = None
        own: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        samples = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [f.split(" (")[0] for f in stack.split(";") if f]
            n = int(count)
            samples += n
            if frames:
                own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + n
        print(f"  py-spy: {samples} samples ({self.out.name}); top frames by total time:")
        for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:40]:
            share = 100 * n / samples
            if share < 99.0:
                mine = 100 * own.get(frame, 0) / samples
                print(f"    {share:5.1f}% total {mine:5.1f}% own  {frame}")


@contextmanager
def faust_agent(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "naive_agent.py"), "worker", "-l", "warn"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
        )  # fmt: skip
        try:
            yield child
        finally:
            stop_process(child, 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rate", type=int, default=5000, help="latency probe events/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="latency probe duration")
    parser.add_argument(
        "--profile", type=Path, help="directory for py-spy profiles of the worker (py-spy on PATH)"
    )
    parser.add_argument(
        "--no-faust-agents", dest="faust_agents", action="store_false",
        help="leave out the empty and naive Faust agents (at 2,000-10,000 events/s they take "
        "most of a run with millions of events)",
    )  # fmt: skip
    parser.add_argument(
        "--traits-rounds", type=int, default=3,
        help="rounds of the worker without traits and with them, back to back",
    )  # fmt: skip
    parser.add_argument(
        "--keep", type=Path, help="an empty directory for the run's files (worker logs, data)"
    )
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            raise SystemExit(f"--keep {args.keep}: not empty")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    def profile(name: str) -> Profile:
        return Profile(None if args.profile is None else args.profile.resolve() / f"{name}.txt")

    with provide_broker() as broker, tempfile.TemporaryDirectory() as scratch:
        tmp = scratch if args.keep is None else str(args.keep)
        bootstrap = broker.bootstrap_servers
        work = Path(tmp)
        run = f"b{uuid.uuid4().hex[:6]}"
        events_topic = f"{run}-events"
        frame = history(args.customers, args.events)
        print(f"broker {bootstrap} ({broker.kind}); {frame.height} events, "
              f"{frame['customer_id'].n_unique()} customers, {PARTITIONS} partitions")  # fmt: skip
        result = train(
            EventLog(frame, Rejections(total_rows=frame.height), ["bench"]),
            TrainConfig(bootstrap_resamples=2, holdout_days=0, n_init=2),
        )
        registry = ModelRegistry(work / "models")
        registry.save(result.model)
        registry.promote(result.model.version)
        model_file = work / "model.json"
        model_file.write_text(result.model.model_dump_json())
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        # The broker stamps each change when it appends it: latency is measured to
        # the moment a consumer can read the change, not to when it was queued.
        appended = {"message.timestamp.type": "LogAppendTime"}
        admin.create_topics(
            [NewTopic(events_topic, PARTITIONS, 1), NewTopic(f"{run}-pipe", PARTITIONS, 1)]
        )  # fmt: skip
        admin.close()
        t = time.perf_counter()
        total = produce_history(bootstrap, events_topic, frame)
        print(f"produced {total} events in {time.perf_counter() - t:.1f}s")

        raw = asyncio.run(consume_rate(bootstrap, events_topic, total, None))
        print(f"(raw)    aiokafka consume only:                     {raw:>9,.0f} events/s")
        pipe = asyncio.run(consume_rate(bootstrap, events_topic, total, f"{run}-pipe"))
        print(f"(pipe)   getmany + pydantic decode + 2 sends/event: {pipe:>9,.0f} events/s")

        def agent_rate(mode: str) -> float:
            env = {
                **os.environ, "NAIVE_APP_ID": f"{run}-{mode}", "NAIVE_BOOTSTRAP": bootstrap,
                "NAIVE_PARTITIONS": str(PARTITIONS), "NAIVE_EVENTS": events_topic,
                "NAIVE_CHANGES": f"{run}-{mode}-changes", "NAIVE_MODEL": str(model_file),
                "NAIVE_MODE": mode, "PYTHONPATH": str(ROOT),
            }  # fmt: skip
            log = work / f"{mode}.log"
            with faust_agent(env, log) as child:
                return group_rate(bootstrap, f"{run}-{mode}", events_topic, total, child, log)

        empty = naive = float("nan")
        if args.faust_agents:
            empty = agent_rate("empty")
            print(f"(empty)  Faust agent doing nothing:                 {empty:>9,.0f} events/s")
            naive = agent_rate("naive")
            print(f"(naive)  textbook Faust agent:                      {naive:>9,.0f} events/s")

        def env_of(store: str) -> dict[str, str]:
            app_id = f"{run}-{store}"
            return {
                **worker_env(bootstrap, app_id, f"{run}-models", work / "models",
                             work / f"{store}-data"),
                "RESCORER_STORE": f"{store}://",
                # Static membership: a worker restarted within the session timeout keeps
                # its partitions without waiting for the group to notice it died.
                "RESCORER_GROUP_INSTANCE_ID": f"{app_id}-a",
            }  # fmt: skip

        rounds = [f"r{i}" for i in range(1, args.traits_rounds + 1)]
        pairs = [f"{kind}-{r}" for r in rounds for kind in ("plain", "traits")]
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics(
            [NewTopic(f"{run}-{store}-changes", PARTITIONS, 1, topic_configs=appended)
             for store in PHASES]
            + [NewTopic(f"{run}-{store}-events", PARTITIONS, 1) for store in (*PHASES, *pairs)]
        )  # fmt: skip
        admin.close()
        for store in (*PHASES, *pairs):  # each worker gets the history alone, probes and all
            asyncio.run(copy_topic(bootstrap, events_topic, f"{run}-{store}-events", total))
        plain_models = ModelRegistry(work / "plain-models")
        plain_models.save(result.model.model_copy(update={"traits": None}))
        plain_models.promote(result.model.version)

        def catch_up(name: str) -> float:
            """Events/s of a durable-store worker from 0 to the end (`plain-*`: without
            traits), on its own copy of the history."""
            env = {**env_of(name), "RESCORER_STORE": "rescorer://"}
            if name.startswith("plain"):
                env["RESCORER_MODEL_DIR"] = str(plain_models.root)
                env["RESCORER_TOPIC_MODELS"] = f"{run}-plain-models"
            (work / name).mkdir()
            log = work / name / "worker.log"
            worker = Worker(env, log)
            try:
                return group_rate(
                    bootstrap, env["RESCORER_APP_ID"], env["RESCORER_TOPIC_EVENTS"], total,
                    worker.process, log, profile(f"{name}-catch-up"),
                )  # fmt: skip
            finally:
                worker.stop()

        # What the traits cost, in rounds of the two back to back, in alternating order
        # (without first, then with first, ...), so that whatever the machine does
        # meanwhile falls on both alike; the median ratio.
        print("-- workers with the rescorer:// store, a model without traits and with them")
        plains, ratios = [], []
        for i, r in enumerate(rounds):
            if i % 2 == 0:
                without, with_traits = catch_up(f"plain-{r}"), catch_up(f"traits-{r}")
            else:
                with_traits, without = catch_up(f"traits-{r}"), catch_up(f"plain-{r}")
            plains.append(without)
            ratios.append(with_traits / without)
            print(f"(plain)  round {r[1:]}: without traits {without:>9,.0f} events/s, with "
                  f"{with_traits:>9,.0f}: {with_traits / without:.3f}x")  # fmt: skip
        plain, traits_ratio = statistics.median(plains), statistics.median(ratios)
        latest = frame["occurred_at"].max().replace(tzinfo=UTC)  # type: ignore[union-attr]
        customers = frame["customer_id"].n_unique()
        figures: dict[str, StoreFigures] = {}
        for store in STORES:
            print(f"-- worker with the {store}:// store")
            figures[store] = store_phase(
                store, bootstrap, env_of(store), work / store, total, customers, latest, args,
                profile,
            )  # fmt: skip
        print("-- worker with the rescorer:// store, exactly once (Kafka transactions)")
        eos_env = {**env_of("eos"), "RESCORER_STORE": "rescorer://",
                   "RESCORER_PROCESSING_GUARANTEE": "exactly_once"}  # fmt: skip
        figures["eos"] = store_phase(
            "eos", bootstrap, eos_env, work / "eos", total, customers, latest, args, profile
        )
        durable, memory, eos = figures["rescorer"], figures["memory"], figures["eos"]
        per_customer, keys = state_bytes(bootstrap, f"{run}-rescorer-customers-changelog")
        print(f"state: {per_customer:.0f} bytes per customer over {keys:,} customers "
              "(latest changelog value + key)")  # fmt: skip
        print("side by side (rescorer:// durable | memory:// | rescorer:// exactly once):")
        for name, unit in STORE_FIGURES:
            values = " | ".join(f"{getattr(f, name):>10.2f}" for f in (durable, memory, eos))
            print(f"  {name:<22} {values} {unit}")
        print(
            f"exactly once: {eos.worker_eps:,.0f} events/s, "
            f"{eos.worker_eps / durable.worker_eps:.2f}x "
            f"at least once; p99 visible {eos.p99_visible_ms:.0f} ms against "
            f"{durable.p99_visible_ms:.0f} ms"
        )
        print(
            f"traits: the worker with traits at {traits_ratio:.3f}x the worker without "
            f"(median of {len(ratios)} rounds; >= 0.9)"
        )
        print(
            f"targets: ratio_pipe {durable.worker_eps / pipe:.2f} (>= 0.8), worker/empty Faust "
            f"{durable.worker_eps / empty:.1f} (>= 2), p99 {durable.p99_ms:.0f} ms (< 100), "
            f"restart {durable.restart_s:.1f} s, after SIGKILL {durable.restart_kill_s:.1f} s, "
            f"max PSI {durable.max_psi:.4f} (< 0.05), {per_customer:.0f} bytes/customer (<= 220)"
        )
        print(
            f"RESULT customers={customers} worker_eps={durable.worker_eps:.0f} "
            f"memory_worker_eps={memory.worker_eps:.0f} plain_worker_eps={plain:.0f} "
            f"traits_ratio={traits_ratio:.3f} pipe_eps={pipe:.0f} raw_eps={raw:.0f} "
            f"empty_faust_eps={empty:.0f} naive_eps={naive:.0f} "
            f"ratio_pipe={durable.worker_eps / pipe:.3f} "
            f"memory_ratio_pipe={memory.worker_eps / pipe:.3f} rate={args.rate} "
            f"p50_ms={durable.p50_ms:.0f} p99_ms={durable.p99_ms:.0f} "
            f"memory_p99_ms={memory.p99_ms:.0f} restart_s={durable.restart_s:.1f} "
            f"restart_kill_s={durable.restart_kill_s:.1f} failover_s={durable.failover_s:.1f} "
            f"memory_restart_s={memory.restart_s:.1f} "
            f"memory_restart_kill_s={memory.restart_kill_s:.1f} "
            f"memory_failover_s={memory.failover_s:.1f} "
            f"p99_visible_ms={durable.p99_visible_ms:.0f} eos_worker_eps={eos.worker_eps:.0f} "
            f"eos_ratio={eos.worker_eps / durable.worker_eps:.3f} "
            f"eos_ratio_pipe={eos.worker_eps / pipe:.3f} eos_p99_ms={eos.p99_ms:.0f} "
            f"eos_p99_visible_ms={eos.p99_visible_ms:.0f} eos_restart_s={eos.restart_s:.1f} "
            f"eos_restart_kill_s={eos.restart_kill_s:.1f} eos_failover_s={eos.failover_s:.1f} "
            f"rss_bytes_per_customer={durable.rss_bytes_per_customer:.0f} "
            f"memory_rss_bytes_per_customer={memory.rss_bytes_per_customer:.0f} "
            f"disk_bytes_per_customer={durable.disk_bytes_per_customer:.0f} "
            f"max_psi_no_drift={durable.max_psi:.6f} bytes_per_customer={per_customer:.0f}"
        )


STORES = ("rescorer", "memory")
PHASES = (*STORES, "eos")
"""Worker phases: each store at least once, and the durable store in exactly-once mode."""
STORE_FIGURES = (
    ("worker_eps", "events/s"),
    ("restart_s", "s (SIGTERM, start, first change)"),
    ("restart_kill_s", "s (SIGKILL, start, first change)"),
    ("failover_s", "s (one of two killed, first change of its partition from the other)"),
    ("p50_ms", "ms"),
    ("p99_ms", "ms"),
    ("p99_visible_ms", "ms (to a read_committed consumer)"),
    ("rss_bytes_per_customer", "bytes resident per customer"),
    ("disk_bytes_per_customer", "bytes on disk per customer"),
)


@dataclass
class StoreFigures:
    """What one store's worker phase measured."""

    worker_eps: float = 0.0
    restart_s: float = 0.0
    restart_kill_s: float = 0.0
    failover_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p99_visible_ms: float = 0.0
    rss_bytes_per_customer: float = 0.0
    disk_bytes_per_customer: float = 0.0
    max_psi: float = 0.0


def resident_bytes(pid: int) -> int:
    """The process's resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def idle_resident_bytes(env: dict[str, str], work: Path) -> int:
    """Resident bytes of a worker with the same settings, a model and no customers."""
    app_id = f"{env['RESCORER_APP_ID']}-idle"
    idle = {**env, "RESCORER_APP_ID": app_id, "RESCORER_TOPIC_EVENTS": f"{app_id}-events",
            "RESCORER_DATA_DIR": str(work / "idle-data"),
            "RESCORER_GROUP_INSTANCE_ID": f"{app_id}-a"}  # fmt: skip
    worker = Worker(idle, work / "idle.log")
    try:
        wait_for(lambda: worker.total("rescorer_model_version") > 0, 120, "an idle worker")
        time.sleep(3)
        return resident_bytes(worker.process.pid)
    finally:
        worker.stop()


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def first_change(bootstrap: str, env: dict[str, str], marker: str, at: datetime,
                 partition: int | None = None, timeout: float = 600) -> None:  # fmt: skip
    """Produce a new customer's first purchase and wait for its change."""
    watch = ChangeWatch(bootstrap, env["RESCORER_TOPIC_CHANGES"])
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    sent = {marker: probe_event(producer, env["RESCORER_TOPIC_EVENTS"], marker, at, partition)}
    producer.flush()
    producer.close()
    try:
        if not watch.collect(sent, timeout=timeout):
            raise SystemExit(f"no change for {marker}")
    finally:
        watch.close()


def owned_partitions(worker: Worker) -> set[int]:
    return {
        int(k.split('partition="')[1].split('"')[0])
        for k in worker.metrics()
        if k.startswith("rescorer_sweep_scheduled_customers{")
    }


def store_phase(
    name: str,
    bootstrap: str,
    env: dict[str, str],
    work: Path,
    total: int,
    customers: int,
    latest: datetime,
    args: argparse.Namespace,
    profile: Callable[[str], Profile],
) -> StoreFigures:
    """One store (or mode): catch-up rate, restarts, failover, latency, memory and disk."""
    work.mkdir()
    figures = StoreFigures()
    empty_rss = idle_resident_bytes(env, work)
    log = work / "worker.log"
    worker = Worker(env, log)
    try:
        figures.worker_eps = group_rate(
            bootstrap, env["RESCORER_APP_ID"], env["RESCORER_TOPIC_EVENTS"], total,
            worker.process, log, profile(f"{name}-catch-up"),
        )  # fmt: skip
        print(f"(worker) rescorer worker, 0 to end, flushed:        {figures.worker_eps:>9,.0f} "
              "events/s")  # fmt: skip
        wait_for(lambda: worker.total("rescorer_drift_window_customers") > 0, 60, "drift")
        # Caught up means the sweep too: the history leaves every customer due, and
        # until it has re-scored them their features are as of their last event.
        swept = time.perf_counter()
        wait_for(lambda: worker.total("rescorer_sweep_overdue_customers") == 0, 600, "the sweep")
        print(f"sweep backlog cleared {time.perf_counter() - swept:.1f}s after catch-up")
        time.sleep(5)  # two drift ticks after that
        psi = {k: v for k, v in worker.metrics().items() if k.startswith("rescorer_feature_psi")}
        figures.max_psi = max(psi.values())
        each = ", ".join(f"{k.split(chr(34))[1]} {v:.6f}" for k, v in psi.items())
        print(f"drift on the no-drift history: max PSI {figures.max_psi:.6f} ({each})")
        rss = resident_bytes(worker.process.pid)
        figures.rss_bytes_per_customer = (rss - empty_rss) / customers
        disk = directory_bytes(Path(env["RESCORER_DATA_DIR"]))
        figures.disk_bytes_per_customer = disk / customers
        print(f"resident {rss / 2**20:,.0f} MiB, {empty_rss / 2**20:,.0f} MiB of it a worker "
              f"without customers ({figures.rss_bytes_per_customer:.0f} bytes per customer), "
              f"{disk / 2**20:,.1f} MiB on disk")  # fmt: skip

        stop_s = worker.terminate()
        print(f"SIGTERM: worker exited in {stop_s:.1f}s")
        started = time.perf_counter()
        worker = Worker(env, log)
        first_change(bootstrap, env, "restart-0", latest)
        figures.restart_s = time.perf_counter() - started
        print(f"restart: {figures.restart_s:.1f}s from start to the first change")

        worker.kill()
        started = time.perf_counter()
        worker = Worker(env, log)
        first_change(bootstrap, env, "restart-1", latest)
        figures.restart_kill_s = time.perf_counter() - started
        wait_for(lambda: worker.total("rescorer_sweep_scheduled_customers") > 0, 30, "gauges")
        restored = worker.total("rescorer_sweep_scheduled_customers")
        print(f"restart after SIGKILL: {figures.restart_kill_s:.1f}s from start to the first "
              f"change ({restored:,.0f} customers restored)")  # fmt: skip

        figures.p50_ms, figures.p99_ms, figures.p99_visible_ms = latency_phase(
            bootstrap, env, worker, args, latest, profile(f"{name}-latency")
        )
        figures.failover_s = failover(bootstrap, env, work, worker, latest)
        worker = None  # type: ignore[assignment] # failover stopped it
    finally:
        if worker is not None:
            worker.stop()
    return figures


def latency_phase(
    bootstrap: str,
    env: dict[str, str],
    worker: Worker,
    args: argparse.Namespace,
    latest: datetime,
    probe: Profile,
) -> tuple[float, float, float]:
    """p50, p99 and p99 visible of the probe, with the whole population due for the sweep."""
    swept_before = worker.total("rescorer_swept_customers_total")
    steps_before = worker.metrics()
    probe.start(worker.process.pid)
    p50, p99, p99_visible, matched, sent = latency(
        bootstrap, env["RESCORER_TOPIC_EVENTS"], env["RESCORER_TOPIC_CHANGES"], args.rate,
        args.seconds, latest + timedelta(days=40),
    )  # fmt: skip
    probe.stop()
    swept = worker.total("rescorer_swept_customers_total") - swept_before
    steps_after = worker.metrics()

    def spent(name: str) -> tuple[float, float]:
        """(count, mean ms) of a duration histogram over the probe."""
        count = steps_after[f"{name}_count"] - steps_before.get(f"{name}_count", 0.0)
        total = steps_after[f"{name}_sum"] - steps_before.get(f"{name}_sum", 0.0)
        return count, 1000 * total / max(1.0, count)

    batches, batch_ms = spent("rescorer_batch_duration_seconds")
    slices, slice_ms = spent("rescorer_sweep_duration_seconds")
    print(f"during the probe: {batches:,.0f} event batches of {batch_ms:.1f} ms on "
          f"average (decode to flushed), {slices:,.0f} sweep slices of "
          f"{slice_ms:.1f} ms")  # fmt: skip
    print(f"latency at {args.rate}/s over {args.seconds:.0f}s ({matched}/{sent} changes) "
          f"with the whole population due: p50 {p50:.0f} ms, p99 {p99:.0f} ms "
          f"(received by a read_committed consumer: p99 {p99_visible:.0f} ms); "
          f"the sweep re-scored {swept:,.0f} customers meanwhile")  # fmt: skip
    return p50, p99, p99_visible


FAILOVER_SESSION_SECONDS = 10


def failover(
    bootstrap: str, env: dict[str, str], work: Path, first: Worker, latest: datetime
) -> float:
    """Two workers with a standby each; one is killed: seconds to a change of its partition.

    The group notices the death after the session timeout (static membership
    keeps a member's partitions that long), which this figure includes.
    """
    first.terminate()
    shared = {**env, "RESCORER_STANDBY_REPLICAS": "1",
              "RESCORER_SESSION_TIMEOUT_SECONDS": str(FAILOVER_SESSION_SECONDS)}  # fmt: skip
    a = Worker(shared, work / "worker.log")
    b_env = {**shared, "RESCORER_DATA_DIR": str(work / "b-data"),
             "RESCORER_GROUP_INSTANCE_ID": f"{env['RESCORER_APP_ID']}-b"}  # fmt: skip
    b = Worker(b_env, work / "worker-b.log")
    try:
        first_change(bootstrap, env, "failover-warm", latest)
        wait_for(lambda: owned_partitions(a) and owned_partitions(b), 300, "both workers")
        time.sleep(3 * float(env["RESCORER_DRIFT_INTERVAL_SECONDS"]))  # gauges of the new split
        # The standby copies are current once the standby changelog readers caught up.
        try:
            wait_for(lambda: b.total("rescorer_standby_lag_records") == 0, 120, "standby replicas")
        except SystemExit:
            lag = b.total("rescorer_standby_lag_records")
            print(f"failover: the standby replicas were still {lag:,.0f} records behind")
        victim = sorted(owned_partitions(a))[0]
        a.kill()
        started = time.perf_counter()
        first_change(bootstrap, env, "failover-0", latest, partition=victim)
        seconds = time.perf_counter() - started
        print(f"failover: {seconds:.1f}s from SIGKILL of one of two workers to a change of "
              f"its partition {victim} by the other (session timeout "
              f"{FAILOVER_SESSION_SECONDS} s)")  # fmt: skip
        return seconds
    finally:
        for worker in (a, b):
            if worker.process.poll() is None:
                worker.stop()


if __name__ == "__main__":
    main()
