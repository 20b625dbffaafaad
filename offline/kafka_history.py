"""The events topic split by customer on local disk: training from Kafka out of core.

The topic is read from its beginning to the last stable offsets seen at the
start, committed records only, by `offline.topic_values` (Fetch requests of
its own, no consumer group, nothing committed; the values taken straight out
of the record batches, not through one consumer record each). Fetched values
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
from typing import cast

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from kafka import TopicPartition as KafkaTopicPartition

from offline.allocator import keep_large_buffers
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
from offline.topic_values import Span, read_values
from schemas.settings import RescorerSettings

CHUNK_RECORDS = 500_000
"""Records per chunk written and split at once (a few hundred MB at most in memory)."""
NOT_AN_OBJECT = "payload is not a JSON object"
PROGRESS_EVERY = 1_000_000
"""Records between two progress lines."""


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
        try:  # (a tombstone's None fails the join: faster than looking for one first)
            blob = b"\n".join(cast("Sequence[bytes]", values))
        except TypeError:
            blob = None
        if blob is not None and blob.count(b"\n") == len(values) - 1 and b"\r" not in blob:
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
        with path.open("wb") as out:  # blob by blob: no copy of the whole chunk
            for blob in self.blobs:
                out.write(blob)
                out.write(b"\n")
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


def _bounds(settings: RescorerSettings, topic: str) -> dict[int, Span]:
    """Each partition's offsets to read, fixed now: from its log start to its last stable
    offset (an open transaction's records are not read: its outcome is not known yet)."""
    consumer = open_consumer(settings, group_id=None, isolation_level="read_committed")
    try:
        # (kafka-python asks the cluster for a topic it was not told of.)
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise InputError(f"topic {topic} does not exist or has no partitions")
        assigned = [KafkaTopicPartition(topic, p) for p in sorted(partitions)]
        starts = consumer.beginning_offsets(assigned)
        ends = consumer.end_offsets(assigned)
    finally:
        consumer.close()
    return {tp.partition: Span(starts[tp], ends[tp]) for tp in assigned}


async def _drain(
    settings: RescorerSettings,
    topic: str,
    spans: dict[int, Span],
    chunks: _Chunks,
    progress: Callable[[str], None] | None,
) -> None:
    keep_large_buffers()  # (a third faster: no page faulted in again per fetch)
    client = AIOKafkaClient(**settings.aiokafka_config())
    try:
        await client.bootstrap()
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}"
        ) from exc
    read = dict.fromkeys(spans, 0)
    reported = [0]

    def on_values(partition: int, values: list[bytes | None]) -> None:
        chunks.add_all(values)
        read[partition] += len(values)
        total = sum(read.values())
        if progress and total - reported[0] >= PROGRESS_EVERY:
            reported[0] = total
            progress(f"read {total} records from {topic}")

    def on_done(partition: int) -> None:
        if progress:
            progress(f"{topic}[{partition}]: read {read[partition]} records to its end")

    try:
        await client.add_topic(topic)
        await read_values(client, topic, spans, on_values, on_done)
    finally:
        await client.close()


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

    try:
        spans = _bounds(settings, topic)
        records = sum(span.end - span.position for span in spans.values())
        sources = [*map(str, paths), f"kafka:{topic}"]
        log = new_log(work_dir, partition_count(paths, records), sources)
        holder.append(log)
        if paths:
            if progress:
                progress(f"splitting {len(paths)} event files by customer")
            from_files.extend(split_files(log, paths))
        chunks = _Chunks(log, first_index=len(paths))
        try:
            asyncio.run(_drain(settings, topic, spans, chunks, progress))
            chunks.finish()
        except BaseException:
            chunks.abandon()
            raise
        unparsable = {NOT_JSON_LINE: (len(from_files), from_files),
                      NOT_AN_OBJECT: (chunks.unparsable, chunks.examples)}  # fmt: skip
        finish_split(log, unparsable, max_reject_share)
    except BaseException:
        for made in holder:
            made.close()
        raise
    return log
