"""Output contracts, the model artifact and the retrain request."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    ChangeReason,
    DeadLetter,
    ModelRejected,
    RetrainRequest,
    RfmFeatures,
    SegmentAssignment,
    SegmentChange,
    SegmentModel,
    load_segment_model,
)
from schemas.model import MAX_MODEL_BYTES

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
FEATURES = RfmFeatures(recency_days=3.5, frequency=4, monetary=120.0)
SOFT = {"membership": {"2": 0.7, "1": 0.2, "0": 0.1}, "confidence": 0.4, "holdout": False}


def test_segment_change_round_trip() -> None:
    change = SegmentChange(
        customer_id="c1",
        previous_segment_id=None,
        previous_segment_name=None,
        segment_id=2,
        segment_name="Champions",
        model_version=1,
        reason=ChangeReason.EVENT,
        features=FEATURES,
        as_of=NOW,
        emitted_at=NOW,
        trigger_event_id="e9",
        **SOFT,
    )
    assert SegmentChange.model_validate_json(change.model_dump_json()) == change
    assert json.loads(change.model_dump_json())["reason"] == "event"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reason": "whim"}, "'event', 'recency' or 'model_update'"),
        ({"segment_id": -1}, "greater than or equal to 0"),
        ({"model_version": 0}, "greater than or equal to 1"),
        ({"features": {"recency_days": -1, "frequency": 1, "monetary": 1}}, "greater than"),
        ({"features": {"recency_days": 1, "frequency": 1}}, "Field required"),
        ({"as_of": "2024-06-01T12:00:00"}, "timezone"),
        ({"unexpected": 1}, "Extra inputs are not permitted"),
        ({"membership": {"2": 1.5}}, "less than or equal to 1"),
        ({"membership": {"2": 0.5, "1": 0.2}}, "sum to 1"),
        ({"confidence": 1.2}, "less than or equal to 1"),
        ({"holdout": "maybe"}, "valid boolean"),
    ],
)
def test_segment_change_rejections(changes: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = {
        "customer_id": "c1",
        "previous_segment_id": 1,
        "previous_segment_name": "At Risk",
        "segment_id": 2,
        "segment_name": "Loyal",
        "model_version": 1,
        "reason": "recency",
        **SOFT,
        "features": FEATURES.model_dump(),
        "as_of": NOW.isoformat(),
        "emitted_at": NOW.isoformat(),
        "trigger_event_id": None,
    }
    data.update(changes)
    with pytest.raises(ValidationError, match=message):
        SegmentChange.model_validate(data)


def test_segment_assignment_round_trip() -> None:
    assignment = SegmentAssignment(
        customer_id="c1",
        segment_id=0,
        segment_name="Lost",
        model_version=3,
        features=FEATURES,
        as_of=NOW,
        **SOFT,
    )
    assert SegmentAssignment.model_validate_json(assignment.model_dump_json()) == assignment


def test_dead_letter_keeps_arbitrary_bytes() -> None:
    payload = bytes(range(256))
    letter = DeadLetter(
        payload=payload,
        key=b"\xff",
        error="not JSON",
        error_type="json",
        topic="customer-events",
        partition=3,
        offset=17,
        received_at=NOW,
    )
    back = DeadLetter.model_validate_json(letter.model_dump_json())
    assert back.payload == payload
    assert back.key == b"\xff"


def test_retrain_request_round_trip_and_needs_a_trigger() -> None:
    request = RetrainRequest.model_validate(
        {
            "request_id": "r1",
            "model_version": 2,
            "raised_at": NOW.isoformat(),
            "raised_by": "worker-1",
            "evidence": {"triggers": ["psi:monetary"], "feature_psi": {"monetary": 0.31}},
        }
    )
    assert RetrainRequest.model_validate_json(request.model_dump_json()) == request
    with pytest.raises(ValidationError, match="at least 1 item"):
        RetrainRequest.model_validate({**request.model_dump(), "evidence": {"triggers": []}})


def model_dict(**changes: Any) -> dict[str, Any]:
    reference = {"bin_edges": [0.0, 1.0, 2.0], "proportions": [0.5, 0.5]}
    data: dict[str, Any] = {
        "version": 1,
        "created_at": NOW.isoformat(),
        "as_of": NOW.isoformat(),
        "training_start": "2023-06-01T00:00:00Z",
        "training_end": NOW.isoformat(),
        "n_customers": 100,
        "n_events": 2000,
        "scaler": {"mean": [1.0, 2.0, 3.0], "scale": [1.0, 1.0, 1.0]},
        "segments": [
            {"segment_id": 0, "name": "Champions", "centroid": [1.0, 1.0, 1.0]},
            {"segment_id": 1, "name": "Lost", "centroid": [-1.0, -1.0, -1.0]},
        ],
        "reference": dict.fromkeys(("recency_days", "frequency", "monetary"), reference),
        "package_version": "0.1.0",
    }
    data.update(changes)
    return data


def test_model_loads_from_valid_json() -> None:
    model = load_segment_model(json.dumps(model_dict()))
    assert isinstance(model, SegmentModel)
    assert model.segment(1).name == "Lost"
    assert model.features.transforms["monetary"] == "log1p"
    with pytest.raises(KeyError):
        model.segment(7)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scaler": {"mean": [1.0, 2.0], "scale": [1.0, 1.0]}}, "3 means and 3 scales"),
        ({"scaler": {"mean": [1.0, 2.0, 3.0], "scale": [1.0, 0.0, 1.0]}}, "greater than 0"),
        (
            {
                "segments": [
                    {"segment_id": 0, "name": "A", "centroid": [1.0, 1.0]},
                    {"segment_id": 1, "name": "B", "centroid": [1.0, 1.0]},
                ]
            },
            "dimensions",
        ),
        (
            {
                "segments": [
                    {"segment_id": 0, "name": "A", "centroid": [1.0, 1.0, 1.0]},
                    {"segment_id": 0, "name": "B", "centroid": [1.0, 1.0, 1.0]},
                ]
            },
            "ids",
        ),
        (
            {
                "segments": [
                    {"segment_id": 0, "name": "A", "centroid": [1.0, 1.0, 1.0]},
                    {"segment_id": 1, "name": "A", "centroid": [1.0, 1.0, 1.0]},
                ]
            },
            "names",
        ),
        (
            {"segments": [{"segment_id": 0, "name": "A", "centroid": [1.0, 1.0, 1.0]}]},
            "at least 2 items",
        ),
        ({"features": {"names": ["recency_days", "frequency", "clicks"]}}, "Input should be"),
        ({"reference": {}}, "cover every feature"),
        ({"version": 0}, "greater than or equal to 1"),
    ],
)
def test_model_rejections(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelRejected, match=message):
        load_segment_model(json.dumps(model_dict(**changes)))


def test_model_rejects_nan_centroid() -> None:
    raw = json.dumps(model_dict()).replace("[1.0, 1.0, 1.0]", "[NaN, 1.0, 1.0]", 1)
    with pytest.raises(ModelRejected):
        load_segment_model(raw)


def test_model_rejects_pickle_and_oversized_payloads() -> None:
    with pytest.raises(ModelRejected, match="pickle"):
        load_segment_model(pickle.dumps(model_dict()))
    with pytest.raises(ModelRejected, match="limit"):
        load_segment_model(b" " * (MAX_MODEL_BYTES + 1))


@pytest.mark.parametrize(
    ("edges", "proportions", "message"),
    [
        ([0.0], [], "at least two"),
        ([0.0, 0.0, 1.0], [0.5, 0.5], "strictly increasing"),
        ([0.0, 1.0, 2.0], [1.0], "one entry per bin"),
        ([0.0, 1.0, 2.0], [0.2, 0.2], "sum to 1"),
    ],
)
def test_reference_distribution_rejections(
    edges: list[float], proportions: list[float], message: str
) -> None:
    bad = {"bin_edges": edges, "proportions": proportions}
    data = model_dict()
    data["reference"] = {**data["reference"], "monetary": bad}
    with pytest.raises(ModelRejected, match=message):
        load_segment_model(json.dumps(data))


def test_trusted_construction_equals_validation_for_the_hot_path_contracts() -> None:
    from schemas._base import trusted
    from schemas.segments import ChangeReason, RfmFeatures, SegmentAssignment, SegmentChange

    at = datetime(2024, 3, 1, 12, tzinfo=UTC)
    features = {"recency_days": 2.5, "frequency": 3, "monetary": 99.5}
    fast = trusted(RfmFeatures, **features)
    assert fast == RfmFeatures.model_validate(features)
    assignment = {"customer_id": "c1", "segment_id": 2, "segment_name": "Loyal",
                  "model_version": 4, "features": fast, "as_of": at, **SOFT}  # fmt: skip
    built = trusted(SegmentAssignment, **assignment)
    checked = SegmentAssignment.model_validate(assignment)
    assert built == checked and built.model_dump_json() == checked.model_dump_json()
    change = {**assignment, "previous_segment_id": None, "previous_segment_name": None,
              "reason": ChangeReason.EVENT,
              "emitted_at": at, "trigger_event_id": "e9"}  # fmt: skip
    built_change = trusted(SegmentChange, **change)
    assert built_change.model_dump_json() == SegmentChange.model_validate(change).model_dump_json()
    with pytest.raises(TypeError, match=r"missing \['customer_id'\]"):
        trusted(SegmentAssignment, **{k: v for k, v in assignment.items() if k != "customer_id"})
    # Values given in any order come out in the declared one; an unknown name is refused.
    backwards = trusted(RfmFeatures, **dict(reversed(features.items())))
    assert backwards.model_dump_json() == RfmFeatures.model_validate(features).model_dump_json()
    with pytest.raises(TypeError, match=r"missing \[\], unknown \['bogus'\]"):
        trusted(RfmFeatures, **features, bogus=1)


def test_json_bytes_are_the_model_dump_json_bytes_with_and_without_exclusions() -> None:
    from schemas._base import json_bytes
    from schemas.segments import ChangeReason, RfmFeatures, SegmentChange

    at = datetime(2024, 3, 1, 12, tzinfo=UTC)
    change = SegmentChange(
        customer_id="c1", previous_segment_id=1, previous_segment_name="New", segment_id=2,
        segment_name="Loyal", model_version=4, reason=ChangeReason.EVENT, as_of=at,
        emitted_at=at, trigger_event_id="e9",
        features=RfmFeatures(recency_days=2.5, frequency=3, monetary=99.5), **SOFT,
    )  # fmt: skip
    assert json_bytes(change) == change.model_dump_json().encode()
    lean = json_bytes(change, exclude={"features"})
    assert lean == change.model_dump_json(exclude={"features"}).encode()
    assert b'"features"' not in lean and b'"features"' in json_bytes(change)
