"""Generated event histories for the feature-engine tests (polars partitions, Spark parity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import strategies as st

from offline.event_validation import EVENT_SCHEMA

START = datetime(2023, 1, 1, tzinfo=UTC)
KINDS = ("purchase", "refund", "session")


@st.composite
def event_logs(draw: st.DrawFn, max_events: int = 60) -> pl.DataFrame:
    """A canonical event frame: a few customers, reused event ids (duplicates whose
    content differs too), refunds, sessions, times on either side of UTC midnight and
    amounts whose micro-unit rounding is a half."""
    n = draw(st.integers(1, max_events))
    rows = []
    for _ in range(n):
        kind = draw(st.sampled_from(KINDS))
        minutes = draw(st.integers(0, 60 * 24 * 420))
        micros = draw(st.integers(0, 999_999))
        amount = None
        if kind != "session":
            amount = draw(
                st.sampled_from([0.0000005, 0.1 + 0.2, 19.99, 1e6 + 0.5e-6])
                | st.floats(0.01, 5_000.0, allow_nan=False)
            )
        rows.append(
            {
                "event_id": f"e{draw(st.integers(0, max(3, n // 2)))}",
                "customer_id": f"c{draw(st.integers(0, 5))}",
                "type": kind,
                "occurred_at": START + timedelta(minutes=minutes, microseconds=micros),
                "amount": amount,
                "channel": draw(st.sampled_from([None, "web", "store"])),
            }
        )
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    """Canonical events as a CSV of the contract's text columns (ISO-8601 times with Z)."""
    frame.with_columns(
        pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
        pl.col("amount").cast(pl.String),
    ).write_csv(path)
