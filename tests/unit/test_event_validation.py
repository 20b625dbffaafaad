"""The column-wise validation and the `CustomerEvent` contract apply one rule table."""

from __future__ import annotations

import json

import polars as pl
import pytest
from pydantic import ValidationError

from offline.event_files import RAW_SCHEMA, raw_row
from offline.event_validation import checked, validate
from schemas.events import RULES, CustomerEvent

GOOD = {
    "event_id": "e1", "customer_id": "c1", "type": "purchase",
    "occurred_at": "2024-03-01T12:00:00+00:00", "amount": 10.0,
    "currency": "EUR", "channel": "web",
}  # fmt: skip

BREAKS: dict[str, dict[str, object]] = {
    "event_id_missing": {"event_id": ""},
    "event_id_too_long": {"event_id": "e" * 129},
    "customer_id_missing": {"customer_id": None},
    "customer_id_too_long": {"customer_id": "c" * 129},
    "type_unknown": {"type": "visit"},
    "occurred_at_missing": {"occurred_at": None},
    "occurred_at_naive": {"occurred_at": "2024-03-01T12:00:00"},
    "occurred_at_not_iso": {"occurred_at": "2024-13-45T12:00:00Z"},
    "amount_required": {"amount": None},
    "amount_not_positive": {"amount": -3.0},
    "session_with_amount": {"type": "session"},
    "currency_not_code": {"currency": "euro"},
    "channel_too_long": {"channel": "x" * 65},
}


def test_every_rule_has_a_breaking_example() -> None:
    assert set(BREAKS) == set(RULES)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_row_breaking_a_rule_is_refused_by_both_with_the_table_message(rule: str) -> None:
    row = {**GOOD, **BREAKS[rule]}
    with pytest.raises(ValidationError):
        CustomerEvent.model_validate_json(
            json.dumps({k: v for k, v in row.items() if v is not None})
        )
    valid, rejected = validate(pl.DataFrame([raw_row(row)], schema=RAW_SCHEMA))
    assert valid.height == 0
    assert rejected["reason"].to_list() == [RULES[rule]]


def test_the_good_row_passes_both() -> None:
    CustomerEvent.model_validate_json(json.dumps(GOOD))
    valid, rejected = validate(pl.DataFrame([raw_row(GOOD)], schema=RAW_SCHEMA))
    assert (valid.height, rejected.height) == (1, 0)


NOON = "2024-03-01 12:00:00+00:00"
TIMESTAMPS = [
    # (text, the instant it is in UTC, or the rule it breaks)
    ("2024-03-01T12:00:00.000000Z", NOON),  # the contract's own form: the strict pass
    ("2024-03-01T12:00:00Z", NOON),
    ("2024-03-01T12:00:00.5Z", "2024-03-01 12:00:00.500000+00:00"),
    ("2024-03-01T12:00:00.123456789Z", "2024-03-01 12:00:00.123456+00:00"),
    (" 2024-03-01T12:00:00Z ", NOON),  # the lenient pass from here on
    ("2024-03-01 12:00:00z", NOON),
    ("2024-03-01_12:00:00+00:00", NOON),
    ("2024-03-01t14:00:00+02:00", NOON),
    ("2024-03-01T06:30:00-0530", NOON),
    ("2024-03-01 12:00:00 Z", NOON),
    ("2024-03-01T12:00:00", RULES["occurred_at_naive"]),
    ("2024-03-01T12:00:00+00", RULES["occurred_at_not_iso"]),
    ("2024-02-30T12:00:00Z", RULES["occurred_at_not_iso"]),
    ("2024-03-01T24:00:00Z", RULES["occurred_at_not_iso"]),
    ("2024-03-01T12:00Z", RULES["occurred_at_not_iso"]),
    ("2024-03-01T12:00:00ZZ", RULES["occurred_at_not_iso"]),
    ("2024-03-01T12:00:00.Z", RULES["occurred_at_not_iso"]),
]


def test_each_timestamp_form_gives_its_instant_or_its_rule() -> None:
    rows = [raw_row({**GOOD, "event_id": f"e{i}", "occurred_at": text})
            for i, (text, _) in enumerate(TIMESTAMPS)]  # fmt: skip
    rows = checked(pl.DataFrame(rows, schema=RAW_SCHEMA).lazy()).collect()
    found = [
        reason if reason is not None else str(at)
        for at, reason in zip(rows["occurred_at"], rows["reason"], strict=True)
    ]
    assert found == [expected for _, expected in TIMESTAMPS]
