"""The RFM feature contract, in the units both the batch and the stream paths use.

As of T with a window of W days, for a customer with at least one purchase at
or before T:

- ``recency_days`` = (T - time of the last purchase at or before T) in days;
- ``frequency`` = purchases whose UTC calendar date lies in [date(T)-W+1, date(T)];
- ``monetary`` = purchase amounts minus refund amounts over the same dates,
  floored at 0.

Amounts are summed in integer micro-units (1e-6 of the currency), so the result
is exact and does not depend on the order in which events arrive.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

MICROS_PER_UNIT = 1_000_000
"""Micro-units of money per unit of the currency (amounts are summed as integers)."""
MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
DEFAULT_WINDOW_DAYS = 365
EPOCH = date(1970, 1, 1)
_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


def amount_to_micros(amount: float) -> int:
    """An amount in integer micro-units, rounding half up (the same rule as the batch path)."""
    return math.floor(amount * MICROS_PER_UNIT + 0.5)


def day_number(moment: datetime) -> int:
    """Days since 1970-01-01 of the UTC calendar date of `moment`.

    (The whole days of the timedelta since the epoch's start, floored: the same
    number as ``(moment.astimezone(UTC).date() - EPOCH).days`` in half the time.)
    """
    return (moment - _EPOCH_START).days


def first_window_day(as_of: datetime, window_days: int) -> int:
    """The first day number inside the window ending on date(as_of)."""
    return day_number(as_of) - window_days + 1


def recency_days(as_of: datetime, last_purchase: datetime) -> float:
    """Days from the last purchase to `as_of`, from exact microseconds."""
    delta = as_of - last_purchase
    return (delta // timedelta(microseconds=1)) / MICROS_PER_DAY
