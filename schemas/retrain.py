"""The retrain request: drift evidence raised by a worker."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from schemas._base import Contract, Identifier, NonNegativeFloat, UtcDatetime

RETRAIN_REQUEST_SCHEMA_VERSION: Final = 1


class DriftEvidence(Contract):
    """The figures that crossed a threshold, and the thresholds themselves."""

    triggers: Annotated[tuple[str, ...], Field(min_length=1)]
    feature_psi: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    feature_ks: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    centroid_drift: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    detector_alarms: Annotated[int, Field(ge=0)] = 0
    thresholds: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    scored_customers: Annotated[int, Field(ge=0)] = 0


class RetrainRequest(Contract):
    """Value on ``retrain-requests``."""

    schema_version: Literal[1] = RETRAIN_REQUEST_SCHEMA_VERSION
    request_id: Identifier
    model_version: Annotated[int, Field(ge=1)]
    raised_at: UtcDatetime
    raised_by: Identifier
    evidence: DriftEvidence


DEFAULT_RETRAIN_GROUP: Final = "segment-rescorer-retrain"
"""Consumer group under which `rescorer retrain` commits the requests it has handled."""
