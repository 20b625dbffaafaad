"""Output contracts: segment changes and the current segment of each customer."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field

from schemas._base import Contract, Identifier, NonNegativeFloat, UtcDatetime

SEGMENT_SCHEMA_VERSION: Final = 1

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

    def as_vector(self) -> tuple[float, float, float]:
        """The features in `FEATURE_NAMES` order."""
        return (self.recency_days, float(self.frequency), self.monetary)


class ChangeReason(StrEnum):
    """Why a customer's segment was re-evaluated."""

    EVENT = "event"
    RECENCY = "recency"
    MODEL_UPDATE = "model_update"


SegmentId = Annotated[int, Field(ge=0)]


class SegmentChange(Contract):
    """Value on ``segment-changes`` (key ``customer_id``): one actual move."""

    schema_version: Literal[1] = SEGMENT_SCHEMA_VERSION
    customer_id: Identifier
    previous_segment_id: SegmentId | None
    segment_id: SegmentId
    segment_name: Annotated[str, Field(min_length=1)]
    model_version: Annotated[int, Field(ge=1)]
    reason: ChangeReason
    features: RfmFeatures | None = None
    """The features scored; absent where `RESCORER_CHANGES_INCLUDE_FEATURES=false`."""
    as_of: UtcDatetime
    emitted_at: UtcDatetime
    trigger_event_id: Identifier | None = None


class SegmentAssignment(Contract):
    """Value on the compacted ``customer-segments`` topic: a customer's current segment."""

    schema_version: Literal[1] = SEGMENT_SCHEMA_VERSION
    customer_id: Identifier
    segment_id: SegmentId
    segment_name: Annotated[str, Field(min_length=1)]
    model_version: Annotated[int, Field(ge=1)]
    features: RfmFeatures
    as_of: UtcDatetime
