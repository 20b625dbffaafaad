"""The events topic split by customer on local disk: training from Kafka out of core.

The topic is read from its beginning to the end offsets seen at the start,
with aiokafka's batched ``getmany`` (a group-less consumer that assigns every
partition, so nothing is committed and no group is joined). Fetched values
are gathered into chunks of `CHUNK_RECORDS`; each chunk is written as a JSON
Lines file and split exactly like an ``--events`` file
(`offline.partitioned_log.split_file`: column-wise validation, Parquet
partitions by a hash of the customer id, rejected rows kept with their
reason), then deleted. Memory holds one chunk, never the topic. Input order
(for "first occurrence" of a redelivered event) is the order records were
fetched in: per partition, offset order.

Event files can come first (`files`): a topic keeps days or weeks of events
(its retention), the RFM window a year, and the older part lives in files
(a daily Parquet export, say). They are split into the same partitions
before the topic, as its first inputs, so an event in both is counted once,
where the files have it: the contract's rule, (customer_id, event_id) once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from offline.errors import InputError, KafkaUnavailable
from offline.event_validation import EXAMPLES
from offline.kafka_io import open_consumer
from offline.partitioned_log import (
    NOT_JSON_LINE,
    PartitionedLog,
    event_files,
    finish_split,
    new_log,
    partition_count,
    split_file,
    split_files,
)
from schemas.settings import RescorerSettings

CHUNK_RECORDS = 500_000
"""Records per chunk written and split at once (a few hundred MB at most in memory)."""
NOT_AN_OBJECT = "payload is not a JSON object"
FETCH_BYTES = 8 * 1024 * 1024


class _Chunks:
    """Values gathered into JSON Lines chunks and split into the log's partitions.

    A fetched batch is checked and joined at once (the values are one line
    each, normally); a full chunk is written and split in a thread of its own
    while the next one is gathered (polars does the work, outside the GIL), so
    memory holds at most two chunks.
    """

    def __init__(self, log: PartitionedLog, first_index: int = 0) -> None:
        self.log = log
        self.blobs: list[bytes] = []
        self.records = 0
        self.index = first_index
        self.unparsable = 0
        self.examples: list[str] = []
        self._splitter = ThreadPoolExecutor(1, thread_name_prefix="split")
        self._splitting: Future[list[str]] | None = None

    def add_all(self, values: Sequence[bytes | None]) -> None:
        """Add fetched values, in order."""
        while values:
            room = CHUNK_RECORDS - self.records
            taken, values = values[:room], values[room:]
            self._add_lines(taken)
            if self.records >= CHUNK_RECORDS:
                self.flush()

    def _add_lines(self, values: Sequence[bytes | None]) -> None:
        if None not in values:
            blob = b"\n".join(cast("Sequence[bytes]", values))
            if blob.count(b"\n") == len(values) - 1 and b"\r" not in blob:
                self.blobs.append(blob)
                self.records += len(values)
                return
        lines = []
        for value in values:
            if value is None or b"\n" in value or b"\r" in value:
                # A tombstone, or JSON over lines: one line of compact JSON, or a rejection.
                line = _one_line(value)
                if line is None:
                    self._bad(repr(value[:80]) if value is not None else "None")
                    continue
                value = line
            lines.append(value)
        if lines:
            self.blobs.append(b"\n".join(lines))
            self.records += len(lines)

    def _bad(self, example: str) -> None:
        self.unparsable += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def flush(self) -> None:
        """Hand the gathered chunk to the splitting thread (after the one before it)."""
        self._wait()
        if not self.blobs:
            return
        path = self.log.directory / f"chunk{self.index:05d}.jsonl"
        path.write_bytes(b"\n".join(self.blobs))
        self.blobs, self.records = [], 0
        self._splitting = self._splitter.submit(_split_chunk, self.log, self.index, path)
        self.index += 1

    def finish(self) -> None:
        """Split what is left and wait for every split."""
        try:
            self.flush()
            self._wait()
        finally:
            self._splitter.shutdown(wait=True, cancel_futures=True)

    def abandon(self) -> None:
        """Stop splitting (the read failed): wait for a split in progress, start no other."""
        self._splitter.shutdown(wait=True, cancel_futures=True)

    def _wait(self) -> None:
        if self._splitting is not None:
            splitting, self._splitting = self._splitting, None
            for line in splitting.result():
                self._bad(line)


def _split_chunk(log: PartitionedLog, index: int, path: Path) -> list[str]:
    try:
        return split_file(log, index, path)
    finally:
        path.unlink()


def _one_line(value: bytes | None) -> bytes | None:
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    return json.dumps(decoded).encode() if isinstance(decoded, dict) else None


def _partitions(settings: RescorerSettings, topic: str) -> list[int]:
    """The topic's partitions (kafka-python asks the cluster for a topic it was not told of)."""
    consumer = open_consumer(settings, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic)
    finally:
        consumer.close()
    if not partitions:
        raise InputError(f"topic {topic} does not exist or has no partitions")
    return sorted(partitions)


async def _drain(
    settings: RescorerSettings,
    topic: str,
    partitions: list[int],
    on_bounds: Callable[[int], _Chunks],
    progress: Callable[[str], None] | None,
) -> _Chunks:
    consumer = AIOKafkaConsumer(
        **settings.aiokafka_config(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=4 * FETCH_BYTES,
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}"
        ) from exc
    try:
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        starts: dict[Any, int] = await consumer.beginning_offsets(assigned)
        ends: dict[Any, int] = await consumer.end_offsets(assigned)
        for tp in assigned:
            consumer.seek(tp, starts[tp])
        chunks = on_bounds(sum(ends[tp] - starts[tp] for tp in assigned))
        try:
            remaining = {tp for tp in assigned if ends[tp] > starts[tp]}
            read = dict.fromkeys(assigned, 0)
            while remaining:
                batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=50_000)
                for tp, records in batches.items():
                    end = ends[tp]
                    values = [record.value for record in records if record.offset < end]
                    chunks.add_all(values)
                    read[tp] += len(values)
                for tp in list(remaining):
                    # Positions, not the last offset read: a compacted or transactional
                    # partition may end with offsets that deliver no record.
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
                        consumer.pause(tp)
                        if progress:
                            progress(f"{topic}[{tp.partition}]: read {read[tp]} records to its end")
                if progress and batches:
                    progress(f"read {sum(read.values())} records from {topic}")
            chunks.finish()
        except BaseException:
            chunks.abandon()
            raise
        return chunks
    finally:
        await consumer.stop()


def partition_topic(
    settings: RescorerSettings,
    max_reject_share: float = 0.01,
    work_dir: str | None = None,
    progress: Callable[[str], None] | None = None,
    files: Sequence[str] = (),
) -> PartitionedLog:
    """Read, validate and split the events topic by customer under `work_dir` (a
    temporary directory), in bounded memory; the same rules and errors as the files.

    With `files` (paths, directories or globs of event files), the log holds
    their events and then the topic's, each (customer_id, event_id) once.
    """
    topic = settings.topics.events
    paths = event_files(files) if files else []
    if work_dir is not None and not Path(work_dir).is_dir():
        raise InputError(f"work directory {work_dir} does not exist")
    holder: list[PartitionedLog] = []
    from_files: list[str] = []

    def on_bounds(records: int) -> _Chunks:
        sources = [*map(str, paths), f"kafka:{topic}"]
        log = new_log(work_dir, partition_count(paths, records), sources)
        holder.append(log)
        if paths:
            if progress:
                progress(f"splitting {len(paths)} event files by customer")
            from_files.extend(split_files(log, paths))
        return _Chunks(log, first_index=len(paths))

    try:
        partitions = _partitions(settings, topic)
        chunks = asyncio.run(_drain(settings, topic, partitions, on_bounds, progress))
        log = chunks.log
        unparsable = {NOT_JSON_LINE: (len(from_files), from_files),
                      NOT_AN_OBJECT: (chunks.unparsable, chunks.examples)}  # fmt: skip
        finish_split(log, unparsable, max_reject_share)
    except BaseException:
        for made in holder:
            made.close()
        raise
    return log
