"""What an evaluation says to downstream services: segment changes and assignments.

From an `Evaluation` (pure: nothing changed yet) this decides, per row,
whether the customer moved (a `SegmentChange`, and a `Move` for its record's
history), whether an assignment goes out (always for customers scored because
of their own events; otherwise only when something material changed), and
whether the record must be written. With a predictive model, assignments
carry the customer's traits, and a customer whose churn-risk band moved gets a
`RiskBandChange` (which is material too). Pure: the `Rescorer` applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from schemas._base import trusted
from schemas.segments import (
    ChangeReason,
    CustomerTraits,
    RfmFeatures,
    RiskBand,
    RiskBandChange,
    SegmentAssignment,
    SegmentChange,
)
from scoring.active_model import ActiveModel
from scoring.customer_record import CustomerRecord, Move, epoch_micros
from scoring.evaluation import Evaluation
from scoring.holdout import HoldoutPolicy
from scoring.live_traits import traits_at
from scoring.membership import confidence, membership
from scoring.traits import BAND_ORDER, DEFAULT_HORIZON_DAYS, BandThresholds, Traits


@dataclass(frozen=True)
class Emission:
    """The outputs of one evaluation, and what its rows' records need."""

    changes: list[SegmentChange]
    assignments: list[SegmentAssignment]
    moves: list[Move | None]
    """Per row: the change to remember in the record's history, if it moved."""
    written: list[bool]
    """Per row: whether the record must be persisted."""
    band_changes: list[RiskBandChange]


def emit(
    evaluation: Evaluation,
    active: ActiveModel,
    now: datetime,
    *,
    always_emit: bool,
    names_seen: Mapping[int, str],
    holdout: HoldoutPolicy,
    dirty: Set[str] = frozenset(),
    horizon_days: float = DEFAULT_HORIZON_DAYS,
) -> Emission:
    """Changes, assignments, moves and writes for `evaluation` (see the module docstring).

    `dirty` names customers whose records changed before scoring (the sweep
    pruned them), which must be written even when nothing is emitted.
    """
    emission = Emission([], [], [], [], [])
    found = evaluation.traits
    columns = None if found is None else _TraitColumns.of(found.traits, found.band, horizon_days)
    for row, (key, record) in enumerate(zip(evaluation.keys, evaluation.records, strict=True)):
        vector = evaluation.vectors[row]
        index = int(evaluation.chosen[row])
        segment_id = active.space.segment_ids[index]
        model_changed = record.model_version != active.version
        moved = record.segment_id != segment_id
        previous = record.vector
        band = None if columns is None else columns.band[row]
        banded = band is not None and band != record.band  # a StrEnum equals its value
        material = (
            moved or model_changed or banded or previous is None or previous[1:] != vector[1:]
        )
        emitting = always_emit or material
        move = None
        why = (
            ChangeReason.MODEL_UPDATE
            if model_changed and record.model_version is not None
            else evaluation.reason
        )
        trigger = record.trigger_event_id if evaluation.by_event else None
        if moved or emitting:
            out = _Output(
                key, segment_id, active.names[index], active.version,
                trusted(RfmFeatures, recency_days=vector[0], frequency=vector[1],
                        monetary=vector[2]),
                evaluation.as_of[row],
                dict(zip(active.membership_keys, evaluation.membership[row], strict=True)),
                evaluation.confidence[row],
                holdout.enabled and holdout.is_holdout(key, segment_id),
                None if columns is None else columns.row(row),
            )  # fmt: skip
        if moved:
            move = Move(
                epoch_micros(out.as_of) // 1_000_000, record.segment_id, segment_id, why.value,
                active.version,
            )  # fmt: skip
            previous_name = None if record.segment_id is None else names_seen.get(record.segment_id)
            emission.changes.append(out.change(record.segment_id, previous_name, why, now, trigger))
        if emitting:
            emission.assignments.append(out.assignment())
        if banded:
            assert band is not None  # noqa: S101 - banded needs traits
            emission.band_changes.append(out.band_change(record.band, band, why, now, trigger))
        emission.moves.append(move)
        # A sweep that only moved the clock forward needs no write: after a
        # restart the customer is simply due a little earlier.
        emission.written.append(emitting or key in dirty)
    return emission


@dataclass(frozen=True)
class _Output:
    """What a change and an assignment of one customer share."""

    customer_id: str
    segment_id: int
    segment_name: str
    model_version: int
    features: RfmFeatures
    as_of: datetime
    membership: dict[str, float]
    confidence: float
    holdout: bool
    traits: CustomerTraits | None

    def change(
        self,
        previous_id: int | None,
        previous_name: str | None,
        reason: ChangeReason,
        now: datetime,
        trigger: str | None,
    ) -> SegmentChange:
        return trusted(
            SegmentChange, customer_id=self.customer_id, previous_segment_id=previous_id,
            previous_segment_name=previous_name, segment_id=self.segment_id,
            segment_name=self.segment_name, model_version=self.model_version, reason=reason,
            membership=self.membership, confidence=self.confidence, holdout=self.holdout,
            features=self.features, as_of=self.as_of, emitted_at=now, trigger_event_id=trigger,
        )  # fmt: skip

    def assignment(self) -> SegmentAssignment:
        return trusted(
            SegmentAssignment, customer_id=self.customer_id, segment_id=self.segment_id,
            segment_name=self.segment_name, model_version=self.model_version,
            features=self.features, as_of=self.as_of, membership=self.membership,
            confidence=self.confidence, holdout=self.holdout, traits=self.traits,
        )  # fmt: skip

    def band_change(
        self,
        previous: str | None,
        band: RiskBand,
        reason: ChangeReason,
        now: datetime,
        trigger: str | None,
    ) -> RiskBandChange:
        traits = self.traits
        assert traits is not None  # noqa: S101 - a band needs traits
        return trusted(
            RiskBandChange, customer_id=self.customer_id,
            previous_band=None if previous is None else _BANDS[previous], band=band,
            churn_risk=traits.churn_risk, p_alive=traits.p_alive, segment_id=self.segment_id,
            segment_name=self.segment_name, model_version=self.model_version, reason=reason,
            holdout=self.holdout, as_of=self.as_of, emitted_at=now, trigger_event_id=trigger,
        )  # fmt: skip


_BANDS = {band.value: band for band in RiskBand}


@dataclass(frozen=True)
class _TraitColumns:
    """An evaluation's traits as Python lists, converted once rather than per row."""

    p_alive: list[float]
    expected_purchases: list[float]
    expected_value: list[float]
    churn_risk: list[float]
    band: list[RiskBand]
    horizon_days: float
    made: dict[tuple[float, float, float, float], CustomerTraits]
    """The messages made so far, by value: customers with the same history have the same
    traits (most rows of an evaluation share theirs with another), and a frozen message
    can be shared."""

    @classmethod
    def of(cls, t: Traits, band: NDArray[np.int64], horizon_days: float) -> _TraitColumns:
        return cls(
            t.p_alive.tolist(), t.expected_purchases.tolist(), t.expected_value.tolist(),
            t.churn_risk.tolist(), [BAND_ORDER[code] for code in band.tolist()], horizon_days,
            {},
        )  # fmt: skip

    def row(self, row: int) -> CustomerTraits:
        """The message form of one row's traits."""
        key = (
            self.p_alive[row], self.expected_purchases[row], self.expected_value[row],
            self.churn_risk[row],
        )  # fmt: skip
        made = self.made.get(key)
        if made is None:  # (a NaN value never matches: made again, still right)
            value = key[2]
            made = self.made[key] = trusted(
                CustomerTraits, p_alive=key[0], expected_purchases=key[1],
                expected_value=None if value != value else value, churn_risk=key[3],
                band=self.band[row], horizon_days=self.horizon_days,
            )  # fmt: skip
        return made


def standing_assignments(
    active: ActiveModel,
    centroids: NDArray[np.float64],
    holdout: HoldoutPolicy,
    items: Sequence[tuple[str, CustomerRecord]],
    *,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    thresholds: BandThresholds = BandThresholds(),  # noqa: B008 - frozen, shared safely
) -> list[SegmentAssignment]:
    """Each assigned customer's segment as its record holds it, with membership,
    confidence and holdout against `centroids` as they stand, and its traits as of
    its last evaluation (lookups)."""
    rows = [
        (key, record, record.vector, record.segment_id, record.as_of)
        for key, record in items
        if record.segment_id is not None
        and record.vector is not None
        and record.as_of is not None
        and record.segment_id in active.index_of
    ]
    if not rows:
        return []
    raw = np.asarray([vector for _, _, vector, _, _ in rows], dtype=np.float64)
    distances = active.space.distances_to(active.space.embed(raw), centroids)
    scores = np.round(membership(distances, active.temperature), 6).tolist()
    margins = np.round(confidence(distances), 6).tolist()
    found = None
    if active.traits is not None:
        found = traits_at(
            active.traits, [r for _, r, _, _, _ in rows], [a for *_, a in rows],
            horizon_days, thresholds,
        )  # fmt: skip
    columns = None if found is None else _TraitColumns.of(found[0], found[1], horizon_days)
    out = []
    for row, (key, _, vector, segment_id, as_of) in enumerate(rows):
        assert vector is not None  # noqa: S101 - filtered above
        assert segment_id is not None  # noqa: S101
        assert as_of is not None  # noqa: S101
        recency, frequency, monetary = vector
        out.append(
            SegmentAssignment(
                customer_id=key,
                segment_id=segment_id,
                segment_name=active.names[active.index_of[segment_id]],
                model_version=active.version,
                features=RfmFeatures(
                    recency_days=recency, frequency=int(frequency), monetary=monetary
                ),
                as_of=as_of,
                membership=dict(zip(active.membership_keys, scores[row], strict=True)),
                confidence=margins[row],
                holdout=holdout.is_holdout(key, segment_id),
                traits=None if columns is None else columns.row(row),
            )
        )
    return out
