"""Per-customer streaming state that reproduces the batch RFM features exactly.

The state keeps the last purchase time, one (purchases, net micro-units) pair
per UTC day inside the window, and the ids of in-window events for
de-duplication. Out-of-window days are pruned, so the state is bounded by the
window length, not by the number of events.

Why de-duplication only needs in-window ids: an event outside the window can
change nothing but the last purchase time, and taking a maximum twice is
harmless; so forgetting ids together with their day loses no exactness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from schemas.events import CustomerEvent, EventType
from schemas.segments import RfmFeatures
from scoring.rfm import (
    DEFAULT_WINDOW_DAYS,
    MICROS_PER_UNIT,
    amount_to_micros,
    day_number,
    first_window_day,
    recency_days,
)

MAX_IDS_PER_CUSTOMER = 50_000
"""Hard cap on remembered event ids per customer (oldest forgotten first)."""


@dataclass
class CustomerState:
    """What the stream remembers about one customer."""

    window_days: int = DEFAULT_WINDOW_DAYS
    last_purchase: datetime | None = None
    days: dict[int, tuple[int, int]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # event id -> day number

    def apply(self, event: CustomerEvent, watermark: datetime) -> bool:
        """Fold one event in; False when it changed nothing (duplicate, session, too old)."""
        if event.type is EventType.SESSION or event.occurred_at > watermark:
            return False
        day = day_number(event.occurred_at)
        in_window = day >= first_window_day(watermark, self.window_days)
        if in_window and event.event_id in self.seen:
            return False
        changed = False
        if event.type is EventType.PURCHASE and (
            self.last_purchase is None or event.occurred_at > self.last_purchase
        ):
            self.last_purchase = event.occurred_at
            changed = True
        if in_window:
            assert event.amount is not None  # noqa: S101 - the contract requires it
            micros = amount_to_micros(event.amount)
            count, net = self.days.get(day, (0, 0))
            if event.type is EventType.PURCHASE:
                self.days[day] = (count + 1, net + micros)
            else:
                self.days[day] = (count, net - micros)
            self.seen[event.event_id] = day
            if len(self.seen) > MAX_IDS_PER_CUSTOMER:
                self.seen.pop(next(iter(self.seen)))
            changed = True
        self.prune(watermark)
        return changed

    def prune(self, watermark: datetime) -> bool:
        """Forget days (and their event ids) that left the window; True if any did."""
        start = first_window_day(watermark, self.window_days)
        if any(d < start for d in self.days):
            self.days = {d: v for d, v in self.days.items() if d >= start}
            self.seen = {e: d for e, d in self.seen.items() if d >= start}
            return True
        return False

    def next_expiry(self) -> int | None:
        """Day number on which the oldest in-window day leaves the window (None if empty)."""
        return min(self.days) + self.window_days if self.days else None

    def vector(self, as_of: datetime) -> tuple[float, int, float] | None:
        """(recency_days, frequency, monetary) at `as_of`, or None before a first purchase."""
        if self.last_purchase is None or self.last_purchase > as_of:
            return None
        start = first_window_day(as_of, self.window_days)
        end = day_number(as_of)
        frequency = 0
        net = 0
        for day, (count, micros) in self.days.items():
            if start <= day <= end:
                frequency += count
                net += micros
        return (recency_days(as_of, self.last_purchase), frequency, max(net, 0) / MICROS_PER_UNIT)

    def features(self, as_of: datetime) -> RfmFeatures | None:
        """RFM at `as_of` (not before any event applied), or None before a first purchase."""
        vector = self.vector(as_of)
        if vector is None:
            return None
        recency, frequency, monetary = vector
        return RfmFeatures(recency_days=recency, frequency=frequency, monetary=monetary)
