"""Message and artifact contracts of segment-rescorer (depends on nothing of ours)."""

from __future__ import annotations

from schemas.dead_letter import DeadLetter
from schemas.events import CustomerEvent, EventType
from schemas.model import ModelRejected, SegmentModel, load_segment_model
from schemas.retrain import DriftEvidence, RetrainRequest
from schemas.segments import (
    FEATURE_NAMES,
    ChangeReason,
    RfmFeatures,
    SegmentAssignment,
    SegmentChange,
)

__all__ = [
    "FEATURE_NAMES",
    "ChangeReason",
    "CustomerEvent",
    "DeadLetter",
    "DriftEvidence",
    "EventType",
    "ModelRejected",
    "RetrainRequest",
    "RfmFeatures",
    "SegmentAssignment",
    "SegmentChange",
    "SegmentModel",
    "load_segment_model",
]
