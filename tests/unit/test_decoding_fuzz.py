"""Hostile input through the decode edge: 10,000 cases, nothing escapes, nothing is lost.

Every message ends as a valid event or as a dead letter with a reason, and the
dead letter itself is a valid record that fits in a Kafka message.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.dead_letter import DeadLetter
from schemas.events import CustomerEvent
from streams.decoding import Rejected, dead_letter, decode_event

pytestmark = pytest.mark.reliability

KAFKA_MAX_MESSAGE = 1024 * 1024
REASONS = {"empty", "too_large", "invalid_json", "invalid_event", "missing_key", "key_mismatch"}
VALID = {
    "event_id": "e1", "customer_id": "c1", "type": "purchase",
    "occurred_at": "2024-03-01T12:00:00Z", "amount": 10.0,
}  # fmt: skip


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _replace(field: str, value: object) -> bytes:
    return json.dumps({**VALID, field: value}).encode()


wrong_types = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40) | st.lists(st.integers(), max_size=3)
)  # fmt: skip
near_valid = st.one_of(
    st.builds(_replace, st.sampled_from(list(VALID)), wrong_types),
    st.builds(lambda t: _replace("occurred_at", t), st.sampled_from([
        "2024-03-01T12:00:00", "2024-03-01", "01/03/2024 12:00", "2024-03-01T12:00:00+25:00",
        "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "", "now",
    ])),
    st.builds(lambda t: _replace("type", t), st.text(max_size=20)),
    st.builds(lambda a: _replace("amount", a), st.floats(max_value=-1e-9) | st.floats(1e9)),
    st.builds(lambda n: _replace("event_id", "x" * n), st.integers(0, 200_000)),
    st.builds(lambda n: _replace("customer_id", "c" * n), st.integers(0, 2_000)),
    st.builds(lambda n: json.dumps({**VALID, "padding": "p" * n}).encode(),
              st.sampled_from([60_000, 70_000, 1_048_576])),
    st.builds(lambda s: json.dumps(VALID).encode().replace(b"10.0", s),
              st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b'"10"', b"null"])),
    st.builds(nested, st.integers(1, 5_000)),
    st.builds(lambda n: b"[" * n, st.integers(1, 100_000)),
)  # fmt: skip
raw = st.binary(max_size=2_000) | st.builds(lambda n: b"\xff" * n, st.integers(0, 1_100_000))
keys = st.none() | st.just(b"c1") | st.binary(max_size=3_000)


@settings(
    max_examples=10_000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(key=keys, value=st.none() | raw | near_valid)
def test_every_message_is_an_event_or_a_dead_letter_with_a_reason(
    key: bytes | None, value: bytes | None
) -> None:
    outcome = decode_event(key, value)
    if isinstance(outcome, CustomerEvent):
        assert key == outcome.customer_id.encode()
        assert outcome.occurred_at.tzinfo is not None
        assert outcome.amount is None or outcome.amount == outcome.amount  # not NaN
        return
    assert isinstance(outcome, Rejected)
    assert outcome.error_type in REASONS
    assert outcome.error and "\n" not in outcome.error
    letter = dead_letter(outcome, key, value, "events", 0, 42)
    encoded = letter.model_dump_json().encode()
    assert len(encoded) < KAFKA_MAX_MESSAGE
    assert DeadLetter.model_validate_json(encoded).error_type == outcome.error_type
