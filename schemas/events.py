"""The input contract: one behavioural event of one customer."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field, model_validator

from schemas._base import Contract, Identifier, UtcDatetime

CUSTOMER_EVENT_SCHEMA_VERSION: Final = 1


class EventType(StrEnum):
    """What happened: only purchases and refunds carry money."""

    PURCHASE = "purchase"
    REFUND = "refund"
    SESSION = "session"


MONETARY_TYPES = frozenset({EventType.PURCHASE, EventType.REFUND})


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
    currency: Annotated[str | None, Field(pattern=r"^[A-Z]{3}$", strict=True)] = None
    channel: Annotated[str | None, Field(max_length=64, strict=True)] = None

    @model_validator(mode="after")
    def _amount_matches_type(self) -> CustomerEvent:
        if self.type in MONETARY_TYPES and self.amount is None:
            raise ValueError(f"amount is required for a {self.type.value} event")
        if self.type is EventType.SESSION and self.amount is not None:
            raise ValueError("a session event carries no amount")
        return self
