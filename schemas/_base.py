"""Shared configuration of every message contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


class Contract(BaseModel):
    """Base of all published contracts: frozen, strict about unknown fields.

    Messages we *produce* forbid unknown fields so that a typo in our own code
    fails loudly; `CustomerEvent`, which we *consume*, relaxes this.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )


def _require_iso_string(value: Any) -> Any:
    # pydantic would read a bare number as a Unix timestamp; the contract says ISO-8601.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("timestamp must be an ISO-8601 string with a timezone, not a number")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[
    AwareDatetime, BeforeValidator(_require_iso_string), AfterValidator(_to_utc)
]
"""An ISO-8601 timestamp that must carry a timezone; normalised to UTC."""

Identifier = Annotated[str, Field(min_length=1, max_length=128, strict=True)]
"""A non-empty identifier of at most 128 characters."""

NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
