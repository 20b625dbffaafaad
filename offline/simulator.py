"""The customer simulator: synthetic histories and a paced live stream of them.

`generate` draws customers from the personas of `offline.synthetic` over a
history and a live period; `event_bodies` turns a frame into `CustomerEvent`
JSON bodies; `LiveStream` paces bodies onto a topic through any client with a
kafka-python-like ``send`` (the edge stays with the caller).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import polars as pl

from offline.synthetic import MALFORMED_KINDS, BehaviourShift, malformed, synthetic_events

DEFAULT_END = "2025-01-01T00:00:00Z"


class Sender(Protocol):
    """What `LiveStream` needs of a producer."""

    def send(self, topic: str, key: bytes | None = ..., value: bytes | None = ...) -> Any:
        """Queue one record."""


def generate(
    customers: int, days: int, end: datetime, live_days: float, seed: int, seasonality: float,
    shift: BehaviourShift | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:  # fmt: skip
    """(events sorted by time over history and live period, truth)."""
    total_days = days + max(1, int(live_days + 0.999))
    events, truth = synthetic_events(
        customers,
        end=end + timedelta(days=total_days - days),
        days=total_days,
        seed=seed,
        seasonality=seasonality,
        shift=shift,
    )
    return events.sort("occurred_at", maintain_order=True), truth


def event_bodies(frame: pl.DataFrame) -> Iterator[dict[str, Any]]:
    """Event dicts (CustomerEvent JSON) of a frame in the canonical columns."""
    for event_id, customer_id, kind, occurred_at, amount in frame.select(
        "event_id", "customer_id", "type", "occurred_at", "amount"
    ).iter_rows():
        body: dict[str, Any] = {
            "event_id": event_id,
            "customer_id": customer_id,
            "type": kind,
            "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if amount is not None:
            body["amount"] = amount
        yield body


@dataclass
class LiveStream:
    """Paces live events onto the events topic; call `pump` as often as you like."""

    producer: Sender
    topic: str
    bodies: Iterator[dict[str, Any]]
    start: datetime
    speedup: float
    rate: float
    malformed_rate: float = 0.0
    seed: int = 0
    sent: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    clock: datetime | None = None
    finished: bool = False
    _wall0: float = field(default_factory=time.monotonic)
    _pending: dict[str, Any] | None = None
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - simulation, not security

    def event_time(self) -> datetime:
        """Where simulated time stands now."""
        return self.start + timedelta(seconds=(time.monotonic() - self._wall0) * self.speedup)

    def pump(self) -> int:
        """Send every event that is due (and allowed by the rate); return how many."""
        now = self.event_time()
        budget = int(self.rate * (time.monotonic() - self._wall0)) - self.sent
        sent = 0
        while sent < budget:
            body = self._pending or next(self.bodies, None)
            self._pending = None
            if body is None:
                self.finished = True
                break
            at = datetime.fromisoformat(body["occurred_at"])
            if at > now:
                self._pending = body
                break
            if self.malformed_rate and self._rng.random() < self.malformed_rate:
                kind = MALFORMED_KINDS[self.malformed.total() % len(MALFORMED_KINDS)]
                key, value = malformed(body, kind)
                self.malformed[kind] += 1
            else:
                key, value = str(body["customer_id"]).encode(), json.dumps(body).encode()
            self.producer.send(self.topic, key=key, value=value)
            self.clock = at
            sent += 1
        self.sent += sent
        return sent
