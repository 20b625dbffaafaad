"""Batch RFM features over an event frame (see `scoring.rfm` for the contract)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from scoring.rfm import DEFAULT_WINDOW_DAYS, MICROS, MICROS_PER_DAY

FEATURE_COLUMNS = ("recency_days", "frequency", "monetary")


def rfm_features(
    events: pl.DataFrame, as_of: datetime, window_days: int = DEFAULT_WINDOW_DAYS
) -> pl.DataFrame:
    """One row per customer with a purchase at or before `as_of`.

    Columns: ``customer_id``, ``recency_days``, ``frequency``, ``monetary``,
    ``last_purchase``; sorted by customer_id so results are deterministic.
    """
    window_start = as_of.date() - timedelta(days=window_days - 1)
    cents = (pl.col("amount") * MICROS + 0.5).floor().cast(pl.Int64)
    signed = pl.when(pl.col("type") == "refund").then(-cents).otherwise(cents)
    is_purchase = pl.col("type") == "purchase"
    in_window = pl.col("occurred_at").dt.date() >= window_start
    per_customer = (
        events.lazy()
        .filter((pl.col("occurred_at") <= as_of) & (pl.col("type") != "session"))
        # First occurrence of each (customer, event id) in input order; far leaner
        # than DataFrame.unique on tens of millions of string pairs.
        .filter(pl.struct("customer_id", "event_id").is_first_distinct())
        .group_by("customer_id")
        .agg(
            pl.col("occurred_at").filter(is_purchase).max().alias("last_purchase"),
            (is_purchase & in_window).sum().cast(pl.Int64).alias("frequency"),
            signed.filter(in_window).sum().alias("net_micros"),
        )
        .filter(pl.col("last_purchase").is_not_null())
        .select(
            "customer_id",
            (
                (pl.lit(as_of) - pl.col("last_purchase")).dt.total_microseconds() / MICROS_PER_DAY
            ).alias("recency_days"),
            "frequency",
            (pl.max_horizontal(pl.col("net_micros").fill_null(0), pl.lit(0)) / MICROS).alias(
                "monetary"
            ),
            "last_purchase",
        )
        .sort("customer_id")
    )
    return per_customer.collect()
