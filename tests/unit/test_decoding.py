"""The decode edge: every input is an event or a dead letter with a reason, never an exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import CustomerEvent
from schemas.dead_letter import DeadLetter
from streams.decoding import (
    MAX_DEAD_LETTER_PAYLOAD,
    MAX_EVENT_BYTES,
    Rejected,
    dead_letter,
    decode_event,
    decode_feedback,
)

GOOD = {
    "event_id": "e1",
    "customer_id": "c1",
    "type": "purchase",
    "occurred_at": "2024-03-01T12:00:00Z",
    "amount": 10.0,
}


def encode(body: object) -> bytes:
    return json.dumps(body).encode()


def test_a_valid_event_decodes() -> None:
    event = decode_event(b"c1", encode(GOOD))
    assert isinstance(event, CustomerEvent)
    assert event.customer_id == "c1"


@pytest.mark.parametrize(
    ("key", "value", "error_type", "words"),
    [
        (b"c1", None, "empty", "no value"),
        (b"c1", b"{broken", "invalid_json", "Invalid JSON"),
        (b"c1", b"\xff\xfe", "invalid_json", "Invalid JSON"),
        (b"c1", b"[1, 2]", "invalid_event", "object"),
        (
            b"c1",
            encode({**GOOD, "occurred_at": "2024-03-01T12:00:00"}),
            "invalid_event",
            "timezone",
        ),
        (b"c1", encode({**GOOD, "amount": -1}), "invalid_event", "amount"),
        (b"c1", encode({**GOOD, "type": "teleport"}), "invalid_event", "type"),
        (b"c1", encode(GOOD).replace(b"10.0", b"NaN"), "invalid_event", "amount"),
        (None, encode(GOOD), "missing_key", "no key"),
        (b"c2", encode(GOOD), "key_mismatch", "differs"),
        (b"c1", b" " * (MAX_EVENT_BYTES + 1), "too_large", "above"),
        (b"c1", b"[" * 5000, "invalid_json", "recursion"),
    ],
)
def test_rejections_name_their_reason(
    key: bytes | None, value: bytes | None, error_type: str, words: str
) -> None:
    outcome = decode_event(key, value)
    assert isinstance(outcome, Rejected)
    assert outcome.error_type == error_type
    assert words in outcome.error
    assert "\n" not in outcome.error


def test_a_dead_letter_keeps_the_bytes_and_truncates_huge_payloads() -> None:
    letter = dead_letter(Rejected("invalid_json", "bad"), b"k", b"\x00raw", "events", 3, 42)
    again = DeadLetter.model_validate_json(letter.model_dump_json())
    assert again.payload == b"\x00raw" and again.key == b"k" and again.offset == 42
    huge = b"x" * (MAX_DEAD_LETTER_PAYLOAD * 4)
    letter = dead_letter(Rejected("too_large", "big"), b"k", huge, "events", 0, 0)
    assert len(letter.payload) == MAX_DEAD_LETTER_PAYLOAD
    assert "truncated" in letter.error
    assert len(letter.model_dump_json()) < 1_000_000  # fits Kafka's default message size


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300) | st.builds(lambda d: json.dumps(d).encode(), json_values))
def test_arbitrary_bytes_never_raise(value: bytes) -> None:
    outcome = decode_event(b"c1", value)
    assert isinstance(outcome, CustomerEvent | Rejected)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "event_id": st.text(max_size=200) | st.integers(),
            "customer_id": st.just("c1") | st.text(max_size=5),
            "type": st.sampled_from(["purchase", "refund", "session", "PURCHASE", ""]),
            "occurred_at": st.sampled_from(
                ["2024-03-01T12:00:00Z", "2024-03-01T12:00:00", "yesterday", "2024-13-01T00:00:00Z"]
            )
            | st.integers(),
            "amount": st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=4),
            "currency": st.text(max_size=4),
        },
    )
)
def test_near_valid_json_is_an_event_or_a_reason(body: dict[str, object]) -> None:
    outcome = decode_event(b"c1", json.dumps(body).encode())
    if isinstance(outcome, CustomerEvent):
        assert outcome.customer_id == "c1"
        assert outcome.occurred_at.tzinfo is not None
    else:
        assert outcome.error_type in {"invalid_json", "invalid_event", "key_mismatch"}
        assert outcome.error


def test_feedback_decodes_or_says_why_not() -> None:
    good = {"customer_id": "c1", "proposed_segment_id": 2, "given_by": "crm-team",
            "given_at": "2025-02-01T09:00:00Z", "note": "bought a lot offline"}  # fmt: skip
    decoded = decode_feedback(b"c1", json.dumps(good).encode())
    assert not isinstance(decoded, Rejected) and decoded.proposed_segment_id == 2
    cases = [
        (b"c1", b"{not json", "invalid_json"),
        (b"c1", json.dumps({**good, "proposed_segment_id": -1}).encode(), "invalid_feedback"),
        (b"c1", json.dumps({**good, "given_at": "2025-02-01"}).encode(), "invalid_feedback"),
        (b"other", json.dumps(good).encode(), "key_mismatch"),
        (None, json.dumps(good).encode(), "missing_key"),
        (b"c1", None, "empty"),
    ]
    for key, value, kind in cases:
        rejected = decode_feedback(key, value)
        assert isinstance(rejected, Rejected) and rejected.error_type == kind, (value, rejected)
