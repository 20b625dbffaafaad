"""The durable store against a real broker: behind, ahead, foreign, other app, other format, broken.

Each test runs a worker over a workload, stops it, does something to its
data directory or to the changelogs, and starts it again on the same data
directory. A store it can trust is kept (recovery replays only the changelog
after it); one it cannot is rebuilt from the changelog, with a warning and
``rescorer_store_wipes_total{table,reason}``. Either way the state must end
exactly as the replay says, checked by sending every event again: a state
that lost or invented anything would count the copies or emit for them.
"""

from __future__ import annotations

import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from offline.kafka_io import publish_model
from rescorer.devkafka import ProvidedBroker
from streams.state.log_file import MAGIC, LogMeta, PartitionLog, read_log
from tests.support.exactness import (
    Workload,
    compare,
    latest_assignments,
    new_stack,
    start,
    wait_drained,
    workload,
)
from tests.support.worker_harness import Stack, WorkerProcess, produce, read_all

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]


@pytest.fixture(scope="module")
def work() -> Workload:
    return workload(1_200, days=120, seed=21)


def first_life(stack: Stack, work: Workload) -> Path:
    """Process the workload to the end and stop; the data directory it leaves."""
    publish_model(stack.settings(), work.model)
    produce(stack, work.bodies)
    worker = start(stack, "first", data="shared")
    wait_drained(stack, [worker])
    assert worker.stop() == 0
    return stack.workdir / "data-shared" / "state"


@dataclass(frozen=True)
class Life:
    """What a worker's second life said: its log, and its store wipes by reason."""

    log: str
    wipes: dict[str, float]

    def wiped(self, reason: str, table: str = "customers") -> bool:
        return any(
            f'reason="{reason}"' in name and f'table="{table}"' in name and n >= 1
            for name, n in self.wipes.items()
        )


def second_life(stack: Stack, work: Workload, *, outputs_again: bool = False) -> Life:
    """Start again on the same data directory, send every event again, check exactness.

    Unless the state was lost on purpose (`outputs_again`), the copies must emit
    nothing.
    """
    before = len(read_all(stack, stack.topics.assignments))
    worker = start(stack, "second", data="shared")
    wipes = worker_wipes(worker)
    produce(stack, work.bodies)
    wait_drained(stack, [worker])
    assert worker.stop() == 0
    tally = compare(latest_assignments(stack), work)
    assert tally.exact, f"{tally.result_line()}\n" + "\n".join(tally.examples)
    if not outputs_again:
        assert len(read_all(stack, stack.topics.assignments)) == before
    return Life(worker.log(), wipes)


def worker_wipes(worker: WorkerProcess) -> dict[str, float]:
    """``rescorer_store_wipes_total`` by its labels, as the worker serves it."""
    return {
        name: value
        for name, value in worker.metrics().items()
        if name.startswith("rescorer_store_wipes_total{")
    }


def a_file(state: Path, table: str = "customers") -> Path:
    """The largest partition file of `table`."""
    return max((state / table).glob("p*.log"), key=lambda p: p.stat().st_size)


def frames(path: Path) -> list[int]:
    """Where each frame of a store file starts (the header frame first)."""
    data = path.read_bytes()
    at, starts = len(MAGIC), []
    while at + 8 <= len(data):
        starts.append(at)
        (length,) = struct.unpack_from("<I", data, at)
        at += 8 + length
    return starts


def changelog(stack: Stack, table: str = "customers") -> str:
    return f"{stack.prefix}-{table}-changelog"


def test_a_store_behind_the_changelog_replays_only_the_rest(
    kafka: ProvidedBroker, tmp_path: Path, work: Workload
) -> None:
    stack = new_stack(kafka.bootstrap_servers, tmp_path)
    publish_model(stack.settings(), work.model)
    half = len(work.bodies) // 2
    produce(stack, work.bodies[:half])
    worker = start(stack, "first", data="shared")
    wait_drained(stack, [worker])
    assert worker.stop() == 0
    state = stack.workdir / "data-shared" / "state"
    saved = tmp_path / "saved-state"
    shutil.copytree(state, saved)
    produce(stack, work.bodies[half:])
    worker = start(stack, "middle", data="shared")
    wait_drained(stack, [worker])
    assert worker.stop() == 0
    shutil.rmtree(state)
    shutil.copytree(saved, state)  # the files of the first stop: behind the changelog
    second = second_life(stack, work)
    log = second.log
    behind = [
        int(line.split(", ")[-1].split()[0])
        for line in log.splitlines()
        if "store customers[" in line and "changelog records after it" in line
    ]
    assert behind and sum(behind) > 0, "no partition replayed a tail"
    assert "not used, rebuilding" not in log
    assert not second.wipes


def test_a_torn_last_write_is_dropped_and_the_rest_kept(
    kafka: ProvidedBroker, tmp_path: Path, work: Workload
) -> None:
    stack = new_stack(kafka.bootstrap_servers, tmp_path)
    path = a_file(first_life(stack, work))
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - 7)
    second = second_life(stack, work)
    assert "dropped a torn write" in second.log
    assert not second.wipes


def test_a_corrupted_file_is_rebuilt_from_the_changelog(
    kafka: ProvidedBroker, tmp_path: Path, work: Workload
) -> None:
    stack = new_stack(kafka.bootstrap_servers, tmp_path)
    state = first_life(stack, work)
    # Damage the first data frame of a file with more after it: a damaged last
    # frame cannot be told from a write cut short, and is dropped as one.
    path, starts = next(
        (p, f) for p in sorted((state / "customers").glob("p*.log")) if len(f := frames(p)) >= 3
    )
    data = bytearray(path.read_bytes())
    data[starts[1] + 12] ^= 0xFF
    path.write_bytes(bytes(data))
    second = second_life(stack, work)
    assert "not used, rebuilding it from the changelog: unreadable" in second.log
    assert second.wiped("unreadable")


def test_a_file_of_another_format_version_is_rebuilt(
    kafka: ProvidedBroker, tmp_path: Path, work: Workload
) -> None:
    stack = new_stack(kafka.bootstrap_servers, tmp_path)
    path = a_file(first_life(stack, work))
    meta = read_log(path).meta
    newer = LogMeta(meta.app_id, meta.table, meta.topic, meta.partition, format=meta.format + 1)
    PartitionLog.create(path, newer).close()
    second = second_life(stack, work)
    assert f"on-disk format {meta.format + 1}" in second.log
    assert second.wiped("format")


def test_a_data_directory_of_another_app_id_is_rebuilt(
    kafka: ProvidedBroker, tmp_path: Path, work: Workload
) -> None:
    first = new_stack(kafka.bootstrap_servers, tmp_path)
    first_life(first, work)
    other = new_stack(kafka.bootstrap_servers, tmp_path)  # same work dir, new app id
    publish_model(other.settings(), work.model)
    produce(other, work.bodies)
    worker = start(other, "second", data="shared")
    wipes = worker_wipes(worker)
    wait_drained(other, [worker])
    assert worker.stop() == 0
    assert f"written by app id {first.prefix!r}" in worker.log()
    assert any('reason="app_id"' in name for name in wipes)
    tally = compare(latest_assignments(other), work)
    assert tally.exact, f"{tally.result_line()}\n" + "\n".join(tally.examples)


def test_a_store_ahead_of_recreated_changelogs_is_rebuilt_and_nothing_stale_survives(
    kafka: ProvidedBroker, tmp_path: Path, work: Workload
) -> None:
    stack = new_stack(kafka.bootstrap_servers, tmp_path)
    first_life(stack, work)
    recreate(kafka.bootstrap_servers, [changelog(stack, t) for t in TABLES])
    # All state is gone from Kafka: positions too, so the input is read again
    # from the start, and every event (sent twice in all) counts exactly once.
    second = second_life(stack, work, outputs_again=True)
    assert "the changelog ends at" in second.log
    assert second.wiped("ahead")


def test_a_changelog_holding_another_record_at_the_stores_offset_is_rebuilt(
    kafka: ProvidedBroker, tmp_path: Path, work: Workload
) -> None:
    stack = new_stack(kafka.bootstrap_servers, tmp_path)
    first_life(stack, work)
    topic = changelog(stack)
    records = raw_records(kafka.bootstrap_servers, topic)
    recreate(kafka.bootstrap_servers, [topic], partitions=stack.partitions)
    # The same records, one offset later (the first one twice): the state they
    # make is the same, but not at the offsets the store remembers.
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    for partition, rows in records.items():
        for key, value in rows[:1] + rows:
            producer.send(topic, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()
    second = second_life(stack, work)
    assert "holds another record at offset" in second.log
    assert second.wiped("foreign")


TABLES = ("customers", "centroids", "positions")


def raw_records(bootstrap: str, topic: str) -> dict[int, list[tuple[bytes, bytes]]]:
    """Every (key, value) of `topic`, per partition, in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out: dict[int, list[tuple[bytes, bytes]]] = {tp.partition: [] for tp in parts}
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for tp, batch in consumer.poll(timeout_ms=500).items():
                out[tp.partition].extend((r.key, r.value) for r in batch)
        return out
    finally:
        consumer.close()


def recreate(bootstrap: str, topics: list[str], partitions: int | None = None) -> None:
    """Delete `topics`; with `partitions`, create them again empty (compacted)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics(topics)
        until(lambda: not set(topics) & set(admin.list_topics()), "the topics to go")
        if partitions is not None:
            config = {"cleanup.policy": "compact"}
            admin.create_topics([NewTopic(t, partitions, 1, topic_configs=config) for t in topics])
            until(lambda: set(topics) <= set(admin.list_topics()), "the topics to come back")
    finally:
        admin.close()


def until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)
