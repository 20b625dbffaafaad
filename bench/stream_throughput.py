"""Benchmark: the stream worker against a raw consumer and a naive Faust agent.

With a real local broker (the same provider as the tests), in one run:

1. pre-produce N events (default 500k for 100k customers, synthetic log) to an
   8-partition topic, and train a model on the same log;
2. (a) a raw aiokafka consumer reads the topic from offset 0 to the end, no processing;
3. (b) the naive Faust agent (bench/naive_agent.py: one event at a time, table
   lookup, River predict_one) processes it from 0 to the end;
4. (ref) the same Faust app with an agent that does nothing: the ceiling of
   Faust's per-message pipeline on this machine, for reading (c);
5. (c) ``rescorer worker`` processes it from 0 to the end.

For (b) and (c) progress is the consumer group's committed offsets (Faust
commits only after the producer, outputs and changelog included, is flushed);
the rate is measured from the first commit to the last, so start-up is
excluded the same way for both. Then, with the worker caught up, events are
produced at a fixed rate (default 2,000/s), each a customer's first purchase
(so each must produce a segment change), and the latency from the event's
produce time to the change's produce time is reported. State size is the
mean size of the latest changelog value per customer.

Usage: ``python bench/stream_throughput.py [--customers 100000] [--events-per-customer 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, timedelta
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPartition
from kafka.admin import NewTopic

from offline.events_io import EventLog, Rejections
from offline.registry import ModelRegistry
from offline.synthetic import synthetic_events
from offline.trainer import TrainConfig, train
from rescorer.common import stop_process
from rescorer.devkafka import provide_broker

PARTITIONS = 8
ROOT = Path(__file__).resolve().parents[1]


def produce_history(bootstrap: str, topic: str, frame: object) -> int:
    import polars as pl

    assert isinstance(frame, pl.DataFrame)
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


async def raw_rate(bootstrap: str, topic: str, total: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen, start = 0, None
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            if start is None and batches:
                start = time.perf_counter()
            seen += sum(len(records) for records in batches.values())
        assert start is not None
        return total / (time.perf_counter() - start)
    finally:
        await consumer.stop()


def committed(admin: KafkaAdminClient, group: str, topic: str) -> int:
    try:
        offsets = admin.list_consumer_group_offsets(group)
    except Exception:  # the group may not exist yet
        return 0
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def group_rate(
    bootstrap: str, group: str, topic: str, total: int, child: subprocess.Popen[bytes], log: Path
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
            if done >= total:
                assert first is not None
                if done == first[1]:
                    raise SystemExit(f"{group}: everything arrived in one commit; use more events")
                return (done - first[1]) / (now - first[0])
            time.sleep(0.1)
        raise SystemExit(f"{group} did not finish; see {log}")
    finally:
        admin.close()


def latency(
    bootstrap: str,
    events_topic: str,
    changes_topic: str,
    rate: int,
    seconds: float,
    start_at: object,
    prefix: str = "lat",
) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, matched) from event produce time to change produce time."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [KafkaPartition(changes_topic, p) for p in consumer.partitions_for_topic(changes_topic)]
    consumer.assign(parts)
    consumer.seek_to_end(*parts)
    for tp in parts:
        consumer.position(tp)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    sent: dict[str, float] = {}
    tick = 0.02
    per_tick = max(1, int(rate * tick))
    begin = time.perf_counter()
    n = 0
    while time.perf_counter() - begin < seconds:
        for _ in range(per_tick):
            event_id = f"{prefix}-{n}"
            at = start_at + timedelta(seconds=n / rate)  # type: ignore[operator]
            body = {"event_id": event_id, "customer_id": event_id, "type": "purchase",
                    "occurred_at": at.isoformat(), "amount": 42.0}  # fmt: skip
            stamp = int(time.time() * 1000)
            producer.send(events_topic, key=body["customer_id"].encode(),
                          value=json.dumps(body).encode(), timestamp_ms=stamp)  # fmt: skip
            sent[event_id] = stamp
            n += 1
        producer.flush()
        next_at = begin + (n / per_tick) * tick
        time.sleep(max(0.0, next_at - time.perf_counter()))
    producer.close()
    delays: list[float] = []
    deadline = time.monotonic() + 60
    while len(delays) < len(sent) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                change = json.loads(record.value)
                stamp = sent.get(change.get("trigger_event_id") or "")
                if stamp is not None:
                    delays.append(record.timestamp - stamp)
    consumer.close()
    if not delays:
        raise SystemExit("no segment changes arrived for the latency probe")
    return float(np.percentile(delays, 50)), float(np.percentile(delays, 99)), len(delays)


def state_bytes(bootstrap: str, topic: str) -> float:
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
    return sum(latest.values()) / max(1, len(latest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events-per-customer", type=float, default=5.0, help="at most ~12")
    parser.add_argument("--rate", type=int, default=2000, help="latency probe events/s")
    parser.add_argument(
        "--also-rate",
        type=int,
        default=1000,
        help="a second, lower probe rate for context (0: off)",
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="latency probe duration")
    args = parser.parse_args()

    with provide_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        bootstrap = broker.bootstrap_servers
        work = Path(tmp)
        run = f"b{uuid.uuid4().hex[:6]}"
        events_topic = f"{run}-events"
        frame, _ = synthetic_events(args.customers, seed=7)
        wanted = int(args.customers * args.events_per_customer)
        if frame.height > wanted:  # the generator gives ~12 per customer; keep a sample
            frame = frame.sample(n=wanted, seed=7)
        frame = frame.sort("occurred_at")
        print(
            f"broker {bootstrap} ({broker.kind}); {frame.height} events, {args.customers} customers"
        )
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
        admin.create_topics([NewTopic(events_topic, PARTITIONS, 1)])
        admin.close()
        t = time.perf_counter()
        total = produce_history(bootstrap, events_topic, frame)
        print(f"produced {total} events in {time.perf_counter() - t:.1f}s")

        raw = asyncio.run(raw_rate(bootstrap, events_topic, total))
        print(f"(a) raw aiokafka consumer: {raw:,.0f} events/s")

        def baseline(mode: str) -> float:
            log = work / f"{mode}.log"
            env = {
                **os.environ, "NAIVE_APP_ID": f"{run}-{mode}", "NAIVE_BOOTSTRAP": bootstrap,
                "NAIVE_PARTITIONS": str(PARTITIONS), "NAIVE_EVENTS": events_topic,
                "NAIVE_CHANGES": f"{run}-{mode}-changes", "NAIVE_MODEL": str(model_file),
                "NAIVE_MODE": mode, "PYTHONPATH": str(ROOT),
            }  # fmt: skip
            with log.open("wb") as out:
                agent = str(ROOT / "bench" / "naive_agent.py")
                child = subprocess.Popen(
                    [sys.executable, agent, "worker", "-l", "warn"],
                    env=env, stdout=out, stderr=subprocess.STDOUT, cwd=work,
                )  # fmt: skip
                try:
                    return group_rate(bootstrap, f"{run}-{mode}", events_topic, total, child, log)
                finally:
                    stop_process(child, 60)

        naive = baseline("naive")
        print(f"(b) naive Faust agent:     {naive:,.0f} events/s")
        empty = baseline("empty")
        print(f"(ref) empty Faust agent:   {empty:,.0f} events/s  (Faust's per-message ceiling)")

        worker_log = work / "worker.log"
        app_id = f"{run}-worker"
        worker_env = {
            **os.environ, "RESCORER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "RESCORER_TOPIC_EVENTS": events_topic, "RESCORER_TOPIC_CHANGES": f"{run}-changes",
            "RESCORER_TOPIC_ASSIGNMENTS": f"{run}-segments",
            "RESCORER_TOPIC_DEAD_LETTERS": f"{run}-dlq", "RESCORER_TOPIC_MODELS": f"{run}-models",
            "RESCORER_TOPIC_RETRAIN_REQUESTS": f"{run}-retrain", "RESCORER_APP_ID": app_id,
            "RESCORER_PARTITIONS": str(PARTITIONS), "RESCORER_MODEL_DIR": str(work / "models"),
            "RESCORER_DATA_DIR": str(work / "worker-data"), "RESCORER_STANDBY_REPLICAS": "0",
            "RESCORER_METRICS_PORT": "0",
        }  # fmt: skip
        with worker_log.open("wb") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "rescorer", "worker", "--log-level", "warning"],
                env=worker_env, stdout=out, stderr=subprocess.STDOUT, cwd=work,
            )  # fmt: skip
            try:
                ours = group_rate(bootstrap, app_id, events_topic, total, child, worker_log)
                print(f"(c) rescorer worker:       {ours:,.0f} events/s")
                latest_event = frame["occurred_at"].max().replace(tzinfo=UTC)  # type: ignore[union-attr]
                p50, p99, matched = latency(
                    bootstrap, events_topic, f"{run}-changes", args.rate, args.seconds, latest_event
                )
                print(f"latency at {args.rate}/s over {args.seconds:.0f}s ({matched} changes): "
                      f"p50 {p50:.0f} ms, p99 {p99:.0f} ms")  # fmt: skip
                if args.also_rate:
                    time.sleep(5)  # let the first probe drain
                    lower = latency(
                        bootstrap, events_topic, f"{run}-changes", args.also_rate, args.seconds,
                        latest_event + timedelta(days=1), prefix="lat2",
                    )  # fmt: skip
                    print(f"latency at {args.also_rate}/s: p50 {lower[0]:.0f} ms, "
                          f"p99 {lower[1]:.0f} ms ({lower[2]} changes)")  # fmt: skip
            finally:
                stop_process(child, 60)
        per_customer = state_bytes(bootstrap, f"{app_id}-customers-changelog")
        print(f"state: {per_customer:.0f} bytes per customer (latest changelog value + key)")
        print(
            f"ratios: worker/raw {ours / raw:.3f} (target >= 0.25), "
            f"worker/naive {ours / naive:.2f} (target > 1), p99 {p99:.0f} ms (target < 250), "
            f"worker/empty-Faust {ours / empty:.2f}"
        )
        print(
            f"RESULT worker_eps={ours:.0f} raw_eps={raw:.0f} naive_eps={naive:.0f} "
            f"ratio_raw={ours / raw:.3f} ratio_naive={ours / naive:.2f} p50_ms={p50:.0f} "
            f"p99_ms={p99:.0f} bytes_per_customer={per_customer:.0f} empty_faust_eps={empty:.0f}"
        )


if __name__ == "__main__":
    main()
