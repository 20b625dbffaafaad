"""Batch RFM features over an event frame (see `scoring.rfm` for the contract)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from offline.customer_table import Horizon, customer_table, features_from
from scoring.rfm import DEFAULT_WINDOW_DAYS

__all__ = ["rfm_features"]


def rfm_features(
    events: pl.DataFrame | pl.LazyFrame, as_of: datetime, window_days: int = DEFAULT_WINDOW_DAYS
) -> pl.DataFrame:
    """One row per customer with a purchase at or before `as_of`.

    Columns: ``customer_id``, ``recency_days``, ``frequency``, ``monetary``,
    ``last_purchase``; sorted by customer_id so results are deterministic.
    """
    table = customer_table([events.lazy()], Horizon(as_of, window_days))
    return features_from(table.rows, as_of)
