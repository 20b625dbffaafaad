"""Reassignment, the re-scoring core shared by the Faust worker and `rescorer replay`.

It folds events into per-customer records and re-scores the customers a
batch touched (or the sweep found due): `scoring.evaluation` scores them,
`scoring.emission` says which segment changes and assignments go out, and
the `Rescorer` applies what they found to the records, the due-time index
and the online centroids. Storage and transport stay with the caller:
records come in through a lookup function and go out in
`RescoreResult.records`, to be persisted *after* the outputs are delivered
(see the README's "Processing guarantees").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from schemas.events import CustomerEvent, EventType
from schemas.model import SegmentModel
from schemas.segments import ChangeReason, RiskBandChange, SegmentAssignment, SegmentChange
from scoring.active_model import ActiveModel
from scoring.customer_record import BANDS, CustomerRecord, epoch_micros, from_epoch_micros
from scoring.customer_state import CustomerState
from scoring.due_index import DueIndex
from scoring.emission import Emission, emit, standing_assignments
from scoring.evaluation import Evaluation, evaluate
from scoring.holdout import HoldoutPolicy
from scoring.hysteresis import DEFAULT_MARGIN, check_margin
from scoring.online_clusters import DEFAULT_LEARNING_RATE, OnlineCentroids
from scoring.outcomes import Outcome
from scoring.rfm import day_number, first_window_day
from scoring.standings import Standings
from scoring.traits import DEFAULT_HORIZON_DAYS, BandThresholds

ClockMode = Literal["event", "wall"]
RecordLookup = Callable[[str, int], CustomerRecord | None]
"""Find a customer's record: (customer id, partition) -> record or None."""


@dataclass(frozen=True)
class RescoreConfig:
    """How the core decides; every field has a worker setting of the same name."""

    margin: float = DEFAULT_MARGIN
    learning_rate: float = DEFAULT_LEARNING_RATE
    sweep_period: timedelta = timedelta(days=1)
    recheck_period: timedelta = timedelta(days=30)
    clock: ClockMode = "event"
    holdout: HoldoutPolicy = field(default_factory=HoldoutPolicy)
    traits_horizon_days: float = DEFAULT_HORIZON_DAYS
    bands: BandThresholds = field(default_factory=BandThresholds)

    def __post_init__(self) -> None:
        check_margin(self.margin)
        if not 0.0 <= self.learning_rate <= 1.0:
            raise ValueError(f"learning rate must be in [0, 1], got {self.learning_rate}")
        if self.sweep_period <= timedelta(0):
            raise ValueError("sweep period must be positive")
        if self.recheck_period < self.sweep_period:
            raise ValueError("recheck period must be at least the sweep period")
        if not self.traits_horizon_days > 0:
            raise ValueError(f"traits horizon must be positive, got {self.traits_horizon_days}")


@dataclass
class Shard:
    """Per-partition state that is not per customer: the clock, centroids, due times."""

    centroids: OnlineCentroids
    due: DueIndex = field(default_factory=DueIndex)
    watermark: datetime | None = None


@dataclass(frozen=True)
class PartitionStatus:
    """What one owned partition looks like (the worker's per-partition gauges)."""

    partition: int
    watermark: datetime | None
    scheduled: int
    """Customers in the due-time index."""
    overdue: int
    """Customers due more than one sweep period before the clock (to within an hour)."""
    centroid_drift: dict[str, float]
    """Per segment name: the online centroid's distance from the model's baseline."""


@dataclass
class RescoreResult:
    """What one call produced: outputs to send, then records to persist."""

    changes: list[SegmentChange] = field(default_factory=list)
    assignments: list[SegmentAssignment] = field(default_factory=list)
    band_changes: list[RiskBandChange] = field(default_factory=list)
    records: dict[str, CustomerRecord] = field(default_factory=dict)
    counts: Counter[Outcome] = field(default_factory=Counter)
    """Events of a batch, by outcome."""
    swept: int = 0
    """Customers the sweep re-scored."""
    evaluations: list[Evaluation] = field(default_factory=list)

    def extend(self, other: RescoreResult) -> None:
        """Append another result (later records win)."""
        self.changes.extend(other.changes)
        self.assignments.extend(other.assignments)
        self.band_changes.extend(other.band_changes)
        self.records.update(other.records)
        self.counts.update(other.counts)
        self.swept += other.swept
        self.evaluations.extend(other.evaluations)

    @property
    def partitions(self) -> set[int]:
        """Partitions whose customers were scored (their centroids may have learned)."""
        return {p for evaluation in self.evaluations for p in evaluation.partitions}


class Rescorer:
    """Keeps segments current for the customers of the partitions it owns."""

    def __init__(self, model: SegmentModel, config: RescoreConfig | None = None) -> None:
        self.config = config or RescoreConfig()
        self.active = ActiveModel(model)
        self.shards: dict[int, Shard] = {}
        self.names_seen: dict[int, str] = {s.segment_id: s.name for s in model.segments}
        """Every segment name of every model used, the latest winning (for exits)."""

    # -- partitions ---------------------------------------------------------

    def shard(self, partition: int) -> Shard:
        """The shard of a partition, created on first use."""
        shard = self.shards.get(partition)
        if shard is None:
            shard = Shard(self._fresh_centroids())
            self.shards[partition] = shard
        return shard

    def _fresh_centroids(self) -> OnlineCentroids:
        return OnlineCentroids(self.active.space.centroids, self.config.learning_rate)

    def restore_shard(
        self,
        partition: int,
        standings: Standings,
        checkpoint: dict[str, object] | None = None,
    ) -> Shard:
        """Rebuild a partition's clock, due index and centroids after a (re)assignment.

        Assigned customers are due one sweep period after their last evaluation
        (at once when a model other than the active one placed them).
        """
        shard = Shard(self._fresh_centroids())
        timed = standings.as_of != -1
        if timed.any():
            shard.watermark = from_epoch_micros(int(standings.as_of[timed].max()))
        rows = np.flatnonzero(timed & standings.assigned)
        period = self.config.sweep_period // timedelta(microseconds=1)
        current = standings.model_version[rows] == self.active.version
        due = np.where(current, standings.as_of[rows] + period, 0)
        keys = standings.keys
        shard.due.schedule_many([keys[row] for row in rows.tolist()], due)
        if checkpoint is not None and checkpoint.get("model_version") == self.active.version:
            centroids = checkpoint.get("centroids")
            if isinstance(centroids, list):
                shard.centroids.restore(centroids)
        self.shards[partition] = shard
        return shard

    # -- queries ------------------------------------------------------------------

    @property
    def model(self) -> SegmentModel:
        """The active model."""
        return self.active.model

    def segment_name(self, segment_id: int) -> str | None:
        """A segment's name in the latest model that had it (None: never seen)."""
        return self.names_seen.get(segment_id)

    def status(self, partition: int) -> PartitionStatus | None:
        """An owned partition's clock, sweep backlog and centroid drift (None: not held)."""
        shard = self.shards.get(partition)
        return None if shard is None else _status(partition, shard, self.active, self.config)

    def drop_shard(self, partition: int) -> None:
        """Forget a partition this worker no longer owns."""
        self.shards.pop(partition, None)

    def checkpoint(self, partition: int) -> dict[str, object]:
        """The partition's online centroids, tagged with the model they grew from."""
        return {
            "model_version": self.active.version,
            "centroids": self.shard(partition).centroids.checkpoint(),
        }

    def current_assignments(
        self, partition: int, items: Sequence[tuple[str, CustomerRecord]]
    ) -> list[SegmentAssignment]:
        """Each assigned customer's segment as its record holds it, with membership,
        confidence and holdout against the partition's centroids as they stand."""
        config = self.config
        return standing_assignments(
            self.active, self.shard(partition).centroids.centroids(), config.holdout, items,
            horizon_days=config.traits_horizon_days, thresholds=config.bands,
        )  # fmt: skip

    # -- models ---------------------------------------------------------------

    def set_model(self, model: SegmentModel) -> bool:
        """Switch to `model`; False (nothing done) when it is already active.

        Centroids restart from the new baseline and every known customer
        becomes due, so the sweep re-scores all of them with reason
        ``model_update``; an event re-scores its customer sooner.
        """
        if model.version == self.active.version and model == self.active.model:
            return False
        self.active = ActiveModel(model)
        self.names_seen.update((s.segment_id, s.name) for s in model.segments)
        for shard in self.shards.values():
            shard.centroids = self._fresh_centroids()
            shard.due.reschedule_all(0)
        return True

    # -- processing -------------------------------------------------------------

    def process(
        self,
        batch: Sequence[tuple[int, CustomerEvent]],
        lookup: RecordLookup,
        now: datetime,
    ) -> RescoreResult:
        """Fold a batch of (partition, event) in arrival order and re-score who changed."""
        result = RescoreResult()
        touched: dict[str, CustomerRecord] = {}
        wall = self.config.clock == "wall"
        for partition, event in batch:
            shard = self.shard(partition)
            if wall:
                shard.watermark = now
            elif shard.watermark is None or event.occurred_at > shard.watermark:
                shard.watermark = event.occurred_at
            key = event.customer_id
            record = touched.get(key) or lookup(key, partition)
            if record is None:
                record = CustomerRecord(CustomerState(self.active.window_days), partition)
            record.partition = partition
            outcome, changed = fold(record, event, shard.watermark)
            if changed:
                touched[key] = record
                record.trigger_event_id = event.event_id
            result.counts[outcome] += 1
        if touched:
            self._score(list(touched.items()), ChangeReason.EVENT, now, result, always_emit=True)
        return result

    def has_due(self, partition: int, now: datetime) -> bool:
        """Whether `partition` has customers the sweep should re-score at its clock."""
        shard = self.shards.get(partition)
        if shard is None:
            return False
        clock = now if self.config.clock == "wall" else shard.watermark
        due = shard.due.next_due()
        return clock is not None and due is not None and due <= epoch_micros(clock)

    def sweep(
        self, partition: int, lookup: RecordLookup, now: datetime, limit: int
    ) -> RescoreResult:
        """Re-score up to `limit` customers of `partition` whose due time has passed."""
        return self.sweep_round([partition], lookup, now, limit)

    def sweep_round(
        self, partitions: Sequence[int], lookup: RecordLookup, now: datetime, limit: int
    ) -> RescoreResult:
        """Re-score up to `limit` due customers of each of `partitions`, in one pass."""
        result = RescoreResult()
        items: list[tuple[str, CustomerRecord]] = []
        pruned: set[str] = set()
        for partition in partitions:
            shard = self.shards.get(partition)
            if shard is None:
                continue
            if self.config.clock == "wall":
                shard.watermark = now
            if shard.watermark is None:
                continue
            for key in shard.due.pop_due(epoch_micros(shard.watermark), limit):
                record = lookup(key, partition)
                if record is None or record.partition != partition:
                    continue
                if record.state.prune(max(shard.watermark, record.as_of or shard.watermark)):
                    pruned.add(key)
                items.append((key, record))
        result.swept += len(items)
        if items:
            self._score(items, ChangeReason.RECENCY, now, result, always_emit=False, dirty=pruned)
        return result

    def _score(
        self,
        items: list[tuple[str, CustomerRecord]],
        reason: ChangeReason,
        now: datetime,
        result: RescoreResult,
        *,
        always_emit: bool,
        dirty: Set[str] = frozenset(),
    ) -> None:
        """Evaluate `items`, say what goes out, and apply it to records, schedule, centroids."""
        config = self.config
        shards = {record.partition: self.shard(record.partition) for _, record in items}
        watermarks: dict[int, datetime] = {}
        for partition, shard in shards.items():
            assert shard.watermark is not None  # noqa: S101 - set before any evaluation
            watermarks[partition] = shard.watermark
        evaluation, unscored = evaluate(
            items, reason, self.active,
            {p: shard.centroids.centroids() for p, shard in shards.items()}, watermarks,
            margin=config.margin, sweep_period=config.sweep_period,
            recheck_period=config.recheck_period, horizon_days=config.traits_horizon_days,
            bands=config.bands,
        )  # fmt: skip
        for key, record in unscored.items:
            result.records[key] = record
        if evaluation is None:
            return
        emission = emit(
            evaluation, self.active, now, always_emit=always_emit, names_seen=self.names_seen,
            holdout=config.holdout, dirty=dirty, horizon_days=config.traits_horizon_days,
        )  # fmt: skip
        self._apply(evaluation, emission, result)

    def _apply(self, evaluation: Evaluation, emission: Emission, result: RescoreResult) -> None:
        """The records, the due-time index and the centroids after an evaluation."""
        result.changes.extend(emission.changes)
        result.assignments.extend(emission.assignments)
        result.band_changes.extend(emission.band_changes)
        result.evaluations.append(evaluation)
        active = self.active
        dues = evaluation.due.tolist()
        found = evaluation.traits
        if found is not None:
            bands = [BANDS[code] for code in found.band.tolist()]  # the values, not the enums
            alive = found.traits.p_alive.astype(np.float32).tolist()  # as the record keeps it
            repeats = found.repeat_days.tolist()
        partitions = evaluation.partitions
        for row, (key, record) in enumerate(zip(evaluation.keys, evaluation.records, strict=True)):
            move = emission.moves[row]
            if move is not None:
                record.remember(move)
            record.segment_id = active.space.segment_ids[int(evaluation.chosen[row])]
            record.model_version = active.version
            record.as_of = evaluation.as_of[row]
            record.vector = evaluation.vectors[row]
            record.trigger_event_id = None
            if found is None:
                record.band = record.p_alive = record.repeat_days = None
            else:
                record.band = bands[row]
                record.p_alive, record.repeat_days = alive[row], repeats[row]
            if emission.written[row]:
                result.records[key] = record
            self.shards[partitions[int(evaluation.owner[row])]].due.schedule(key, dues[row])
        for slot, partition in enumerate(partitions):
            self.shards[partition].centroids.learn_many(
                evaluation.embedded[evaluation.rows_of(slot)]
            )


def fold(record: CustomerRecord, event: CustomerEvent, clock: datetime) -> tuple[Outcome, bool]:
    """Apply one event to a record at its partition's clock (never behind the record's
    last evaluation): the event's outcome, and whether the state changed."""
    watermark = clock if record.as_of is None or record.as_of <= clock else record.as_of
    if event.type is EventType.SESSION:
        return Outcome.SESSION, False
    if event.occurred_at > watermark:
        return Outcome.FUTURE, False
    too_old = day_number(event.occurred_at) < first_window_day(watermark, record.state.window_days)
    changed = record.state.apply(event, watermark)
    if too_old:
        return Outcome.TOO_OLD, changed
    return (Outcome.APPLIED if changed else Outcome.DUPLICATE), changed


def _status(
    partition: int, shard: Shard, active: ActiveModel, config: RescoreConfig
) -> PartitionStatus:
    moved = shard.centroids.drift()
    overdue = 0
    if shard.watermark is not None:
        period = config.sweep_period // timedelta(microseconds=1)
        overdue = shard.due.count_before(epoch_micros(shard.watermark) - period)
    return PartitionStatus(
        partition, shard.watermark, len(shard.due), overdue,
        {name: float(moved[i]) for i, name in enumerate(active.names)},
    )  # fmt: skip
