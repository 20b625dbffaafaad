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
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
from faust.types import TP, EventT

from rescorer import __version__
from schemas.events import CustomerEvent
from schemas.model import SegmentModel
from schemas.retrain import RetrainRequest
from scoring.customer_record import CustomerRecord, to_micros
from scoring.drift_monitor import DriftMonitor
from scoring.rescorer import Rescored, Rescorer
from scoring.retrain_policy import RetrainPolicy
from streams import record_codec
from streams.decoding import Rejected, dead_letter, decode_event
from streams.kafka_clients import faust_broker_settings
from streams.metrics import WorkerMetrics
from streams.model_source import ModelWatcher
from streams.offset_probe import OffsetProbe
from streams.positions import Positions, Verdict
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
        self.positions = Positions()
        self.probe = OffsetProbe(settings, topics.events)
        self._behind: dict[int, tuple[int, float]] = {}
        self.counts: Counter[str] = Counter()
        self.metrics = WorkerMetrics()
        self.metrics.info.info(
            {"worker_id": settings.worker_id, "app_id": settings.app_id, "version": __version__,
             "clock": settings.clock, "store": settings.store}
        )  # fmt: skip
        self.monitor: DriftMonitor | None = None
        self.policy = RetrainPolicy(settings.retrain_thresholds())
        self.watcher = ModelWatcher(settings, self.on_model, self.on_model_rejected)
        self.app.agent(self.events, name="rescore")(self._agent)
        self.app.timer(settings.sweep_interval_seconds)(self._sweep_tick)
        self.app.task(self.watcher.run)
        self.app.timer(30.0)(self._log_progress)
        self.app.timer(settings.drift_interval_seconds)(self._drift_tick)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    # -- models -----------------------------------------------------------------

    async def on_model(self, model: SegmentModel) -> None:
        """Take a validated model: the first one starts processing, later ones swap."""
        async with self.lock:
            if self.rescorer is None:
                self.rescorer = Rescorer(model, self.settings.rescore_config())
                self.monitor = DriftMonitor(
                    model, self.settings.drift_window_customers, self.settings.drift_adwin_delta
                )
                log.info("model v%d loaded (%d segments)", model.version, len(model.segments))
            elif self.rescorer.set_model(model):
                log.info("switched to model v%d; customers are being re-scored", model.version)
                self.counts["model_swaps"] += 1
                if self.monitor is not None:
                    self.monitor.set_model(model)
                    self.policy.reset(self.monitor.detections)
            self.metrics.set_model(
                model.version,
                model.created_at.timestamp(),
                {s.segment_id: s.name for s in model.segments},
            )
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
                self._drop(tp.partition)
                self.owned.discard(tp.partition)
                self.positions.forget(tp.partition)

    async def _sync_partitions(self) -> None:
        """Restore shards and input positions of newly assigned partitions."""
        assert self.rescorer is not None  # noqa: S101 - called once a model is loaded
        topic = self.settings.topics.events
        assigned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}
        for partition in self.owned - assigned:
            self._drop(partition)
            self.positions.forget(partition)
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
                tp = TP(topic, partition)
                stored = self.checkpoints.get(_position_key(partition), partition)
                position = stored.get("next_offset") if isinstance(stored, dict) else None
                if not isinstance(position, int):  # never processed: from the log start
                    position = (await self.app.consumer.earliest_offsets(tp)).get(tp)
                self.positions.restore(partition, position)
                if position is not None:
                    await self.app.consumer.seek(tp, position)
                log.info("partition %d: %d customers restored, watermark %s, next offset %s",
                         partition, len(items), shard.watermark, position)  # fmt: skip
        self.owned = assigned

    def _drop(self, partition: int) -> None:
        assert self.rescorer is not None  # noqa: S101 - partitions are tracked once a model is
        self.rescorer.drop_shard(partition)
        if self.monitor is not None:
            self.monitor.drop_partition(partition)
        self.metrics.set_partition(partition, None)

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
            await self._sync_partitions()
            decoded: list[tuple[int, CustomerEvent]] = []
            types: Counter[str] = Counter()
            admitted: set[int] = set()
            gaps: dict[int, int] = {}
            producer = self.app.producer
            for event in events:
                message = event.message
                if message.partition not in self.owned:
                    self.counts["input_not_owned"] += 1
                    continue
                verdict = self.positions.admit(message.partition, message.offset)
                if verdict is not Verdict.PROCESS:
                    if verdict is Verdict.GAP:
                        gaps.setdefault(message.partition, message.offset)
                    self.counts[f"input_{verdict.value}"] += 1
                    continue
                admitted.add(message.partition)
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
                    self.metrics.dead_letters.inc()
                else:
                    decoded.append((message.partition, outcome))
                    types[outcome.type.value] += 1
            result = self.rescorer.process(decoded, self._lookup, datetime.now(UTC))
            await self._deliver(result, admitted)
            for partition, seen in gaps.items():
                await self._resync(partition, seen)
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
            for kind, n in types.items():
                self.metrics.consumed.labels(kind).inc(n)
            self._observe_latency(events, decoded)

    def _observe_latency(
        self, events: Sequence[EventT[bytes]], decoded: Sequence[tuple[int, CustomerEvent]]
    ) -> None:
        now = time.time()
        ingest = self.metrics.latency.labels("ingest")
        for event in events:
            if event.message.timestamp:
                ingest.observe(max(0.0, now - event.message.timestamp))
        by_event_time = self.metrics.latency.labels("event")
        for _, customer_event in decoded:
            by_event_time.observe(max(0.0, now - customer_event.occurred_at.timestamp()))

    async def _sweep_tick(self) -> None:
        if self.rescorer is None or self.app.rebalancing or self.app.in_recovery:
            return
        async with self.lock:
            started = time.perf_counter()
            await self._sync_partitions()
            await self._check_positions()
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
        centroid_log = self.centroids.changelog_topic.get_topic_name()
        if self.rescorer is not None and self.rescorer.config.learning_rate > 0:
            touched = set(partitions) | {r.partition for r in result.records.values()}
            for partition in touched:
                checkpoint = self.rescorer.checkpoint(partition)
                self.checkpoints.put(f"p{partition}", partition, checkpoint)
                await producer.send(
                    centroid_log, f"p{partition}".encode(),
                    json.dumps(checkpoint).encode(), partition, None, None,
                )  # fmt: skip
        if partitions:
            # Positions go last, once the state they stand for is acknowledged.
            await producer.flush()
            for partition in partitions:
                position = {"next_offset": self.positions.next_offset[partition]}
                self.checkpoints.put(_position_key(partition), partition, position)
                await producer.send(
                    centroid_log, _position_key(partition).encode(),
                    json.dumps(position).encode(), partition, None, None,
                )  # fmt: skip
        if self.monitor is not None:
            found = sum(
                self.monitor.observe(
                    s.partition, s.keys, s.raw, s.as_of_days, s.distances if s.by_event else None
                )
                for s in result.scored
            )
            if found:
                self.metrics.detections.inc(found)
                log.info("distance drift detected (%d so far)", self.monitor.detections)
        self.counts.update(result.counts)
        self.metrics.count(result.counts)
        self.metrics.changed(
            result.changes, {key: r.partition for key, r in result.records.items()}
        )
        self.counts["changes"] += len(result.changes)
        self.counts["assignments"] += len(result.assignments)

    async def _resync(self, partition: int, seen: int) -> None:
        """Re-read `partition` from the first existing offset at or after the expected one."""
        expected = self.positions.next_offset[partition]
        first = await self.probe.first_at_or_after(partition, expected)
        if first is None:  # no record there after all (control records only): carry on
            log.info(
                "partition %d: no records between offsets %d and %d", partition, expected, seen
            )
            return
        target = min(first, seen)
        await self.app.consumer.seek(TP(self.settings.topics.events, partition), target)
        self.positions.resync(partition, target, time.monotonic())
        self.counts["input_resyncs"] += 1
        self.metrics.input_resyncs.inc()
        log.warning(
            "partition %d: expected offset %d, got %d; re-reading from %d",
            partition, expected, seen, target,
        )  # fmt: skip

    async def _check_positions(self) -> None:
        """Re-read partitions whose consumer moved past what was processed, or stalled.

        A message dropped by Faust at the end of a partition is never followed
        by one that reveals the gap, so the consumer's position is compared
        with the processed one; a persistent difference without progress
        means messages were lost in between.
        """
        now = time.monotonic()
        topic = self.settings.topics.events
        for partition, offset in self.positions.stalled(now, _STALL_SECONDS).items():
            first = await self.probe.first_at_or_after(partition, offset)
            if first is None:
                self.positions.restore(partition, offset)
            else:
                await self.app.consumer.seek(TP(topic, partition), first)
                self.positions.resync(partition, first, now)
        for partition in sorted(self.owned):
            expected = self.positions.next_offset.get(partition)
            if expected is None or partition in self.positions.resyncing:
                self._behind.pop(partition, None)
                continue
            position = await self.app.consumer.position(TP(topic, partition))
            if position is None or position <= expected:
                self._behind.pop(partition, None)
                continue
            since = self._behind.setdefault(partition, (expected, now))
            if since[0] != expected:
                self._behind[partition] = (expected, now)
            elif now - since[1] > _STALL_SECONDS:
                del self._behind[partition]
                await self._resync(partition, position)

    def _consumer_lag(self) -> dict[int, int]:
        """Unprocessed input messages per owned partition (as of the last fetch)."""
        topic = self.settings.topics.events
        lag: dict[int, int] = {}
        for partition in sorted(self.owned):
            expected = self.positions.next_offset.get(partition)
            highwater = self.app.consumer.highwater(TP(topic, partition))
            if expected is None or highwater is None or highwater < 0:
                continue
            lag[partition] = max(0, highwater - expected)
            self.metrics.lag.labels(str(partition)).set(lag[partition])
        return lag

    async def _drift_tick(self) -> None:
        """Publish drift and per-partition gauges; ask for a retrain when it is due."""
        if self.rescorer is None or self.monitor is None or self.app.rebalancing:
            return
        async with self.lock:
            rescorer, monitor = self.rescorer, self.monitor
            active = rescorer.active
            period = rescorer.config.sweep_period // timedelta(microseconds=1)
            watermark_days: dict[int, float] = {}
            centroid_drift: dict[str, float] = {}
            for partition in sorted(self.owned):
                shard = rescorer.shards.get(partition)
                if shard is None:
                    continue
                moved = shard.centroids.drift()
                per_segment = {name: float(moved[i]) for i, name in enumerate(active.names)}
                for name, value in per_segment.items():
                    centroid_drift[name] = max(value, centroid_drift.get(name, 0.0))
                watermark = None
                overdue = 0
                if shard.watermark is not None:
                    watermark = shard.watermark.timestamp()
                    watermark_days[partition] = watermark / 86_400.0
                    overdue = shard.due.count_before(to_micros(shard.watermark) - period)
                self.metrics.set_partition_state(
                    partition, watermark, len(shard.due), overdue, per_segment
                )
            lag = self._consumer_lag()
            drift = monitor.feature_drift(watermark_days)
            self.metrics.set_drift(drift.psi, drift.ks, drift.customers)
            if sum(lag.values()) > self.settings.drift_max_lag_events:
                # Catching up: today's customers are not all in yet, and what the
                # detector sees is the backlog, not today. Judge from here on.
                self.policy.reset(monitor.detections)
                return
            evidence = self.policy.evaluate(
                time.monotonic(), drift, centroid_drift, monitor.detections
            )
            if evidence is None:
                return
            request = RetrainRequest(
                request_id=uuid.uuid4().hex,
                model_version=active.version,
                raised_at=datetime.now(UTC),
                raised_by=self.settings.worker_id,
                evidence=evidence,
            )
            await self.app.producer.send_and_wait(
                self.settings.topics.retrain_requests, request.request_id.encode(),
                request.model_dump_json().encode(), None, None, None,
            )  # fmt: skip
            self.metrics.retrain_requests.inc()
            self.counts["retrain_requests"] += 1
            log.info(
                "retrain requested for model v%d: %s", active.version, ", ".join(evidence.triggers)
            )

    async def _log_progress(self) -> None:
        counts = self.counts
        version = self.rescorer.active.version if self.rescorer else None
        log.info(
            "model v%s, partitions %s: applied=%d duplicate=%d too_old=%d dead_letters=%d "
            "changes=%d swept=%d redelivered=%d gaps=%d resyncs=%d",
            version, sorted(self.owned), counts["applied"], counts["duplicate"],
            counts["too_old"], counts["dead_letters"], counts["changes"], counts["swept"],
            counts["input_seen"], counts["input_gap"], counts["input_resyncs"],
        )  # fmt: skip


_STALL_SECONDS = 10.0


def _position_key(partition: int) -> str:
    return f"o{partition}"


def _serialize(table: faust.Table[Any, Any], key: str, value: str) -> None:
    table.key_serializer = key
    table.value_serializer = value
    changelog = cast(faust.Topic, table.changelog_topic)
    changelog.key_serializer = key
    changelog.value_serializer = value
