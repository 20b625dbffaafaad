"""The Faust worker: decode at the edge, call the core, send, then persist.

Order of effects per batch (this is what makes the default guarantee hold):

1. dead letters, segment changes and assignments are sent and the producer
   is flushed;
2. only then are the touched customer records written to the table (and its
   changelog);
3. Faust commits the input offsets after the batch is acknowledged, and
   flushes the producer (changelog included) before every commit.

A crash before 2 replays the batch against the old state and re-sends its
outputs (at least once). A crash after 2 replays events whose ids the
restored state already holds, so they count once and emit nothing again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import TP, EventT

from schemas.events import CustomerEvent
from schemas.model import SegmentModel
from scoring.customer_record import CustomerRecord
from scoring.rescorer import Rescored, Rescorer
from streams import record_codec
from streams.decoding import Rejected, dead_letter, decode_event
from streams.kafka_clients import faust_broker_settings
from streams.metrics import WorkerMetrics
from streams.model_source import ModelWatcher
from streams.settings import WorkerSettings
from streams.table_access import PartitionedTable

log = logging.getLogger(__name__)


class RescorerWorker:
    """One Faust app: the events agent, the sweep timer and the model watcher."""

    def __init__(self, settings: WorkerSettings) -> None:
        record_codec.register()
        self.settings = settings
        topics = settings.topics
        self.app = faust.App(
            settings.app_id,
            **faust_broker_settings(settings),
            store=settings.store,
            datadir=str(settings.data_dir),
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication_factor,
            table_standby_replicas=settings.standby_replicas,
            processing_guarantee=settings.processing_guarantee,
            broker_commit_interval=settings.commit_interval_seconds,
            broker_session_timeout=settings.session_timeout_seconds,
            broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
            consumer_auto_offset_reset="earliest",
            broker_max_poll_records=settings.max_poll_records,
            stream_buffer_maxsize=settings.stream_buffer_size,
            producer_acks=-1,
            web_enabled=False,
            autodiscover=False,
        )
        self.events = self.app.topic(
            topics.events, key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw",
        )  # fmt: skip
        self.customers = cast(
            "faust.Table[str, CustomerRecord]",
            self.app.Table("customers", key_type=str, partitions=settings.partitions),
        )
        self.centroids = cast(
            "faust.Table[str, dict[str, Any]]",
            self.app.Table("centroids", key_type=str, partitions=settings.partitions),
        )
        # Keys travel as plain UTF-8, values in the record's compact JSON (centroid
        # checkpoints as JSON); the store is built lazily, the changelog topic is not.
        _serialize(self.customers, "raw", record_codec.CODEC_NAME)
        _serialize(self.centroids, "raw", "json")
        self.records = PartitionedTable(self.customers)
        self.checkpoints = PartitionedTable(self.centroids)
        self.rescorer: Rescorer | None = None
        self.model_ready = asyncio.Event()
        self.lock = asyncio.Lock()
        self.owned: set[int] = set()
        self.counts: Counter[str] = Counter()
        self.metrics = WorkerMetrics()
        self.watcher = ModelWatcher(settings, self.on_model, self.on_model_rejected)
        self.app.agent(self.events, name="rescore")(self._agent)
        self.app.timer(settings.sweep_interval_seconds)(self._sweep_tick)
        self.app.task(self.watcher.run)
        self.app.timer(30.0)(self._log_progress)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    # -- models -----------------------------------------------------------------

    async def on_model(self, model: SegmentModel) -> None:
        """Take a validated model: the first one starts processing, later ones swap."""
        async with self.lock:
            if self.rescorer is None:
                self.rescorer = Rescorer(model, self.settings.rescore_config())
                log.info("model v%d loaded (%d segments)", model.version, len(model.segments))
            elif self.rescorer.set_model(model):
                log.info("switched to model v%d; customers are being re-scored", model.version)
                self.counts["model_swaps"] += 1
            self.metrics.set_model(model.version, {s.segment_id: s.name for s in model.segments})
            self.model_ready.set()

    def on_model_rejected(self, reason: str) -> None:
        """Count an artifact that failed validation (the current model stays)."""
        self.counts["models_rejected"] += 1
        self.metrics.models_rejected.inc()

    # -- partitions ---------------------------------------------------------------

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        revoked: set[TP] = args[0] if args else set()
        for tp in revoked:
            if tp.topic == self.settings.topics.events and self.rescorer is not None:
                self.rescorer.drop_shard(tp.partition)
                self.owned.discard(tp.partition)
                self.metrics.set_partition(tp.partition, None)

    def _sync_partitions(self) -> None:
        """Restore shards of newly assigned partitions from the recovered table."""
        assert self.rescorer is not None  # noqa: S101 - called once a model is loaded
        topic = self.settings.topics.events
        assigned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}
        for partition in self.owned - assigned:
            self.rescorer.drop_shard(partition)
            self.metrics.set_partition(partition, None)
        new = assigned - self.owned
        if new:
            grouped: dict[int, list[tuple[str, CustomerRecord]]] = {p: [] for p in new}
            for key, record in self.records.items():
                if isinstance(record, CustomerRecord) and record.partition in grouped:
                    grouped[record.partition].append((str(key), record))
            for partition, items in grouped.items():
                checkpoint = self.checkpoints.get(f"p{partition}", partition)
                shard = self.rescorer.restore_shard(partition, items, checkpoint)
                self.metrics.set_partition(
                    partition,
                    Counter(r.segment_id for _, r in items if r.segment_id is not None),
                )
                log.info("partition %d: %d customers restored, watermark %s",
                         partition, len(items), shard.watermark)  # fmt: skip
        self.owned = assigned

    # -- processing -----------------------------------------------------------------

    def _lookup(self, key: str, partition: int) -> CustomerRecord | None:
        record = self.records.get(key, partition)
        return record if isinstance(record, CustomerRecord) else None

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        settings = self.settings
        async for events in cast(faust.Stream[bytes], stream).take_events(
            settings.batch_max_events, within=settings.batch_within_seconds
        ):
            await self.handle(events)

    async def handle(self, events: Sequence[EventT[bytes]]) -> None:
        """Decode, dead-letter, re-score and deliver one batch."""
        await self.model_ready.wait()
        async with self.lock:
            started = time.perf_counter()
            assert self.rescorer is not None  # noqa: S101 - model_ready is set
            self._sync_partitions()
            decoded: list[tuple[int, CustomerEvent]] = []
            producer = self.app.producer
            for event in events:
                message = event.message
                outcome = decode_event(message.key, message.value)
                if isinstance(outcome, Rejected):
                    letter = dead_letter(
                        outcome, message.key, message.value,
                        message.topic, message.partition, message.offset,
                    )  # fmt: skip
                    await producer.send(
                        self.settings.topics.dead_letters, message.key,
                        letter.model_dump_json().encode(), None, None, None,
                    )  # fmt: skip
                    self.counts[f"rejected_{outcome.error_type}"] += 1
                    self.metrics.rejected.labels(outcome.error_type).inc()
                    self.counts["dead_letters"] += 1
                else:
                    decoded.append((message.partition, outcome))
            result = self.rescorer.process(decoded, self._lookup, datetime.now(UTC))
            await self._deliver(result, {p for p, _ in decoded})
            self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def _sweep_tick(self) -> None:
        if self.rescorer is None or self.app.rebalancing or self.app.in_recovery:
            return
        async with self.lock:
            started = time.perf_counter()
            self._sync_partitions()
            now = datetime.now(UTC)
            total = Rescored()
            for partition in sorted(self.owned):
                total.extend(
                    self.rescorer.sweep(
                        partition, self._lookup, now, self.settings.sweep_max_per_tick
                    )
                )
            if total.records or total.changes:
                await self._deliver(total, set())
            else:
                self.metrics.count(total.counts)
            self.metrics.sweep_seconds.observe(time.perf_counter() - started)

    async def _deliver(self, result: Rescored, partitions: Iterable[int]) -> None:
        producer = self.app.producer
        topics = self.settings.topics
        for change in result.changes:
            await producer.send(
                topics.changes, change.customer_id.encode(),
                change.model_dump_json().encode(), None, None, None,
            )  # fmt: skip
        for assignment in result.assignments:
            await producer.send(
                topics.assignments, assignment.customer_id.encode(),
                assignment.model_dump_json().encode(), None, None, None,
            )  # fmt: skip
        await producer.flush()
        # Straight to the producer rather than through Faust's table buffer: one
        # batch writes thousands of keys. Ordering per partition is kept, and Faust
        # flushes the producer before it commits input offsets.
        changelog = self.customers.changelog_topic.get_topic_name()
        for key, record in result.records.items():
            self.records.put(key, record.partition, record)
            await producer.send(
                changelog, key.encode(), record.dumps(), record.partition, None, None
            )
        if self.rescorer is not None and self.rescorer.config.learning_rate > 0:
            centroid_log = self.centroids.changelog_topic.get_topic_name()
            touched = set(partitions) | {r.partition for r in result.records.values()}
            for partition in touched:
                checkpoint = self.rescorer.checkpoint(partition)
                self.checkpoints.put(f"p{partition}", partition, checkpoint)
                await producer.send(
                    centroid_log, f"p{partition}".encode(),
                    json.dumps(checkpoint).encode(), partition, None, None,
                )  # fmt: skip
        self.counts.update(result.counts)
        self.metrics.count(result.counts)
        self.metrics.changed(
            result.changes, {key: r.partition for key, r in result.records.items()}
        )
        self.counts["changes"] += len(result.changes)
        self.counts["assignments"] += len(result.assignments)

    async def _log_progress(self) -> None:
        counts = self.counts
        version = self.rescorer.active.version if self.rescorer else None
        log.info(
            "model v%s, partitions %s: applied=%d duplicate=%d too_old=%d dead_letters=%d "
            "changes=%d swept=%d",
            version, sorted(self.owned), counts["applied"], counts["duplicate"],
            counts["too_old"], counts["dead_letters"], counts["changes"], counts["swept"],
        )  # fmt: skip


def _serialize(table: faust.Table[Any, Any], key: str, value: str) -> None:
    table.key_serializer = key
    table.value_serializer = value
    changelog = cast(faust.Topic, table.changelog_topic)
    changelog.key_serializer = key
    changelog.value_serializer = value
