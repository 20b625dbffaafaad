"""What the trainer asks of an event history, whatever holds it.

An `EventHistory` is validated events plus what was rejected reading them. It
answers three questions: its time span, the per-customer table at a horizon
(`offline.customer_table`), and the events of a few given customers (for the
sensitivity check). Implementations: `offline.events_io.EventLog` (in memory:
small files, tests), `offline.partitioned_log.PartitionedLog` (files or the
events topic split by customer on local disk, out of core) and
`offline.spark_history.SparkHistory` (Spark, local or a cluster).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import polars as pl

from offline.customer_table import CustomerTable, Horizon
from offline.event_validation import Rejections


@dataclass(frozen=True)
class Span:
    """First and last event time, and how many valid events there are."""

    earliest: datetime
    latest: datetime
    events: int


class EventHistory(Protocol):
    """Validated events the trainer reads through three questions."""

    rejections: Rejections
    sources: list[str]

    def span(self) -> Span:
        """Time span and size of the valid events."""
        ...

    def customers(self, horizon: Horizon) -> CustomerTable:
        """One row per customer with any purchase or refund, sorted by customer id."""
        ...

    def events_of(self, customer_ids: pl.Series) -> pl.DataFrame:
        """The valid events of these customers, canonical columns, in input order."""
        ...
