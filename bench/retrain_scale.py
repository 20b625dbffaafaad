"""Benchmark: training from the events topic against training from the same events in Parquet.

A synthetic log (``--customers``, ~20 events each) is written to Parquet,
then produced, as the JSON the contract describes, to an events topic of
``--partitions`` partitions on a broker of this run's own (or
``RESCORER_KAFKA_BOOTSTRAP_SERVERS``). Then, in the same run:

- reference: a bare aiokafka ``getmany`` loop over the whole topic, counting
  records (what reading the topic costs before anything is done with it);
- kafka: ``rescorer train --from-kafka`` (read, validate, split by customer
  on disk in chunks, train, artifact), as a subprocess;
- files: ``rescorer train --events DIR`` on the Parquet files, same options.

Wall time and peak RSS of each child's process tree (`bench.train_scale.timed`).
With ``--replay``, ``rescorer replay`` over the Parquet files is timed too
(minutes: the stream core at a few tens of thousands of events a second).
Usage: ``python -m bench.retrain_scale [--customers 1000000] [--partitions 6]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

from bench.train_scale import GENERATE, timed
from rescorer.devkafka import provide_broker

PRODUCE = r"""
import asyncio, sys, time, zlib
from pathlib import Path
import polars as pl
from aiokafka import AIOKafkaProducer

async def main(bootstrap, topic, folder, partitions):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5,
                                max_batch_size=1024 * 1024, max_request_size=4 * 1024 * 1024)
    await producer.start()
    sent, began = 0, time.perf_counter()
    try:
        for path in sorted(Path(folder).glob("*.parquet")):
            frame = pl.read_parquet(path)
            frame = frame.with_columns(pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
            frame = frame.select(pl.col("customer_id"),
                                 pl.struct(pl.all()).struct.json_encode().alias("value"))
            batches = [producer.create_batch() for _ in range(partitions)]
            pending = []
            for key, value in frame.iter_rows():
                k, v = key.encode(), value.encode()
                p = zlib.crc32(k) % partitions
                if batches[p].append(key=k, value=v, timestamp=None) is None:
                    batches[p].close()
                    pending.append(await producer.send_batch(batches[p], topic, partition=p))
                    batches[p] = producer.create_batch()
                    batches[p].append(key=k, value=v, timestamp=None)
                    if len(pending) > 64:
                        await asyncio.gather(*pending)
                        pending = []
                sent += 1
            for p, batch in enumerate(batches):
                batch.close()
                pending.append(await producer.send_batch(batch, topic, partition=p))
            await asyncio.gather(*pending)
    finally:
        await producer.stop()
    print(f"produced {sent} {time.perf_counter() - began:.1f}")

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""

READ = r"""
import asyncio, sys, time
from aiokafka import AIOKafkaConsumer, TopicPartition

async def main(bootstrap, topic, partitions):
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 * 1024 * 1024,
                                fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        began, read, remaining = time.perf_counter(), 0, set(tps)
        await consumer.seek_to_beginning(*tps)
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=50000)
            read += sum(len(records) for records in batches.values())
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    print(f"read {read} {time.perf_counter() - began:.1f}")

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def _summary(output: str) -> str:
    return next((ln for ln in output.splitlines() if ln.startswith("silhouette")), "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--replay", action="store_true", help="time rescorer replay as well")
    parser.add_argument("--work-dir", help="where logs and splits go (default: a temp dir)")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="record train --from-kafka with py-spy (collapsed stacks in DIR/kafka.txt)",
    )  # fmt: skip
    args = parser.parse_args()

    rescorer = str(Path(sys.executable).with_name("rescorer"))
    with provide_broker() as broker, tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        bootstrap = broker.bootstrap_servers
        topic = f"retrain-scale-{uuid.uuid4().hex[:8]}-events"
        folder = Path(tmp) / "events"
        gen_s, _, gen_out = timed([sys.executable, "-c", GENERATE, str(folder),
                                   str(args.customers), str(args.events_per_customer)])  # fmt: skip
        events = int(gen_out.split()[-1])
        print(f"customers={args.customers} events={events}: Parquet in {gen_s:.0f}s", flush=True)
        _create_topic(bootstrap, topic, args.partitions)
        produce_s, _, out = timed([sys.executable, "-c", PRODUCE, bootstrap, topic, str(folder),
                                   str(args.partitions)])  # fmt: skip
        produced = int(out.split()[-2])
        print(f"produced {produced} records to {topic} ({args.partitions} partitions) in "
              f"{produce_s:.0f}s", flush=True)  # fmt: skip
        read_s, read_mb, out = timed(
            [sys.executable, "-c", READ, bootstrap, topic, str(args.partitions)]
        )
        read_eps = int(out.split()[-2]) / float(out.split()[-1])
        print(f"    reference (aiokafka getmany, count only): {read_s:7.1f}s {read_mb:6.0f} MiB "
              f"{read_eps:,.0f} records/s", flush=True)  # fmt: skip
        env_kafka = {"RESCORER_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "RESCORER_TOPIC_EVENTS": topic}
        os.environ.update(env_kafka)
        common = ["--work-dir", tmp]
        kafka_train = [rescorer, "train", "--from-kafka", *common, "--model-dir",
                       str(Path(tmp) / "mk")]  # fmt: skip
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            spy = str(Path(sys.executable).with_name("py-spy"))
            kafka_train = [spy, "record", "--format", "raw", "--rate", "50", "--threads",
                           "-o", str(args.profile / "kafka.txt"), "--", *kafka_train]  # fmt: skip
        kafka_s, kafka_mb, out = timed(kafka_train)
        print(f"    train --from-kafka:    {kafka_s:7.1f}s {kafka_mb:6.0f} MiB   {_summary(out)}",
              flush=True)  # fmt: skip
        file_s, file_mb, out = timed([rescorer, "train", "--events", str(folder), *common,
                                      "--model-dir", str(Path(tmp) / "mf")])  # fmt: skip
        print(f"    train --events (Parquet): {file_s:4.1f}s {file_mb:6.0f} MiB   {_summary(out)}",
              flush=True)  # fmt: skip
        replay = ""
        if args.replay:
            replay_s, replay_mb, out = timed([rescorer, "replay", "--events", str(folder),
                                              "--model-dir", str(Path(tmp) / "mf"),
                                              "--out", str(Path(tmp) / "replay")])  # fmt: skip
            print(f"    replay: {replay_s:7.1f}s {replay_mb:6.0f} MiB", flush=True)
            replay = f" replay_seconds={replay_s:.0f} replay_peak_rss_mb={replay_mb:.0f}"
        print(
            f"RESULT customers={args.customers} events={events} kafka_seconds={kafka_s:.1f} "
            f"file_seconds={file_s:.1f} ratio={kafka_s / file_s:.2f} "
            f"kafka_peak_rss_mb={kafka_mb:.0f} file_peak_rss_mb={file_mb:.0f} "
            f"raw_read_seconds={read_s:.1f} raw_read_eps={read_eps:.0f}{replay}"
        )


if __name__ == "__main__":
    main()
