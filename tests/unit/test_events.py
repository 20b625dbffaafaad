"""The input contract: round trips and one test per rejection rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import CustomerEvent, EventType

VALID: dict[str, Any] = {
    "event_id": "e-1",
    "customer_id": "c-1",
    "type": "purchase",
    "occurred_at": "2024-05-01T10:00:00+02:00",
    "amount": 42.5,
    "currency": "EUR",
    "channel": "web",
}


def event(**changes: Any) -> dict[str, Any]:
    data = dict(VALID)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_round_trip_through_json() -> None:
    parsed = CustomerEvent.model_validate_json(json.dumps(VALID))
    assert CustomerEvent.model_validate_json(parsed.model_dump_json()) == parsed
    assert parsed.occurred_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert parsed.type is EventType.PURCHASE
    assert parsed.schema_version == 1


def test_session_without_amount_and_optional_fields_absent() -> None:
    parsed = CustomerEvent.model_validate(
        event(type="session", amount=..., currency=..., channel=...)
    )
    assert parsed.amount is None
    assert parsed.currency is None
    assert parsed.channel is None


def test_refund_with_amount_is_valid() -> None:
    assert CustomerEvent.model_validate(event(type="refund", amount=5)).amount == 5.0


def test_unknown_fields_are_ignored() -> None:
    parsed = CustomerEvent.model_validate(event(coupon="X", nested={"a": 1}))
    assert "coupon" not in parsed.model_dump()


def test_instances_are_frozen() -> None:
    parsed = CustomerEvent.model_validate(VALID)
    with pytest.raises(ValidationError):
        parsed.amount = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event_id": ""}, "at least 1 character"),
        ({"event_id": "x" * 129}, "at most 128 characters"),
        ({"event_id": ...}, "Field required"),
        ({"event_id": 17}, "Input should be a valid string"),
        ({"customer_id": ""}, "at least 1 character"),
        ({"customer_id": "c" * 129}, "at most 128 characters"),
        ({"customer_id": ...}, "Field required"),
        ({"type": "click"}, "'purchase', 'refund' or 'session'"),
        ({"type": ...}, "Field required"),
        ({"occurred_at": "2024-05-01T10:00:00"}, "timezone"),
        ({"occurred_at": "yesterday"}, "valid datetime"),
        ({"occurred_at": 1714550400}, "ISO-8601 string"),
        ({"occurred_at": ...}, "Field required"),
        ({"amount": ...}, "amount is required for a purchase"),
        ({"type": "refund", "amount": None}, "amount is required for a refund"),
        ({"amount": 0}, "greater than 0"),
        ({"amount": -3.0}, "greater than 0"),
        ({"amount": float("nan")}, "finite number"),
        ({"amount": float("inf")}, "finite number"),
        ({"amount": "12.50"}, "valid number"),
        ({"amount": True}, "valid number"),
        ({"type": "session", "amount": 3.0}, "session event carries no amount"),
        ({"currency": "eur"}, "should match pattern"),
        ({"currency": "EURO"}, "should match pattern"),
        ({"channel": "x" * 65}, "at most 64 characters"),
        ({"schema_version": 2}, "Input should be 1"),
    ],
)
def test_rejection_rules(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CustomerEvent.model_validate(event(**changes))


def test_rejects_non_finite_amount_in_json() -> None:
    raw = json.dumps(event()).replace("42.5", "NaN")
    with pytest.raises(ValidationError):
        CustomerEvent.model_validate_json(raw)
