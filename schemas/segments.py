"""Output contracts: segment changes and the current segment of each customer."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field

from schemas._base import Contract, Identifier, NonNegativeFloat, UtcDatetime

SEGMENT_SCHEMA_VERSION: Final = 2
"""2 added `membership`, `confidence`, `holdout` and `previous_segment_name`."""
ASSIGNMENT_SCHEMA_VERSION: Final = 3
"""3 added `traits` to assignments (2 still validates: traits absent)."""

FeatureName = Literal["recency_days", "frequency", "monetary"]
FEATURE_NAMES: tuple[FeatureName, FeatureName, FeatureName] = (
    "recency_days",
    "frequency",
    "monetary",
)
"""The RFM features, in the order every vector in the project uses."""


class RfmFeatures(Contract):
    """Recency (days since the last purchase), frequency and monetary value.

    See the README's "Feature definition" for the exact contract shared by the
    offline trainer and the stream processor.
    """

    recency_days: NonNegativeFloat
    frequency: Annotated[int, Field(ge=0)]
    monetary: NonNegativeFloat


class ChangeReason(StrEnum):
    """Why a customer's segment was re-evaluated."""

    EVENT = "event"
    RECENCY = "recency"
    MODEL_UPDATE = "model_update"


SegmentId = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


def _sums_to_one(scores: dict[str, float]) -> dict[str, float]:
    if scores and abs(sum(scores.values()) - 1.0) > 1e-3:
        raise ValueError(f"membership scores must sum to 1, not {sum(scores.values()):.4f}")
    return scores


Membership = Annotated[dict[str, Share], AfterValidator(_sums_to_one)]
"""Soft membership: segment id (as a JSON object key) -> score; the scores sum to 1."""


class SegmentChange(Contract):
    """Value on ``segment-changes`` (key ``customer_id``): one actual move."""

    schema_version: Literal[2] = SEGMENT_SCHEMA_VERSION
    customer_id: Identifier
    previous_segment_id: SegmentId | None
    previous_segment_name: str | None
    """The name the previous segment had, so a consumer needs no model to read an exit."""
    segment_id: SegmentId
    segment_name: Annotated[str, Field(min_length=1)]
    model_version: Annotated[int, Field(ge=1)]
    reason: ChangeReason
    membership: Membership
    """Soft membership over the model's segments (`scoring.membership`)."""
    confidence: Share
    """Relative margin between the nearest and second-nearest centroid (0: on a boundary)."""
    holdout: bool
    """In the control group: downstream actions should leave this customer out."""
    features: RfmFeatures | None = None
    """The features scored; absent where `RESCORER_CHANGES_INCLUDE_FEATURES=false`."""
    as_of: UtcDatetime
    emitted_at: UtcDatetime
    trigger_event_id: Identifier | None = None


class RiskBand(StrEnum):
    """Churn-risk bands, least to most at risk (thresholds: the worker's settings)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class CustomerTraits(Contract):
    """A customer's predictive traits at `as_of` (BG/NBD and Gamma-Gamma; README "Traits")."""

    p_alive: Share
    """Probability that the customer has not dropped out."""
    expected_purchases: NonNegativeFloat
    """Purchase days expected over the next `horizon_days`."""
    expected_value: NonNegativeFloat | None
    """Those times the expected spend per purchase, in the event currency (None: the model
    has no spend part)."""
    churn_risk: Annotated[float, Field(ge=0.0, le=100.0)]
    """0-100: the percentile of 1 - p_alive within the training population."""
    band: RiskBand
    horizon_days: Annotated[float, Field(gt=0.0)]


class SegmentAssignment(Contract):
    """Value on the compacted ``customer-segments`` topic: a customer's current segment."""

    schema_version: Literal[2, 3] = ASSIGNMENT_SCHEMA_VERSION
    customer_id: Identifier
    segment_id: SegmentId
    segment_name: Annotated[str, Field(min_length=1)]
    model_version: Annotated[int, Field(ge=1)]
    features: RfmFeatures
    as_of: UtcDatetime
    membership: Membership
    confidence: Share
    holdout: bool
    traits: CustomerTraits | None = None
    """Predictive traits (absent when the active model has no predictive model)."""


class RiskBandChange(Contract):
    """Value on ``risk-band-changes`` (key ``customer_id``): a customer's churn-risk band moved.

    Sent with the same ordering and guarantees as segment changes: per customer,
    in the order they happened, on the partition of its key.
    """

    schema_version: Literal[1] = 1
    customer_id: Identifier
    previous_band: RiskBand | None
    """None for the customer's first band (first purchase, or first model with traits)."""
    band: RiskBand
    churn_risk: Annotated[float, Field(ge=0.0, le=100.0)]
    p_alive: Share
    segment_id: SegmentId
    segment_name: Annotated[str, Field(min_length=1)]
    """The segment the customer is in at `as_of` ("a Champion became High risk")."""
    model_version: Annotated[int, Field(ge=1)]
    reason: ChangeReason
    """event: its own purchase; recency: time alone (silence); model_update: a new model."""
    holdout: bool
    as_of: UtcDatetime
    emitted_at: UtcDatetime
    trigger_event_id: Identifier | None = None
