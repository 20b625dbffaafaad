"""Per-customer streaming state that reproduces the batch RFM features exactly.

The state keeps the last purchase time, one (purchases, net micro-units) pair
per UTC day inside the window, and the ids of in-window events for
de-duplication. Out-of-window days are pruned, so the state is bounded by the
window length, not by the number of events.

Why de-duplication only needs in-window ids: an event outside the window can
change nothing but the last purchase time (and the first), and taking a
maximum (or minimum) twice is harmless; so forgetting ids together with their
day loses no exactness.

For the predictive traits the state also keeps the customer's whole purchase
history in summary (`Lifetime`): the first purchase day, and the repeat
purchase days (and their purchase amounts) that have left the window. A day
is counted there when it leaves the window, not when its event arrives: while
it is inside, its events are de-duplicated by id like the RFM features', and
once it is outside no event can reach it again (an event already older than
the window moves the first and last purchase, never a count). Refunds are
kept per in-window day (only days that have one), so a day's purchase amount
is known when it retires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

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


class Lifetime(NamedTuple):
    """A customer's whole purchase history as BG/NBD and Gamma-Gamma take it, at a time T.

    Days are UTC purchase days: several purchases on one day are one purchase
    of their summed amount (`schemas.traits.PurchaseModel.purchase_days`). A
    tuple, so that an evaluation's rows go into one array as they are: every
    scored customer of a predictive model makes one.
    """

    x: int
    """Repeat purchase days: days with a purchase after the first such day, up to T."""
    t_x: int
    """Days from the first purchase day to the last."""
    T: int
    """Days from the first purchase day to T's."""
    repeat_micros: int
    """Purchase amounts of the repeat days, micro-units (their mean is Gamma-Gamma's m)."""
    first_day: int
    """The first purchase day (day number)."""

    @property
    def mean_value(self) -> float:
        """Mean purchase amount of a repeat day (0 without one)."""
        return self.repeat_micros / self.x / MICROS_PER_UNIT if self.x else 0.0


@dataclass
class CustomerState:
    """What the stream remembers about one customer."""

    window_days: int = DEFAULT_WINDOW_DAYS
    last_purchase: datetime | None = None
    days: dict[int, tuple[int, int]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # event id -> day number
    first_purchase_day: int | None = None
    retired_days: int = 0
    """Repeat purchase days that have left the window."""
    retired_micros: int = 0
    """Their purchase amounts, micro-units."""
    refunds: dict[int, int] = field(default_factory=dict)
    """In-window day -> refunded micro-units (days with a refund only)."""

    def apply(self, event: CustomerEvent, watermark: datetime) -> bool:
        """Fold one event in; False when it changed nothing (duplicate, session, too old)."""
        if event.type is EventType.SESSION or event.occurred_at > watermark:
            return False
        day = day_number(event.occurred_at)
        in_window = day >= first_window_day(watermark, self.window_days)
        if in_window and event.event_id in self.seen:
            return False
        changed = False
        if event.type is EventType.PURCHASE:
            if self.last_purchase is None or event.occurred_at > self.last_purchase:
                self.last_purchase = event.occurred_at
                changed = True
            if self.first_purchase_day is None or day < self.first_purchase_day:
                self.first_purchase_day = day
                changed = True
        if in_window:
            assert event.amount is not None  # noqa: S101 - the contract requires it
            micros = amount_to_micros(event.amount)
            count, net = self.days.get(day, (0, 0))
            if event.type is EventType.PURCHASE:
                self.days[day] = (count + 1, net + micros)
            else:
                self.days[day] = (count, net - micros)
                self.refunds[day] = self.refunds.get(day, 0) + micros
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
            for day, (count, net) in self.days.items():
                if day < start and count and day != self.first_purchase_day:
                    self.retired_days += 1
                    self.retired_micros += net + self.refunds.get(day, 0)
            self.days = {d: v for d, v in self.days.items() if d >= start}
            self.seen = {e: d for e, d in self.seen.items() if d >= start}
            if self.refunds:
                self.refunds = {d: v for d, v in self.refunds.items() if d >= start}
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

    def lifetime(self, as_of: datetime) -> Lifetime | None:
        """The whole purchase history at `as_of` (None before a first purchase)."""
        scored = self.scored(as_of)
        return None if scored is None else scored[1]

    def scored(self, as_of: datetime) -> tuple[tuple[float, int, float], Lifetime | None] | None:
        """`vector(as_of)` and `lifetime(as_of)` in one pass over the days (None before a
        first purchase): what an evaluation with traits reads of every customer."""
        last = self.last_purchase
        if last is None or last > as_of:
            return None
        start = first_window_day(as_of, self.window_days)
        end = day_number(as_of)
        first = self.first_purchase_day
        after = end if first is None else first  # no repeat days without a first one
        frequency = net = 0
        x, repeat, refunds = self.retired_days, self.retired_micros, self.refunds
        for day, (count, micros) in self.days.items():
            if day <= end:
                if day >= start:
                    frequency += count
                    net += micros
                if count and day > after:
                    x += 1
                    repeat += (micros + refunds.get(day, 0)) if refunds else micros
        vector = (recency_days(as_of, last), frequency, max(net, 0) / MICROS_PER_UNIT)
        if first is None:
            return vector, None
        return vector, Lifetime(x, day_number(last) - first, end - first, repeat, first)

    def features(self, as_of: datetime) -> RfmFeatures | None:
        """RFM at `as_of` (not before any event applied), or None before a first purchase."""
        vector = self.vector(as_of)
        if vector is None:
            return None
        recency, frequency, monetary = vector
        return RfmFeatures(recency_days=recency, frequency=frequency, monetary=monetary)
