"""A small synthetic history and the model trained on it, cached for the session."""

from __future__ import annotations

from functools import cache

from offline.event_validation import Rejections
from offline.events_io import EventLog
from offline.synthetic import synthetic_events
from offline.trainer import TrainConfig, TrainResult, train

FAST = TrainConfig(bootstrap_resamples=5, n_init=2)


@cache
def log(customers: int = 3000, seed: int = 1) -> EventLog:
    """Synthetic events of `customers` customers, as a validated log."""
    events, _ = synthetic_events(customers, seed=seed)
    return EventLog(events, Rejections(total_rows=events.height), ["synthetic"])


@cache
def trained() -> TrainResult:
    """`train` on `log()` with `FAST` settings."""
    return train(log(), FAST)
