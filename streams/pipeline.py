"""The worker's processing loop: event batches, with sweep slices in between.

One step fetches whatever the batch reader has (waiting at most
``RESCORER_BATCH_WITHIN_SECONDS`` when idle and nothing is due), sorts it out
(`streams.intake`), folds and scores it in the core, and delivers it
(`streams.delivery`); then one sweep slice (`scoring.sweep_slices`) re-scores
due customers for at most its time budget and is delivered too. A batch and
its slice run under the worker's lock, so a revocation waits for both and the
partitions are handed over only after their last batch is persisted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from scoring.customer_record import CustomerRecord
from scoring.drift_monitor import preload_detectors
from scoring.reassignment import Rescorer, RescoreResult
from scoring.sweep_slices import SweepSlicer
from streams.batch_reader import BatchReader
from streams.delivery import Delivery, Step
from streams.intake import Intake, take
from streams.metrics import WorkerMetrics
from streams.ownership import Ownership
from streams.settings import WorkerSettings
from streams.state.tables import StateTables
from streams.step_collector import StepCollector
from streams.worker_state import WorkerState

log = logging.getLogger(__name__)

Commit = Callable[[Mapping[int, int]], Awaitable[bool]]


class Group(Protocol):
    """The consumer group as the pipeline sees it (`streams.faust_internals.FaustGroup`)."""

    def rebalancing(self) -> bool:
        """Whether a rebalance is in progress."""

    def revocations(self) -> int:
        """Rebalances begun so far."""

    def recovered_generation(self) -> int | None:
        """The group generation whose table recovery completed last."""


IDLE_SECONDS = 0.05
QUIET_SECONDS = 1.0
"""Events paused this long: the sweep takes whole slices again."""


class Pipeline:
    """Reads, processes and delivers; `run` until `stop` is called."""

    def __init__(
        self,
        settings: WorkerSettings,
        state: WorkerState,
        ownership: Ownership,
        tables: StateTables,
        reader: BatchReader,
        delivery: Delivery,
        metrics: WorkerMetrics,
        group: Group,
        commit_offsets: Commit,
    ) -> None:
        self.settings = settings
        self.state = state
        self.ownership = ownership
        self.tables = tables
        self.reader = reader
        self.delivery = delivery
        self.metrics = metrics
        self.group = group
        self.commit_offsets = commit_offsets
        self.slicer = SweepSlicer(settings.sweep_slice_seconds)
        self.collector = StepCollector()
        self._stopping = asyncio.Event()
        self.finished = asyncio.Event()
        self._commit_due = 0.0
        self._generation = 0
        self._last_events = float("-inf")

    def stop(self) -> None:
        """Finish the current step and return from `run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Steps until stopped (`finished` is set on return)."""
        try:
            ready = asyncio.ensure_future(self.state.model_ready.wait())
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait([ready, stopping], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            stopping.cancel()
            self.collector.start()
            await self.step()
            # What only later steps need (River's drift detectors) loads once the
            # first step is out, not on the way to it.
            preload_detectors()
            while not self._stopping.is_set():
                self.collector.after_step()
                await self.step()
        finally:
            self.collector.stop()
            self.finished.set()

    def _lookup(self, key: str, partition: int) -> CustomerRecord | None:
        return self.tables.record(key, partition)

    async def step(self) -> None:
        """One fetched batch (possibly empty) and one sweep slice."""
        state = self.state
        ownership = self.ownership
        rescorer, monitor = state.scoring()
        group = self.group
        if group.rebalancing():
            await asyncio.sleep(IDLE_SECONDS)
            return
        if ownership.pending is not None:
            async with state.lock:
                if ownership.recovered(group.recovered_generation(), group.revocations()):
                    await ownership.sync(
                        rescorer, monitor, state.populations, self.tables, self.reader, self.metrics
                    )
                    self._generation += 1
        if not ownership.reading or not ownership.owned:
            await asyncio.sleep(IDLE_SECONDS)
            return
        now = datetime.now(UTC)
        owned = sorted(ownership.owned)
        due = self.slicer.pending(rescorer, owned, now)
        generation = self._generation
        records = await self.reader.fetch(
            0.0 if due else self.settings.batch_within_seconds, self.settings.batch_max_events
        )
        async with state.lock:
            if not ownership.reading or generation != self._generation:
                # Revoked or re-assigned since the fetch: the reader will be (or was)
                # re-positioned at the persisted positions, so the batch goes whole.
                if records:
                    log.info("partitions revoked with %d fetched events: dropped", len(records))
                return
            rescorer, monitor = state.scoring()  # a model swap may have happened meanwhile
            await self._deliver_step(rescorer, records)
        await self.commit()

    async def _deliver_step(self, rescorer: Rescorer, records: list[Any]) -> None:
        """The fetched batch, and a sweep slice computed while its outputs travel."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        intake = take(
            records, self.settings.topics.events, self.ownership.owned,
            self.tables.positions, now,
        )  # fmt: skip
        result = rescorer.process(intake.events, self._lookup, now)
        batch = Step(result, intake.letters, intake.positions, self._checkpoints(rescorer, result))
        owned = sorted(self.ownership.owned)
        timing: dict[str, float] = {}
        # The sweep's share of a step: its whole budget once events have paused for
        # `QUIET_SECONDS`; while they flow (this batch, or a momentarily empty fetch
        # between batches), a quarter of it in rounds a quarter as long, so a backlog
        # of due customers takes a few percent of a busy worker, not a quarter, and
        # an event waits for it no more than a couple of milliseconds per step.
        budget = self.slicer.budget_seconds
        moment = time.monotonic()
        if records:
            self._last_events = moment
        flowing = moment - self._last_events < QUIET_SECONDS
        share, chunk = (budget / 4, self.slicer.chunk // 4) if flowing else (budget, None)

        def sweep_slice() -> Step | None:
            begun = time.perf_counter()
            swept = self.slicer.run(rescorer, owned, self._lookup, datetime.now(UTC), share, chunk)
            timing["sweep"] = time.perf_counter() - begun
            if not swept.swept:
                return None
            return Step(swept, checkpoints=self._checkpoints(rescorer, swept))

        extra = await self.delivery.deliver(batch, sweep_slice)
        self._observe(result)
        self._observe_intake(intake)
        if extra is not None:
            self._observe(extra.result)
            self.metrics.sweep_seconds.observe(timing["sweep"])
        if records:
            self.metrics.batch_seconds.observe(time.perf_counter() - started - timing["sweep"])

    def _checkpoints(
        self, rescorer: Rescorer, result: RescoreResult
    ) -> dict[int, dict[str, object]]:
        """Centroid checkpoints of the partitions that learned (none when frozen)."""
        if rescorer.config.learning_rate <= 0:
            return {}
        return {p: rescorer.checkpoint(p) for p in result.partitions}

    def _observe(self, result: RescoreResult) -> None:
        monitor = self.state.monitor
        metrics = self.metrics
        if monitor is not None:
            found = sum(monitor.observe(evaluation) for evaluation in result.evaluations)
            if found:
                metrics.detections.inc(found)
                log.info("distance drift detected (%d so far)", monitor.detections)
        metrics.count(result.counts, result.swept)
        populations = self.state.populations
        banded = False
        for evaluation in result.evaluations:
            rows, segments = evaluation.traits, evaluation.segment_ids
            if rows is not None and segments is not None:
                populations.rescored(rows, segments, evaluation.row_partitions)
                metrics.calibrate(segments, rows.expected_since, rows.bought_since)
                banded = True
        if result.band_changes:
            metrics.band_changed(result.band_changes)
        if result.changes:
            metrics.changed(result.changes)
            records = result.records
            partition_of = {c.customer_id: records[c.customer_id].partition for c in result.changes}
            populations.moved(result.changes, partition_of)
        if result.changes or banded:
            metrics.publish_populations(populations)

    def _observe_intake(self, intake: Intake) -> None:
        metrics = self.metrics
        for kind, n in intake.types.items():
            metrics.consumed.labels(kind).inc(n)
        for reason, n in intake.rejected.items():
            metrics.rejected.labels(reason).inc(n)
        if intake.letters:
            metrics.dead_letters.inc(len(intake.letters))
        if intake.verdicts["seen"]:
            metrics.redelivered.inc(intake.verdicts["seen"])
        if intake.verdicts["gap"]:
            metrics.input_gaps.inc(intake.verdicts["gap"])
        now = time.time()
        metrics.observe_latency("ingest", [now - ms / 1e3 for ms in intake.timestamps_ms if ms])
        metrics.observe_latency(
            "event", [now - e.occurred_at.timestamp() for _, e in intake.events]
        )

    async def commit(self, force: bool = False) -> None:
        """Commit durable positions to the consumer group (for lag tooling), now and then."""
        now = time.monotonic()
        if not force and now < self._commit_due:
            return
        self._commit_due = now + self.settings.commit_interval_seconds
        positions = self.tables.positions
        durable = positions.to_commit(self.ownership.owned)
        ready = durable and self.ownership.reading and not self.group.rebalancing()
        if ready and await self.commit_offsets(durable):
            positions.committed.update(durable)

    def lag(self) -> dict[int, int]:
        """Input not yet processed per owned partition (as of the last fetch)."""
        lag: dict[int, int] = {}
        for partition in sorted(self.ownership.owned):
            expected = self.tables.positions.next_offset.get(partition)
            highwater = self.reader.highwater(partition)
            if expected is not None and highwater is not None and highwater >= 0:
                lag[partition] = max(0, highwater - expected)
        return lag
