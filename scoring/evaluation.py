"""Scoring customers, as a pure step: from records and centroids to what they found.

`evaluate` scores customers of any owned partitions in one vectorised pass,
each against its own partition's online centroids: their features as of
their partition's clock, distances, the segment hysteresis chooses,
membership, confidence and when each is due again. It changes nothing: the
records, the due-time index and the centroids are the `Rescorer`'s to
update (`scoring.reassignment`), and the outputs are `scoring.emission`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from schemas.segments import ChangeReason
from scoring.active_model import ActiveModel
from scoring.customer_record import CustomerRecord, epoch_micros
from scoring.customer_state import Lifetime
from scoring.hysteresis import choose_many
from scoring.live_traits import TraitRows, score_traits
from scoring.membership import confidence, membership
from scoring.rfm import MICROS_PER_DAY
from scoring.space import rowwise_distances
from scoring.traits import DEFAULT_HORIZON_DAYS, BandThresholds

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
LOOKAHEAD_CHUNK = 1024


@dataclass(frozen=True)
class Evaluation:
    """Customers scored together (rows), and what the scoring found for each.

    Rows belong to partitions through ``slots``: row ``i`` is a customer of
    partition ``partitions[owner[i]]``. ``before`` and ``before_as_of`` hold the
    previous evaluation of the rows that had one (``had``), for drift.
    """

    reason: ChangeReason
    """Why these customers were scored: their own events, or the sweep (recency)."""
    keys: list[str]
    records: list[CustomerRecord]
    as_of: list[datetime]
    vectors: list[tuple[float, int, float]]
    partitions: list[int]
    owner: IntArray
    raw: FloatArray
    embedded: FloatArray
    distances: FloatArray
    chosen: IntArray
    """Index of each row's segment in the active model."""
    membership: list[list[float]]
    confidence: list[float]
    due: IntArray
    """When each row is due again (microseconds since the epoch), expiry included."""
    as_of_micros: IntArray
    had: NDArray[np.bool_]
    before: FloatArray
    before_as_of: IntArray
    traits: TraitRows | None = None
    """The rows' predictive traits (None: the active model has no predictive model)."""
    segment_ids: IntArray | None = None
    """Each row's chosen segment id (`chosen` through the active model's ids)."""

    @property
    def row_partitions(self) -> IntArray:
        """Each row's partition."""
        return np.asarray(self.partitions, dtype=np.int64)[self.owner]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def by_event(self) -> bool:
        """Scored because of their own events (not picked by the sweep, which favours
        customers near a boundary and so sees different distances)."""
        return self.reason is ChangeReason.EVENT

    def rows_of(self, slot: int) -> NDArray[np.bool_]:
        """Rows of the partition in `slot`."""
        mask: NDArray[np.bool_] = self.owner == slot
        return mask

    @property
    def assigned_distances(self) -> FloatArray:
        """Each row's distance to the centroid it was assigned."""
        chosen: FloatArray = self.distances[np.arange(len(self.keys)), self.chosen]
        return chosen


@dataclass(frozen=True)
class Unscored:
    """Customers `evaluate` could not score: no purchase yet (their state is kept)."""

    items: list[tuple[str, CustomerRecord]]


@dataclass
class _Gathered:
    """The rows `evaluate` can score, each with its partition's slot and clock."""

    partitions: list[int]
    keys: list[str]
    records: list[CustomerRecord]
    as_of: list[datetime]
    vectors: list[tuple[float, int, float]]
    owners: list[int]
    lifetimes: list[Lifetime | None]
    unscored: list[tuple[str, CustomerRecord]]


def _gather(
    items: Sequence[tuple[str, CustomerRecord]],
    watermarks: Mapping[int, datetime],
    with_traits: bool,
) -> _Gathered:
    """Each item's features as of its partition's clock; those with no purchase apart."""
    slot_of: dict[int, int] = {}
    rows = _Gathered([], [], [], [], [], [], [], [])
    for key, record in items:
        slot = slot_of.get(record.partition)
        if slot is None:
            slot = slot_of[record.partition] = len(rows.partitions)
            rows.partitions.append(record.partition)
        watermark = watermarks[record.partition]
        as_of = watermark if record.as_of is None or record.as_of < watermark else record.as_of
        if with_traits:  # the RFM vector and the whole history in one pass
            scored = record.state.scored(as_of)
            if scored is None:  # no purchase yet: remember the state, assign nothing
                rows.unscored.append((key, record))
                continue
            vector, lifetime = scored
            rows.lifetimes.append(lifetime)
        else:
            plain = record.state.vector(as_of)
            if plain is None:
                rows.unscored.append((key, record))
                continue
            vector = plain
        rows.keys.append(key)
        rows.records.append(record)
        rows.as_of.append(as_of)
        rows.vectors.append(vector)
        rows.owners.append(slot)
    return rows


def evaluate(
    items: Sequence[tuple[str, CustomerRecord]],
    reason: ChangeReason,
    active: ActiveModel,
    centroids: Mapping[int, FloatArray],
    watermarks: Mapping[int, datetime],
    *,
    margin: float,
    sweep_period: timedelta,
    recheck_period: timedelta,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    bands: BandThresholds = BandThresholds(),  # noqa: B008 - frozen, shared safely
) -> tuple[Evaluation | None, Unscored]:
    """Score `items` against their partitions' `centroids` at their partitions' clocks.

    With a predictive model, each row's traits too, and its due time also
    covers the day its churn risk would reach the next band.
    """
    rows = _gather(items, watermarks, active.traits is not None)
    if not rows.keys:
        return None, Unscored(rows.unscored)
    records = rows.records
    owner = np.asarray(rows.owners, dtype=np.int64)
    stacked = np.stack([centroids[p] for p in rows.partitions])
    raw = np.asarray(rows.vectors, dtype=np.float64)
    embedded = active.space.embed(raw)
    distances = rowwise_distances(embedded, stacked[owner])
    current = np.asarray(
        [-1 if r.segment_id is None else active.index_of.get(r.segment_id, -1) for r in records],
        dtype=np.int64,
    )
    chosen = choose_many(distances, current, margin)
    as_of_micros = np.asarray([epoch_micros(a) for a in rows.as_of], dtype=np.int64)
    had, before, before_as_of = _previous(records)
    due = _capped_at_expiry(
        next_due(
            active, stacked, owner, raw, chosen, as_of_micros,
            margin=margin, sweep_period=sweep_period, recheck_period=recheck_period,
        ),
        records,
    )  # fmt: skip
    found = None
    if active.traits is not None:
        found = score_traits(
            active.traits, records, rows.as_of, as_of_micros,
            (had, before, before_as_of), horizon_days=horizon_days, thresholds=bands,
            lifetimes=rows.lifetimes,
        )  # fmt: skip
        due = np.minimum(due, found.crossing)
    evaluation = Evaluation(
        reason=reason,
        keys=rows.keys,
        records=records,
        as_of=rows.as_of,
        vectors=rows.vectors,
        partitions=rows.partitions,
        owner=owner,
        raw=raw,
        embedded=embedded,
        distances=distances,
        chosen=chosen,
        membership=np.round(membership(distances, active.temperature), 6).tolist(),
        confidence=np.round(confidence(distances), 6).tolist(),
        due=due,
        as_of_micros=as_of_micros,
        had=had,
        before=before,
        before_as_of=before_as_of,
        traits=found,
        segment_ids=np.asarray(active.space.segment_ids, dtype=np.int64)[chosen],
    )
    return evaluation, Unscored(rows.unscored)


def _capped_at_expiry(due: IntArray, records: Sequence[CustomerRecord]) -> IntArray:
    """`due`, but no later than the day each record's oldest purchase leaves the window."""
    expiries = [r.state.next_expiry() for r in records]
    if all(e is None for e in expiries):
        return due
    cap = np.asarray(
        [np.iinfo(np.int64).max if e is None else e * MICROS_PER_DAY for e in expiries],
        dtype=np.int64,
    )
    capped: IntArray = np.minimum(due, cap)
    return capped


def _previous(records: Sequence[CustomerRecord]) -> tuple[NDArray[np.bool_], FloatArray, IntArray]:
    """Which records had an evaluation, and its features and time."""
    n = len(records)
    had = np.asarray([r.vector is not None and r.as_of is not None for r in records], dtype=bool)
    before = np.zeros((n, 3), dtype=np.float64)
    before_as_of = np.zeros(n, dtype=np.int64)
    for row in np.flatnonzero(had).tolist():
        record = records[row]
        before[row] = record.vector
        before_as_of[row] = epoch_micros(record.as_of)  # type: ignore[arg-type]
    return had, before, before_as_of


def next_due(
    active: ActiveModel,
    centroids: FloatArray,
    owner: IntArray,
    raw: FloatArray,
    chosen: IntArray,
    base: IntArray,
    *,
    margin: float,
    sweep_period: timedelta,
    recheck_period: timedelta,
) -> IntArray:
    """When each customer must be looked at again if nothing else happens.

    Recency grows with time while frequency and monetary stay put until a
    day leaves the window (`evaluate` caps the result there). Looking ahead
    one sweep period at a time up to the recheck period, the first step at
    which the hysteresis decision would differ is when the customer is due:
    a move is made at most one sweep period late, and customers far from any
    boundary cost nothing until their recheck. Each row looks ahead against
    its own partition's centroids (``centroids[owner]``).
    """
    step = sweep_period / timedelta(days=1)
    horizon = max(1, math.ceil(recheck_period / sweep_period))
    offsets = step * np.arange(1, horizon + 1, dtype=np.float64)
    space = active.space
    n = len(raw)
    steps = np.full(n, horizon - 1, dtype=np.int64)
    for start in range(0, n, LOOKAHEAD_CHUNK):
        part = raw[start : start + LOOKAHEAD_CHUNK]
        m = len(part)
        future = np.repeat(part[:, None, :], horizon, axis=1)
        future[:, :, 0] += offsets[None, :]
        owners = np.repeat(owner[start : start + m], horizon)
        distances = rowwise_distances(space.embed(future.reshape(-1, 3)), centroids[owners])
        current = np.repeat(chosen[start : start + m], horizon)
        decided = choose_many(distances, current, margin).reshape(m, horizon)
        differs = decided != chosen[start : start + m, None]
        first = np.argmax(differs, axis=1)
        steps[start : start + m] = np.where(differs.any(axis=1), first, horizon - 1)
    due: IntArray = base + np.round(offsets[steps] * MICROS_PER_DAY).astype(np.int64)
    return due
