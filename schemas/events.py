"""The input contract: one behavioural event of one customer."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field, model_validator

from schemas._base import ID_MAX_LENGTH, Contract, Identifier, UtcDatetime

CUSTOMER_EVENT_SCHEMA_VERSION: Final = 1


class EventType(StrEnum):
    """What happened: only purchases and refunds carry money."""

    PURCHASE = "purchase"
    REFUND = "refund"
    SESSION = "session"


MONETARY_TYPES = frozenset({EventType.PURCHASE, EventType.REFUND})

CHANNEL_MAX_LENGTH: Final = 64
CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"

RULES: Final[dict[str, str]] = {
    "event_id_missing": "event_id is missing or empty",
    "event_id_too_long": f"event_id longer than {ID_MAX_LENGTH} characters",
    "customer_id_missing": "customer_id is missing or empty",
    "customer_id_too_long": f"customer_id longer than {ID_MAX_LENGTH} characters",
    "type_unknown": "type is not " + ", ".join(t.value for t in EventType).replace(", s", " or s"),
    "occurred_at_missing": "occurred_at is missing",
    "occurred_at_naive": "occurred_at has no timezone",
    "occurred_at_not_iso": "occurred_at is not an ISO-8601 timestamp",
    "amount_required": "amount is required",
    "amount_not_positive": "amount is not a positive finite number",
    "session_with_amount": "a session event carries no amount",
    "currency_not_code": "currency is not a 3-letter code",
    "channel_too_long": f"channel longer than {CHANNEL_MAX_LENGTH} characters",
}
"""Every rule of the contract, by name, with the message a rejected row gets.

`CustomerEvent` enforces them one message at a time; the trainer's
column-wise validation (`offline.event_validation`) applies the same rules to
whole files and reports these messages; a test holds the two to one table.

>>> RULES["type_unknown"]
'type is not purchase, refund or session'
"""


class CustomerEvent(Contract):
    """Value on topic ``customer-events``; the Kafka key is ``customer_id`` (UTF-8).

    Unknown fields are ignored so producers can add fields before consumers
    know them.

    Examples
    --------
    >>> e = CustomerEvent.model_validate_json(
    ...     '{"event_id": "e1", "customer_id": "c1", "type": "purchase",'
    ...     ' "occurred_at": "2024-03-01T12:00:00+01:00", "amount": 19.5}')
    >>> e.occurred_at.isoformat(), e.amount
    ('2024-03-01T11:00:00+00:00', 19.5)
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = CUSTOMER_EVENT_SCHEMA_VERSION
    event_id: Identifier
    customer_id: Identifier
    type: EventType
    occurred_at: UtcDatetime
    amount: Annotated[float | None, Field(gt=0.0, allow_inf_nan=False, strict=True)] = None
    currency: Annotated[str | None, Field(pattern=CURRENCY_PATTERN, strict=True)] = None
    channel: Annotated[str | None, Field(max_length=CHANNEL_MAX_LENGTH, strict=True)] = None

    @model_validator(mode="after")
    def _amount_matches_type(self) -> CustomerEvent:
        if self.type in MONETARY_TYPES and self.amount is None:
            raise ValueError(f"{RULES['amount_required']} for a {self.type.value} event")
        if self.type is EventType.SESSION and self.amount is not None:
            raise ValueError(RULES["session_with_amount"])
        return self
