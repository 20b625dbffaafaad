"""The segment model artifact: versioned JSON, never pickle.

A worker loads it from the ``segment-models`` topic or the model directory, so
everything it needs to score a customer is data validated here: shapes,
finiteness, feature names.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import Annotated, Final, Literal

from pydantic import Field, ValidationError, model_validator

from schemas._base import Contract, UtcDatetime
from schemas.segments import FEATURE_NAMES, FeatureName
from schemas.signing import SignatureRejected, sign_document, verify_document
from schemas.traits import PurchaseModel, SegmentTraits

SEGMENT_MODEL_SCHEMA_VERSION: Final = 4
"""2 added `membership` (the calibration) and profiles' `boundary_share`; 3 the predictive,
cross-validation, sensitivity and variable checks of `ValidationMetrics`; 4 `traits` (the
predictive model, `schemas.traits`). 1 to 3 load, without traits."""
MAX_MODEL_BYTES = 4 * 1024 * 1024
"""Artifacts above this size are refused before parsing (a real one is a few tens of KiB)."""
MAX_SEGMENTS = 32

Transform = Literal["identity", "log1p"]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def _default_transforms() -> dict[FeatureName, Transform]:
    return {"recency_days": "identity", "frequency": "log1p", "monetary": "log1p"}


def _unit_weights() -> dict[FeatureName, float]:
    return dict.fromkeys(FEATURE_NAMES, 1.0)


class FeatureDefinition(Contract):
    """How raw RFM features are computed and transformed before scaling."""

    names: tuple[FeatureName, ...] = FEATURE_NAMES
    window_days: Annotated[int, Field(ge=1, le=3660)] = 365
    transforms: dict[FeatureName, Transform] = Field(default_factory=_default_transforms)
    weights: dict[FeatureName, Annotated[float, Field(gt=0.0, le=100.0)]] = Field(
        default_factory=_unit_weights
    )
    """Multiplies each standardised coordinate: a feature of weight 2 counts twice as much
    in every distance (training, the worker and replay alike)."""
    definition: str = (
        "As of T with window W days, per customer with a purchase at or before T: "
        "recency_days = (T - last purchase at or before T) in days; frequency = purchases "
        "whose UTC date lies in [date(T)-W+1, date(T)]; monetary = purchase minus refund "
        "amounts over the same dates, floored at 0. Events after T are ignored, sessions "
        "do not count, a duplicated event_id counts once."
    )

    @model_validator(mode="after")
    def _complete(self) -> FeatureDefinition:
        if self.names != FEATURE_NAMES:
            raise ValueError(f"feature names must be exactly {list(FEATURE_NAMES)}")
        if set(self.transforms) != set(FEATURE_NAMES):
            raise ValueError("transforms must name every feature exactly once")
        if set(self.weights) != set(FEATURE_NAMES):
            raise ValueError("weights must name every feature exactly once")
        return self


class Scaler(Contract):
    """Standardisation applied after the transforms: z = (x - mean) / scale."""

    mean: tuple[FiniteFloat, ...]
    scale: tuple[Annotated[float, Field(gt=0.0, allow_inf_nan=False)], ...]


class SegmentProfile(Contract):
    """What a segment looks like, in raw feature units."""

    size: Annotated[int, Field(ge=0)]
    share: Annotated[float, Field(ge=0.0, le=1.0)]
    mean: dict[FeatureName, FiniteFloat]
    median: dict[FeatureName, FiniteFloat]
    average_order_value: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    revenue_share: Annotated[float, Field(ge=0.0, le=1.0)]
    zscores: dict[FeatureName, FiniteFloat]
    description: str = ""
    boundary_share: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    """Share of members near a boundary (confidence below 0.1): edge cases."""
    refund_rate: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    channel_mix: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=dict)
    values: str = ""
    """What they value: where the centroid stands out most (`offline.action_cards`)."""
    interacts: str = ""
    lever: str = ""
    """Which lever fits, from the documented rule table."""
    traits: SegmentTraits | None = None
    """Its members' predictive traits (schema 4, when the artifact has a predictive model)."""


class Segment(Contract):
    """One segment: stable id, human name, centroid in the scaled space."""

    segment_id: Annotated[int, Field(ge=0)]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    centroid: tuple[FiniteFloat, ...]
    profile: SegmentProfile | None = None


class ReferenceDistribution(Contract):
    """A feature's training distribution, binned, for drift statistics."""

    bin_edges: tuple[FiniteFloat, ...]
    proportions: tuple[Annotated[float, Field(ge=0.0, le=1.0)], ...]

    @model_validator(mode="after")
    def _consistent(self) -> ReferenceDistribution:
        edges = self.bin_edges
        if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("bin_edges must hold at least two strictly increasing values")
        if len(self.proportions) != len(edges) - 1:
            raise ValueError("proportions must have one entry per bin (len(bin_edges) - 1)")
        if not math.isclose(sum(self.proportions), 1.0, abs_tol=1e-6):
            raise ValueError("proportions must sum to 1")
        return self


class MembershipCalibration(Contract):
    """How soft membership is computed: ``softmax(-d**2 / temperature)`` (`scoring.membership`).

    The trainer fits the temperature so that the top score matches, across the
    training customers, the share of bootstrap refits that kept each customer
    in its segment; ``calibration_error`` is the mean absolute gap left.
    """

    temperature: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    method: Literal["bootstrap_kept_share"] = "bootstrap_kept_share"
    calibration_error: Annotated[float, Field(ge=0.0, le=1.0)]
    customers: Annotated[int, Field(ge=0)]


DEFAULT_TEMPERATURE: Final = 1.0
"""Temperature for artifacts trained before calibration was recorded (schema 1)."""


CORRELATION_WARNING: Final = 0.8
"""Feature correlations above this (in absolute value) are flagged: they weigh the same
behaviour twice (`ValidationMetrics.feature_correlation`)."""
UNSTABLE_JACCARD: Final = 0.6
"""Bootstrap Jaccard below which a segment is transitional (`unstable_segments`)."""
UNSTABLE_RETENTION: Final = 0.5
"""Holdout retention below which a segment is transitional (`unstable_segments`)."""


class ValidationMetrics(Contract):
    """Figures the trainer measured; absent ones were not computed."""

    silhouette: FiniteFloat | None = None
    davies_bouldin: FiniteFloat | None = None
    calinski_harabasz: FiniteFloat | None = None
    bootstrap_ari: FiniteFloat | None = None
    segment_jaccard: dict[str, FiniteFloat] = Field(default_factory=dict)
    holdout_ari: FiniteFloat | None = None
    holdout_changed_share: FiniteFloat | None = None
    kpi_pvalues: dict[str, FiniteFloat] = Field(default_factory=dict)
    k_selection: dict[str, FiniteFloat] = Field(default_factory=dict)
    predictive: dict[str, FiniteFloat] = Field(default_factory=dict)
    """Segments fitted at T-H against (T-H, T]: ``segment_auc`` / ``rfm_auc`` for "purchased
    again", ``segment_spend_r2`` / ``rfm_spend_r2`` for log spend, ``purchase_rate``."""
    churn_by_segment: dict[str, FiniteFloat] = Field(default_factory=dict)
    """Per segment of the T-H fit (today's ids): share that did not purchase in the window."""
    holdout_retention: dict[str, FiniteFloat] = Field(default_factory=dict)
    """Per segment: share of its customers known at T-H that the T-H fit put there too."""
    cv_ari_mean: FiniteFloat | None = None
    cv_ari_std: FiniteFloat | None = None
    sensitivity: dict[str, FiniteFloat] = Field(default_factory=dict)
    """Share of customers whose segment changes under each input perturbation."""
    fragile: bool | None = None
    feature_correlation: dict[str, FiniteFloat] = Field(default_factory=dict)
    unstable_segments: tuple[str, ...] = ()
    """Segment ids with bootstrap Jaccard below `UNSTABLE_JACCARD` or holdout retention
    below `UNSTABLE_RETENTION`."""
    algorithms: dict[str, dict[str, FiniteFloat]] = Field(default_factory=dict)
    """k-means, GaussianMixture and Ward at the chosen k on one sample (`offline.algorithms`)."""
    algorithm_choice: str = ""
    migration_from_previous: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Today's customers by (segment under the previous model, segment under this one)."""


class ModelSignature(Contract):
    """Who vouches for an artifact: see `schemas.signing`."""

    algorithm: Literal["HMAC-SHA256"] = "HMAC-SHA256"
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    value: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class SegmentModel(Contract):
    """A trained, validated, named set of segments (see `load_segment_model`)."""

    schema_version: Literal[1, 2, 3, 4] = SEGMENT_MODEL_SCHEMA_VERSION
    version: Annotated[int, Field(ge=1)]
    created_at: UtcDatetime
    as_of: UtcDatetime
    training_start: UtcDatetime
    training_end: UtcDatetime
    n_customers: Annotated[int, Field(ge=1)]
    n_events: Annotated[int, Field(ge=0)]
    features: FeatureDefinition = Field(default_factory=FeatureDefinition)
    scaler: Scaler
    segments: Annotated[tuple[Segment, ...], Field(min_length=2, max_length=MAX_SEGMENTS)]
    reference: dict[FeatureName, ReferenceDistribution]
    validation: ValidationMetrics = Field(default_factory=ValidationMetrics)
    parameters: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    membership: MembershipCalibration | None = None
    traits: PurchaseModel | None = None
    """The predictive model for live traits; None before schema 4 or without one."""
    package_version: Annotated[str, Field(min_length=1, max_length=64)]
    signature: ModelSignature | None = None
    """HMAC over the rest of the artifact (`schemas.signing`); None when unsigned."""

    @model_validator(mode="after")
    def _shapes(self) -> SegmentModel:
        dims = len(self.features.names)
        if len(self.scaler.mean) != dims or len(self.scaler.scale) != dims:
            raise ValueError(f"scaler must have {dims} means and {dims} scales")
        for segment in self.segments:
            if len(segment.centroid) != dims:
                raise ValueError(
                    f"segment {segment.segment_id} centroid has {len(segment.centroid)} "
                    f"dimensions, expected {dims}"
                )
        ids = [s.segment_id for s in self.segments]
        if len(set(ids)) != len(ids):
            raise ValueError("segment ids must be unique")
        names = [s.name for s in self.segments]
        if len(set(names)) != len(names):
            raise ValueError("segment names must be unique")
        if set(self.reference) != set(self.features.names):
            raise ValueError("reference distributions must cover every feature")
        if self.training_start > self.training_end:
            raise ValueError("training_start is after training_end")
        return self

    @property
    def temperature(self) -> float:
        """The membership temperature (`DEFAULT_TEMPERATURE` for schema-1 artifacts)."""
        return self.membership.temperature if self.membership else DEFAULT_TEMPERATURE

    def segment(self, segment_id: int) -> Segment:
        """The segment with this id; `KeyError` if the model has none."""
        for candidate in self.segments:
            if candidate.segment_id == segment_id:
                return candidate
        raise KeyError(segment_id)


RejectionReason = Literal["invalid", "unsigned", "unknown_key", "bad_signature"]


class ModelRejected(ValueError):
    """An artifact that must not become the active model, with the reason.

    `reason` names the kind (a metric label): ``invalid`` for anything that is
    not a valid artifact, else why its signature was refused.
    """

    def __init__(self, message: str, reason: RejectionReason = "invalid") -> None:
        super().__init__(message)
        self.reason: RejectionReason = reason


def load_segment_model(data: bytes | str, verify_keys: Sequence[bytes] = ()) -> SegmentModel:
    """Validate an artifact from untrusted bytes (a topic, a file).

    Raises `ModelRejected` with a one-line reason for oversized, non-JSON
    (for example pickled) or invalid artifacts, and, when `verify_keys` are
    given, for artifacts not signed by one of them (checked before the content
    is trusted any further).
    """
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_MODEL_BYTES:
        raise ModelRejected(
            f"model artifact is {len(raw)} bytes, above the {MAX_MODEL_BYTES} limit"
        )
    if raw[:1] == b"\x80":
        raise ModelRejected("model artifact is a pickle; only JSON artifacts are accepted")
    if verify_keys:
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise ModelRejected(f"model artifact is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ModelRejected("model artifact is not a JSON object")
        try:
            verify_document(document, verify_keys)
        except SignatureRejected as exc:
            raise ModelRejected(str(exc), exc.reason) from exc
    try:
        return SegmentModel.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "artifact"
        raise ModelRejected(
            f"invalid model artifact ({exc.error_count()} errors), first at {where}: {first['msg']}"
        ) from exc


def sign_model(model: SegmentModel, key: bytes) -> SegmentModel:
    """`model` signed with `key` (any previous signature replaced)."""
    document = json.loads(model.model_dump_json(exclude={"signature"}))
    return model.model_copy(update={"signature": ModelSignature(**sign_document(document, key))})
