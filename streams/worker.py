"""The Faust application: lifecycle, consumer group, tables, timers; wiring only.

Faust runs the app: worker lifecycle and signals, group membership and
partition assignment, the three changelog-backed tables (customer records,
centroid checkpoints, input positions) with their recovery and standbys,
timers and the model watcher task. The events themselves do not go through
Faust's per-message stream: the topic stays subscribed (so the group assigns
its partitions, co-partitioned with the tables) but paused
(`streams.faust_internals.aside_consumer`), and `streams.pipeline` reads it in whole batches
(`streams.batch_reader`) and delivers in order (`streams.delivery`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
import mode
from faust.types import TP

from schemas.model import ModelRejected, SegmentModel
from schemas.package import PACKAGE_VERSION
from schemas.retrain import RetrainRequest
from scoring.retrain_policy import RetrainPolicy
from streams.batch_reader import BatchReader
from streams.delivery import MAX_BATCH_BYTES, Delivery
from streams.drift_ticks import DriftTicks
from streams.faust_internals import (
    FaustGroup,
    PromptTableManager,
    aside_consumer,
    commit_offsets,
    standby_lag,
)
from streams.feedback import Feedback, FeedbackAgent
from streams.kafka_clients import faust_broker_settings
from streams.lookup import Lookup
from streams.metrics import WorkerMetrics
from streams.model_source import ModelWatcher
from streams.ownership import Ownership
from streams.pipeline import Pipeline
from streams.settings import WorkerSettings
from streams.state.changelog_probe import ChangelogProbe
from streams.state.context import StoreContext
from streams.state.store import SCHEME
from streams.state.tables import StateTables
from streams.state.trust import WipeReason
from streams.transactions import CommitRefused, Transactions
from streams.worker_state import WorkerState

log = logging.getLogger(__name__)
SHUTDOWN_SECONDS = 8.0
EXIT_REFUSED = 3
"""Exit code of a worker whose step Kafka refused to commit (exactly-once mode)."""
STOP_DEADLINE_SECONDS = 60.0
"""From the start of a stop (SIGTERM, or a crash) to the process's exit, at the latest."""
EXIT_UNSTOPPED = 1


def exit_if_not_stopped(deadline: float = STOP_DEADLINE_SECONDS) -> threading.Timer:
    """Exit the process `deadline` seconds from now unless it has exited by then.

    A stop goes through Faust's services one by one, and with the broker away
    some of them wait on it (the consumer's leave-group request, the producer's
    flush): a stop during an outage took as long as the outage. Exiting
    without the rest is safe: the state on disk is as after a SIGKILL, which
    loses and doubles nothing (the exactness scenarios).
    """

    def leave() -> None:
        log.error("the worker had not stopped %.0f s after it began to (an unreachable "
                  "broker?): exiting (code %d) without the rest of its shutdown", deadline,
                  EXIT_UNSTOPPED)  # fmt: skip
        logging.shutdown()
        os._exit(EXIT_UNSTOPPED)

    timer = threading.Timer(deadline, leave)
    timer.daemon = True
    timer.start()
    return timer


class RescorerWorker:
    """One Faust app and the parts it drives."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        topics = settings.topics
        self.app = _app(settings)
        # The transport builds its consumer from this attribute; setting it on this
        # app's transport instance leaves any other app in the process as it is.
        self.app.transport.Consumer = aside_consumer([topics.events])  # type: ignore[misc]
        self.events = self.app.topic(
            topics.events, key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw", acks=False,
        )  # fmt: skip
        self.app.topics.add(self.events)
        self.metrics = WorkerMetrics()
        self.store_context: StoreContext | None = None
        if settings.store.startswith(f"{SCHEME}:"):
            self.store_context = StoreContext(
                settings.data_dir / "state", settings.app_id, ChangelogProbe(settings),
                self._on_store_wipe,
            )  # fmt: skip
            self.store_context.lock()
        self.tables = StateTables(self.app, settings.partitions, self.store_context)
        for table in self.tables.all:  # every table's catch-up series, at 0 until one happens
            self.metrics.store_caught_up.labels(table.name)
        self.state = WorkerState(settings.rescore_config(), settings.drift_adwin_delta)
        self.ownership = Ownership()
        self.group = FaustGroup(self.app)
        self.metrics.info.info(
            {"worker_id": settings.worker_id, "app_id": settings.app_id, "version": PACKAGE_VERSION,
             "clock": settings.clock, "store": settings.store,
             "processing_guarantee": settings.processing_guarantee}
        )  # fmt: skip
        self.reader = BatchReader(settings, topics.events, self.metrics.reader_renewals.inc)
        transactions = Transactions(settings, MAX_BATCH_BYTES) if settings.exactly_once else None
        self.delivery = Delivery(settings, self.tables, transactions)
        if transactions is not None and self.store_context is not None:
            self.store_context.claim = self.delivery.claim
        self.pipeline = Pipeline(
            settings, self.state, self.ownership, self.tables, self.reader, self.delivery,
            self.metrics, self.group, self._commit,
        )  # fmt: skip
        if settings.web_port:
            self.lookup = Lookup(
                self.app, self.events, self.tables, self.ownership, self.state, self.metrics
            )
        self.feedback = FeedbackAgent(
            self.app,
            settings,
            Feedback(settings, self.tables, self.state, self.delivery, self.metrics),
        )
        self.policy = RetrainPolicy(settings.retrain_thresholds())
        self.drift = DriftTicks(
            self.metrics, self.policy, self._publish_request, settings.worker_id,
            settings.drift_max_lag_events,
        )  # fmt: skip
        self.watcher = ModelWatcher(settings, self.on_model, self.on_model_rejected)
        self.app.task(self.watcher.run)
        self.app.timer(30.0)(self._log_progress)
        self.app.timer(settings.drift_interval_seconds)(self._drift_tick)
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        # Faust takes a service instance as well as a class (`App._prepare_subservice`).
        service = _PipelineService(self, exit_if_not_stopped)
        self.app.service(service)  # type: ignore[arg-type]
        self.app.before_stop = service.finish

    def _on_store_wipe(self, table: str, partition: int, reason: WipeReason, detail: str) -> None:
        self.metrics.store_wipes.labels(table, reason.value).inc()

    # -- models -----------------------------------------------------------------

    async def on_model(self, model: SegmentModel) -> None:
        """Take a validated model: the first one starts processing, later ones swap."""
        state = self.state
        async with state.lock:
            outcome = state.take_model(model)
            if outcome == "loaded":
                log.info("model v%d loaded (%d segments)", model.version, len(model.segments))
            elif outcome == "switched":
                log.info("switched to model v%d; customers are being re-scored", model.version)
                _, monitor = state.scoring()
                # New reference bins: the drift population is rebuilt from the records.
                for partition in sorted(self.ownership.owned):
                    monitor.rebuild(partition, self.tables.standings(partition))
                self.policy.reset(monitor.detections)
            self.metrics.set_model(
                model.version,
                model.created_at.timestamp(),
                {s.segment_id: s.name for s in model.segments},
            )
            self.metrics.publish_populations(state.populations)

    def on_model_rejected(self, rejected: ModelRejected) -> None:
        """Count an artifact that failed validation or verification (the current model stays)."""
        self.metrics.models_rejected.labels(rejected.reason).inc()

    # -- partitions ---------------------------------------------------------------

    def _event_partitions(self, tps: Any) -> set[int]:
        return {tp.partition for tp in tps if tp.topic == self.settings.topics.events}

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        # The step in flight finishes, and everything it sent is acknowledged, before
        # the rebalance can hand its partitions to another worker: a record landing
        # after the new owner's writes would otherwise replace them.
        if self.state.lock.locked():
            log.info("partitions revoked during a step: it finishes before the handover")
        async with self.state.lock:
            self.ownership.on_revoked()
            if self.delivery.started:
                await self.delivery.flush()

    async def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        assigned: set[TP] = args[0] if args else set()
        group = self.group
        self.ownership.on_assigned(
            self._event_partitions(assigned), group.generation(), group.revocations()
        )

    async def _commit(self, positions: Mapping[int, int]) -> bool:
        """Commit positions to the consumer group through Faust's consumer (lag tooling)."""
        topic = self.settings.topics.events
        offsets = {TP(topic, partition): offset for partition, offset in positions.items()}
        return await commit_offsets(self.app, offsets)

    # -- timers ---------------------------------------------------------------------

    async def _publish_request(self, request: RetrainRequest) -> None:
        await self.delivery.publish(
            self.settings.topics.retrain_requests,
            request.request_id.encode(),
            request.model_dump_json().encode(),
        )

    async def _drift_tick(self) -> None:
        """Publish drift and per-partition gauges; ask for a retrain when it is due."""
        for table, size in self.tables.disk_bytes().items():
            self.metrics.store_bytes.labels(table).set(size)
        self.metrics.standby_lag.set(standby_lag(self.app))
        if not self.state.model_ready.is_set() or not self.ownership.reading:
            return
        async with self.state.lock:
            if not self.ownership.reading:
                return
            rescorer, monitor = self.state.scoring()
            await self.drift.tick(rescorer, monitor, self.ownership.owned, self.pipeline.lag())

    async def _log_progress(self) -> None:
        t = self.metrics.totals()
        version = self.state.rescorer.model.version if self.state.rescorer else None
        log.info(
            "model v%s, partitions %s: applied=%d duplicate=%d too_old=%d dead_letters=%d "
            "changes=%d swept=%d redelivered=%d gaps=%d",
            version, sorted(self.ownership.owned), t.applied, t.duplicate, t.too_old,
            t.dead_letters, t.changes, t.swept, t.redelivered, t.gaps,
        )  # fmt: skip


def _app(settings: WorkerSettings) -> _App:
    """The Faust app of a worker with `settings`."""
    return _App(
        settings.app_id,
        **faust_broker_settings(settings),
        store=settings.store,
        consumer_group_instance_id=settings.group_instance_id,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        # Faust's own exactly_once mode routes sends through the current event, which
        # the batched worker has none of; ours is `streams.transactions`.
        processing_guarantee="at_least_once",
        # Faust's recovery compares a store's offset with the changelog's end as the
        # consumer sees it, which under read_committed is the last stable offset: just
        # after a step's commit, before the coordinator has written its markers, that can
        # lie before records the store already holds, and Faust would stop the worker
        # with a ConsistencyError. The durable store checks itself (`streams.state.trust`),
        # after the claim has completed every earlier transaction of its partitions.
        recovery_consistency_check=not settings.exactly_once,
        broker_commit_interval=settings.commit_interval_seconds,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=settings.web_port != 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_bind,
        web_host=settings.web_host,
        # Only our read-only lookup views: no table dumps, no internals.
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        autodiscover=False,
        TableManager=PromptTableManager,
    )


class _App(faust.App):
    """Faust's app, with a hook that runs before it stops its tables."""

    before_stop: Callable[[], Awaitable[None]] | None = None

    async def on_stop(self) -> None:
        """`App.on_stop` stops the tables (their stores close) before any child
        service: the pipeline has to have delivered its last step by then."""
        if self.before_stop is not None:
            await self.before_stop()
        await super().on_stop()

    async def _on_partitions_revoked(self, revoked: set[TP]) -> None:
        """A rebalance that begins while the worker stops waits for its last step.

        Once stopping, Faust skips the revocation signal (the worker's
        `_on_revoked`, which holds the handover until the step in flight is
        acknowledged) and closes the consumer: the group would hand the
        partitions over while the last step's outputs, records and positions
        are still being written, and their new owner would recover without
        them. So the stop's own finishing (the same one `on_stop` awaits) is
        awaited first.
        """
        if self.should_stop and self.before_stop is not None:
            await self.before_stop()
        await super()._on_partitions_revoked(revoked)


class _PipelineService(mode.Service):
    """Runs the pipeline with the app; finished before Faust stops tables and consumer.

    The batch in flight is delivered, positions are flushed and committed,
    and only then do the stores close, the consumer leave and the group
    hand the partitions over.
    """

    def __init__(
        self,
        worker: RescorerWorker,
        on_stopping: Callable[[], object] = lambda: None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.worker = worker
        self._on_stopping = on_stopping
        """Called once when the stop begins (the worker: `exit_if_not_stopped`)."""
        self._finishing: asyncio.Future[None] | None = None

    async def on_start(self) -> None:
        await self.worker.reader.start()
        await self.worker.delivery.start()

    @mode.Service.task
    async def _run(self) -> None:
        try:
            await self.worker.pipeline.run()
        except CommitRefused as exc:
            # The state in memory is ahead of what Kafka committed, and the partitions
            # may already be someone else's: nothing may be written any more, not even
            # a last flush or a group commit. The files hold only committed steps.
            log.critical("%s; the worker exits (code %d) to be restarted", exc, EXIT_REFUSED)
            logging.shutdown()
            os._exit(EXIT_REFUSED)

    async def finish(self) -> None:
        """Stop the loop after its step, make everything durable (once: a second
        caller waits for the first)."""
        if self._finishing is None:
            if not self.worker.delivery.started:
                return
            self._on_stopping()
            self._finishing = asyncio.ensure_future(self._finish())
        await asyncio.shield(self._finishing)

    async def _finish(self) -> None:
        pipeline = self.worker.pipeline
        pipeline.stop()
        try:
            await asyncio.wait_for(pipeline.finished.wait(), SHUTDOWN_SECONDS)
        except TimeoutError:
            log.warning("the last batch did not finish in %.0f s", SHUTDOWN_SECONDS)
        await self.worker.delivery.stop()
        await pipeline.commit(force=True)
        await self.worker.reader.stop()
        if self.worker.store_context is not None:
            await self.worker.store_context.probe.stop()

    async def on_stop(self) -> None:
        await self.finish()
