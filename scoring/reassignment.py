"""Reassignment, the re-scoring core shared by the Faust worker and `rescorer replay`.

It folds events into per-customer records, scores the customers an event
batch touched in one vectorised pass, applies hysteresis against per-partition
online centroids, and says which segment changes and assignments to emit.
Storage and transport stay with the caller: records come in through a lookup
function and go out in `Rescored.records`, to be persisted *after* the
outputs are delivered (see the README's "Processing guarantees").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from schemas._base import trusted
from schemas.events import CustomerEvent, EventType
from schemas.model import SegmentModel
from schemas.segments import (
    ChangeReason,
    RfmFeatures,
    SegmentAssignment,
    SegmentChange,
)
from scoring.customer_record import CustomerRecord, Move, from_micros, to_micros
from scoring.customer_state import CustomerState
from scoring.due_index import DueIndex
from scoring.holdout import HoldoutPolicy
from scoring.hysteresis import DEFAULT_MARGIN, check_margin, choose_many
from scoring.membership import confidence, membership
from scoring.online_clusters import DEFAULT_LEARNING_RATE, OnlineCentroids
from scoring.rfm import MICROS_PER_DAY, day_number, first_window_day
from scoring.space import ModelSpace, rowwise_distances
from scoring.standings import Standings

Clock = Literal["event", "wall"]
Lookup = Callable[[str, int], CustomerRecord | None]
"""Find a customer's record: (customer id, partition) -> record or None."""


@dataclass(frozen=True)
class RescoreConfig:
    """How the core decides; every field has a worker setting of the same name."""

    margin: float = DEFAULT_MARGIN
    learning_rate: float = DEFAULT_LEARNING_RATE
    sweep_period: timedelta = timedelta(days=1)
    recheck_period: timedelta = timedelta(days=30)
    clock: Clock = "event"
    holdout: HoldoutPolicy = field(default_factory=HoldoutPolicy)

    def __post_init__(self) -> None:
        check_margin(self.margin)
        if not 0.0 <= self.learning_rate <= 1.0:
            raise ValueError(f"learning rate must be in [0, 1], got {self.learning_rate}")
        if self.sweep_period <= timedelta(0):
            raise ValueError("sweep period must be positive")
        if self.recheck_period < self.sweep_period:
            raise ValueError("recheck period must be at least the sweep period")


class ActiveModel:
    """A validated `SegmentModel` with what scoring needs precomputed."""

    def __init__(self, model: SegmentModel) -> None:
        self.model = model
        self.version = model.version
        self.space = ModelSpace.from_model(model)
        self.names = tuple(s.name for s in model.segments)
        self.index_of = {s.segment_id: i for i, s in enumerate(model.segments)}
        self.window_days = model.features.window_days
        self.temperature = model.temperature
        self.membership_keys = tuple(str(s.segment_id) for s in model.segments)


@dataclass
class Shard:
    """Per-partition state that is not per customer: the clock, centroids, due times."""

    centroids: OnlineCentroids
    due: DueIndex = field(default_factory=DueIndex)
    watermark: datetime | None = None


@dataclass(frozen=True)
class Scored:
    """Customers of one partition scored together, for drift monitoring.

    ``before`` and ``before_as_of`` hold what the previous evaluation of the
    customers that had one found, so a population histogram can swap the old
    contribution for the new one.
    """

    partition: int
    raw: NDArray[np.float64]
    """RFM features, shape (n, 3)."""
    as_of: NDArray[np.int64]
    """When each row was evaluated, in microseconds since the epoch."""
    distances: NDArray[np.float64]
    """Standardised distance of each row to the centroid it was assigned."""
    by_event: bool
    """Scored because of their own events (not picked by the sweep, which favours
    customers near a boundary and so sees different distances)."""
    before: NDArray[np.float64]
    """The previous evaluation's features, one row per customer that had one."""
    before_as_of: NDArray[np.int64]
    """When those previous evaluations were made (microseconds since the epoch)."""


@dataclass
class Rescored:
    """What one call produced: outputs to send, then records to persist."""

    changes: list[SegmentChange] = field(default_factory=list)
    assignments: list[SegmentAssignment] = field(default_factory=list)
    records: dict[str, CustomerRecord] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    scored: list[Scored] = field(default_factory=list)

    def extend(self, other: Rescored) -> None:
        """Append another result (later records win)."""
        self.changes.extend(other.changes)
        self.assignments.extend(other.assignments)
        self.records.update(other.records)
        self.counts.update(other.counts)
        self.scored.extend(other.scored)


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
            shard.watermark = from_micros(int(standings.as_of[timed].max()))
        rows = np.flatnonzero(timed & standings.assigned)
        period = _micros(self.config.sweep_period)
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
        active = self.active
        rows = [
            (key, record)
            for key, record in items
            if record.segment_id is not None
            and record.vector is not None
            and record.as_of is not None
            and record.segment_id in active.index_of
        ]
        if not rows:
            return []
        raw = np.asarray([record.vector for _, record in rows], dtype=np.float64)
        distances = active.space.distances_to(
            active.space.embed(raw), self.shard(partition).centroids.centroids()
        )
        scores = np.round(membership(distances, active.temperature), 6).tolist()
        margins = np.round(confidence(distances), 6).tolist()
        out = []
        for row, (key, record) in enumerate(rows):
            assert record.vector is not None  # noqa: S101 - filtered above
            assert record.segment_id is not None  # noqa: S101
            recency, frequency, monetary = record.vector
            out.append(
                SegmentAssignment(
                    customer_id=key,
                    segment_id=record.segment_id,
                    segment_name=active.names[active.index_of[record.segment_id]],
                    model_version=active.version,
                    features=RfmFeatures(
                        recency_days=recency, frequency=int(frequency), monetary=monetary
                    ),
                    as_of=record.as_of,
                    membership=dict(zip(active.membership_keys, scores[row], strict=True)),
                    confidence=margins[row],
                    holdout=self.config.holdout.is_holdout(key, record.segment_id),
                )
            )
        return out

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
        lookup: Lookup,
        now: datetime,
    ) -> Rescored:
        """Fold a batch of (partition, event) in arrival order and re-score who changed."""
        result = Rescored()
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
            watermark = shard.watermark
            if record.as_of is not None and record.as_of > watermark:
                watermark = record.as_of
            if event.type is EventType.SESSION:
                result.counts["session"] += 1
                continue
            if event.occurred_at > watermark:
                result.counts["future"] += 1
                continue
            too_old = day_number(event.occurred_at) < first_window_day(
                watermark, record.state.window_days
            )
            changed = record.state.apply(event, watermark)
            if changed:
                touched[key] = record
                record.trigger_event_id = event.event_id
            result.counts["too_old" if too_old else "applied" if changed else "duplicate"] += 1
        if touched:
            self._evaluate(list(touched.items()), ChangeReason.EVENT, now, result, always_emit=True)
        return result

    def has_due(self, partition: int, now: datetime) -> bool:
        """Whether `partition` has customers the sweep should re-score at its clock."""
        shard = self.shards.get(partition)
        if shard is None:
            return False
        clock = now if self.config.clock == "wall" else shard.watermark
        due = shard.due.next_due()
        return clock is not None and due is not None and due <= to_micros(clock)

    def sweep(self, partition: int, lookup: Lookup, now: datetime, limit: int) -> Rescored:
        """Re-score up to `limit` customers of `partition` whose due time has passed."""
        return self.sweep_round([partition], lookup, now, limit)

    def sweep_round(
        self, partitions: Sequence[int], lookup: Lookup, now: datetime, limit: int
    ) -> Rescored:
        """Re-score up to `limit` due customers of each of `partitions`, in one pass."""
        result = Rescored()
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
            for key in shard.due.pop_due(to_micros(shard.watermark), limit):
                record = lookup(key, partition)
                if record is None or record.partition != partition:
                    continue
                if record.state.prune(max(shard.watermark, record.as_of or shard.watermark)):
                    pruned.add(key)
                items.append((key, record))
        result.counts["swept"] += len(items)
        if items:
            self._evaluate(
                items, ChangeReason.RECENCY, now, result, always_emit=False, dirty=pruned
            )
        return result

    def _evaluate(
        self,
        items: list[tuple[str, CustomerRecord]],
        reason: ChangeReason,
        now: datetime,
        result: Rescored,
        *,
        always_emit: bool,
        dirty: set[str] | None = None,
    ) -> None:
        """Score customers of any owned partitions in one vectorised pass.

        Each row is scored against its own partition's online centroids
        (gathered per row), so one pass serves a batch spanning partitions;
        each partition then learns from its own rows.
        """
        active = self.active
        shards: list[tuple[int, Shard]] = []
        slot_of: dict[int, int] = {}
        scored: list[tuple[str, CustomerRecord, datetime, tuple[float, int, float]]] = []
        owners: list[int] = []
        for key, record in items:
            slot = slot_of.get(record.partition)
            if slot is None:
                slot = slot_of[record.partition] = len(shards)
                shards.append((record.partition, self.shard(record.partition)))
            watermark = shards[slot][1].watermark
            assert watermark is not None  # noqa: S101 - set before any evaluation
            as_of = watermark if record.as_of is None or record.as_of < watermark else record.as_of
            vector = record.state.vector(as_of)
            if vector is None:  # no purchase yet: remember the state, assign nothing
                result.records[key] = record
                continue
            scored.append((key, record, as_of, vector))
            owners.append(slot)
        if not scored:
            return
        n = len(scored)
        owner = np.asarray(owners, dtype=np.int64)
        centroids = np.stack([shard.centroids.centroids() for _, shard in shards])
        raw = np.asarray([v for _, _, _, v in scored], dtype=np.float64)
        embedded = active.space.embed(raw)
        distances = rowwise_distances(embedded, centroids[owner])
        current = np.asarray(
            [
                -1 if r.segment_id is None else active.index_of.get(r.segment_id, -1)
                for _, r, _, _ in scored
            ],
            dtype=np.int64,
        )
        chosen = choose_many(distances, current, self.config.margin)
        scores = np.round(membership(distances, active.temperature), 6).tolist()
        margins = np.round(confidence(distances), 6).tolist()
        holdout = self.config.holdout
        holding = holdout.enabled
        base = np.asarray([to_micros(a) for _, _, a, _ in scored], dtype=np.int64)
        due = self._next_due(centroids, owner, raw, chosen, base)
        had = np.asarray([r.vector is not None and r.as_of is not None for _, r, _, _ in scored])
        before = np.zeros((n, 3), dtype=np.float64)
        before_as_of = np.zeros(n, dtype=np.int64)
        for row in np.flatnonzero(had).tolist():
            record = scored[row][1]
            before[row] = record.vector
            before_as_of[row] = to_micros(record.as_of)  # type: ignore[arg-type]
        assigned = distances[np.arange(n), chosen]
        by_event = reason is ChangeReason.EVENT
        masks = [owner == slot for slot in range(len(shards))]
        for (partition, _), mask in zip(shards, masks, strict=True):
            kept = mask & had
            result.scored.append(
                Scored(
                    partition,
                    raw[mask],
                    base[mask],
                    assigned[mask],
                    by_event,
                    before[kept],
                    before_as_of[kept],
                )
            )
        for row, (key, record, as_of, vector) in enumerate(scored):
            shard = shards[owners[row]][1]
            index = int(chosen[row])
            segment_id = active.space.segment_ids[index]
            model_changed = record.model_version != active.version
            moved = record.segment_id != segment_id
            previous = record.vector
            material = moved or model_changed or previous is None or previous[1:] != vector[1:]
            emit = always_emit or material
            if moved or emit:
                features = trusted(
                    RfmFeatures, recency_days=vector[0], frequency=vector[1], monetary=vector[2]
                )
                soft = dict(zip(active.membership_keys, scores[row], strict=True))
                held = holding and holdout.is_holdout(key, segment_id)
            if moved:
                why = (
                    ChangeReason.MODEL_UPDATE
                    if model_changed and record.model_version is not None
                    else reason
                )
                record.remember(
                    Move(
                        to_micros(as_of) // 1_000_000,
                        record.segment_id,
                        segment_id,
                        why.value,
                        active.version,
                    )
                )
                result.changes.append(
                    trusted(
                        SegmentChange,
                        customer_id=key,
                        previous_segment_id=record.segment_id,
                        previous_segment_name=(
                            None
                            if record.segment_id is None
                            else self.names_seen.get(record.segment_id)
                        ),
                        segment_id=segment_id,
                        segment_name=active.names[index],
                        model_version=active.version,
                        reason=why,
                        membership=soft,
                        confidence=margins[row],
                        holdout=held,
                        features=features,
                        as_of=as_of,
                        emitted_at=now,
                        trigger_event_id=record.trigger_event_id if by_event else None,
                    )
                )
            if emit:
                result.assignments.append(
                    trusted(
                        SegmentAssignment,
                        customer_id=key,
                        segment_id=segment_id,
                        segment_name=active.names[index],
                        model_version=active.version,
                        features=features,
                        as_of=as_of,
                        membership=soft,
                        confidence=margins[row],
                        holdout=held,
                    )
                )
            record.segment_id = segment_id
            record.model_version = active.version
            record.as_of = as_of
            record.vector = vector
            record.trigger_event_id = None
            # A sweep that only moved the clock forward needs no write: after a
            # restart the customer is simply due a little earlier.
            if emit or (dirty is not None and key in dirty):
                result.records[key] = record
            expiry = record.state.next_expiry()
            next_due = int(due[row])
            if expiry is not None:
                next_due = min(next_due, expiry * MICROS_PER_DAY)
            shard.due.schedule(key, next_due)
        for (_, shard), mask in zip(shards, masks, strict=True):
            shard.centroids.learn_many(embedded[mask])

    def _next_due(
        self,
        centroids: NDArray[np.float64],
        owner: NDArray[np.int64],
        raw: NDArray[np.float64],
        chosen: NDArray[np.int64],
        base: NDArray[np.int64],
    ) -> NDArray[np.int64]:
        """When each customer must be looked at again if nothing else happens.

        Recency grows with time while frequency and monetary stay put until a
        day leaves the window (handled by the caller). Looking ahead one sweep
        period at a time up to the recheck period, the first step at which the
        hysteresis decision would differ is when the customer is due: a move
        is made at most one sweep period late, and customers far from any
        boundary cost nothing until their recheck. Each row looks ahead
        against its own partition's centroids (``centroids[owner]``).
        """
        step = self.config.sweep_period / timedelta(days=1)
        horizon = max(1, math.ceil(self.config.recheck_period / self.config.sweep_period))
        offsets = step * np.arange(1, horizon + 1, dtype=np.float64)
        space = self.active.space
        n = len(raw)
        steps = np.full(n, horizon - 1, dtype=np.int64)
        for start in range(0, n, _LOOKAHEAD_CHUNK):
            part = raw[start : start + _LOOKAHEAD_CHUNK]
            m = len(part)
            future = np.repeat(part[:, None, :], horizon, axis=1)
            future[:, :, 0] += offsets[None, :]
            owners = np.repeat(owner[start : start + m], horizon)
            distances = rowwise_distances(space.embed(future.reshape(-1, 3)), centroids[owners])
            current = np.repeat(chosen[start : start + m], horizon)
            decided = choose_many(distances, current, self.config.margin).reshape(m, horizon)
            differs = decided != chosen[start : start + m, None]
            first = np.argmax(differs, axis=1)
            steps[start : start + m] = np.where(differs.any(axis=1), first, horizon - 1)
        due: NDArray[np.int64] = base + np.round(offsets[steps] * MICROS_PER_DAY).astype(np.int64)
        return due


_LOOKAHEAD_CHUNK = 1024


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)
