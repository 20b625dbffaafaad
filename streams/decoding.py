"""The decode edge: raw Kafka bytes to a `CustomerEvent`, or the reason they are not one.

Pure (no Faust, no Kafka client), so the fuzz tests can hammer it directly.
Every input ends as exactly one of the two outcomes; nothing raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import ValidationError

from schemas.dead_letter import DeadLetter
from schemas.events import CustomerEvent
from schemas.feedback import SegmentFeedback

MAX_EVENT_BYTES = 64 * 1024
"""Events (and feedback) above this size are dead-lettered unparsed (a real one is ~200 bytes)."""
MAX_DEAD_LETTER_PAYLOAD = 256 * 1024
"""The payload kept in a dead letter; base64 must stay under Kafka's 1 MB default."""


@dataclass(frozen=True)
class Rejected:
    """Why a message is not an event: a short type and a one-line reason."""

    error_type: str
    error: str


Keyed = TypeVar("Keyed", CustomerEvent, SegmentFeedback)


def _decode(
    contract: type[Keyed], invalid: str, key: bytes | None, value: bytes | None
) -> Keyed | Rejected:
    if value is None:
        return Rejected("empty", "message has no value (a tombstone?)")
    if len(value) > MAX_EVENT_BYTES:
        return Rejected("too_large", f"value is {len(value)} bytes, above {MAX_EVENT_BYTES}")
    try:
        message = contract.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "value"
        kind = "invalid_json" if first["type"] == "json_invalid" else invalid
        text = f"{exc.error_count()} errors, first at {where}: {first['msg']}"
        return Rejected(kind, text[:500])
    except (ValueError, RecursionError) as exc:  # defensive: pydantic wraps almost all
        return Rejected("invalid_json", f"{type(exc).__name__}: {exc}"[:500])
    if key is None:
        return Rejected("missing_key", "message has no key; the key must be the customer_id")
    if key != message.customer_id.encode():
        return Rejected(
            "key_mismatch",
            f"key {key[:64]!r} differs from customer_id {message.customer_id[:64]!r}",
        )
    return message


def decode_event(key: bytes | None, value: bytes | None) -> CustomerEvent | Rejected:
    """Validate one message of the events topic (key = customer id in UTF-8)."""
    return _decode(CustomerEvent, "invalid_event", key, value)


def decode_feedback(key: bytes | None, value: bytes | None) -> SegmentFeedback | Rejected:
    """Validate one message of the feedback topic (key = customer id in UTF-8)."""
    return _decode(SegmentFeedback, "invalid_feedback", key, value)


def dead_letter(
    rejected: Rejected,
    key: bytes | None,
    value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    received_at: datetime | None = None,
) -> DeadLetter:
    """The dead-letter record for a rejected message, payload kept (truncated when huge)."""
    payload = value or b""
    error = rejected.error
    if len(payload) > MAX_DEAD_LETTER_PAYLOAD:
        error = f"{error} (payload truncated to {MAX_DEAD_LETTER_PAYLOAD} of {len(payload)} bytes)"
        payload = payload[:MAX_DEAD_LETTER_PAYLOAD]
    return DeadLetter(
        payload=payload,
        key=None if key is None else key[:1024],
        error=error,
        error_type=rejected.error_type,
        topic=topic,
        partition=partition,
        offset=offset,
        received_at=received_at or datetime.now(UTC),
    )
