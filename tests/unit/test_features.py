"""The feature contract on hand-computed cases."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from offline.event_validation import EVENT_SCHEMA
from offline.features import rfm_features

T = datetime(2024, 6, 30, 18, 0, tzinfo=UTC)


def frame(rows: list[tuple[str, str, str, str, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "event_id": e,
                "customer_id": c,
                "type": t,
                "occurred_at": datetime.fromisoformat(ts),
                "amount": a,
            }
            for e, c, t, ts, a in rows
        ],
        schema=EVENT_SCHEMA,
    )


def one(
    rows: list[tuple[str, str, str, str, float | None]], window: int = 365, as_of: datetime = T
) -> dict[str, object]:
    out = rfm_features(frame(rows), as_of, window)
    assert out.height == 1
    return out.row(0, named=True)


def test_recency_frequency_monetary_basic() -> None:
    row = one(
        [
            ("e1", "a", "purchase", "2024-06-01T18:00:00+00:00", 10.0),
            ("e2", "a", "purchase", "2024-06-29T06:00:00+00:00", 5.5),
        ]
    )
    assert row["recency_days"] == pytest.approx(1.5)
    assert row["frequency"] == 2
    assert row["monetary"] == pytest.approx(15.5)


def test_refunds_reduce_monetary_not_frequency_and_floor_at_zero() -> None:
    row = one(
        [
            ("e1", "a", "purchase", "2024-06-01T00:00:00+00:00", 10.0),
            ("e2", "a", "refund", "2024-06-02T00:00:00+00:00", 4.0),
        ]
    )
    assert (row["frequency"], row["monetary"]) == (1, pytest.approx(6.0))
    row = one(
        [
            ("e1", "a", "purchase", "2024-06-01T00:00:00+00:00", 10.0),
            ("e2", "a", "refund", "2024-06-02T00:00:00+00:00", 25.0),
        ]
    )
    assert row["monetary"] == 0.0


def test_refund_does_not_change_recency() -> None:
    row = one(
        [
            ("e1", "a", "purchase", "2024-06-20T18:00:00+00:00", 10.0),
            ("e2", "a", "refund", "2024-06-30T00:00:00+00:00", 1.0),
        ]
    )
    assert row["recency_days"] == pytest.approx(10.0)


def test_window_edges_use_utc_calendar_dates() -> None:
    # window 10 days as of 2024-06-30 covers UTC dates 2024-06-21 .. 2024-06-30
    rows = [
        ("in-first-day", "a", "purchase", "2024-06-21T00:00:00+00:00", 1.0),
        ("out-day-before", "a", "purchase", "2024-06-20T23:59:59+00:00", 2.0),
        # 2024-06-21T01:00+02:00 is 2024-06-20T23:00Z: outside
        ("out-by-offset", "a", "purchase", "2024-06-21T01:00:00+02:00", 4.0),
    ]
    row = one(rows, window=10)
    assert (row["frequency"], row["monetary"]) == (1, pytest.approx(1.0))


def test_purchase_outside_window_still_sets_recency() -> None:
    row = one([("e1", "a", "purchase", "2022-01-01T18:00:00+00:00", 10.0)])
    assert row["frequency"] == 0
    assert row["monetary"] == 0.0
    assert row["recency_days"] == pytest.approx(911.0)


def test_events_after_as_of_are_ignored() -> None:
    row = one(
        [
            ("e1", "a", "purchase", "2024-06-30T18:00:00+00:00", 10.0),  # exactly T: counts
            ("e2", "a", "purchase", "2024-06-30T18:00:00.000001+00:00", 99.0),
            ("e3", "a", "refund", "2024-07-01T00:00:00+00:00", 10.0),
        ]
    )
    assert (row["recency_days"], row["frequency"], row["monetary"]) == (0.0, 1, 10.0)


def test_duplicate_event_ids_count_once() -> None:
    dup = ("e1", "a", "purchase", "2024-06-01T00:00:00+00:00", 10.0)
    row = one(
        [
            dup,
            dup,
            dup,
            ("e2", "a", "refund", "2024-06-02T00:00:00+00:00", 1.0),
            ("e2", "a", "refund", "2024-06-02T00:00:00+00:00", 1.0),
        ]
    )
    assert (row["frequency"], row["monetary"]) == (1, pytest.approx(9.0))


def test_ties_on_the_same_timestamp_all_count() -> None:
    row = one(
        [
            ("e1", "a", "purchase", "2024-06-01T12:00:00+00:00", 10.0),
            ("e2", "a", "purchase", "2024-06-01T12:00:00+00:00", 10.0),
        ]
    )
    assert row["frequency"] == 2
    assert row["recency_days"] == pytest.approx(29.25)


def test_sessions_and_refund_only_customers_are_not_customers_yet() -> None:
    out = rfm_features(
        frame(
            [
                ("s1", "a", "session", "2024-06-01T00:00:00+00:00", None),
                ("r1", "b", "refund", "2024-06-01T00:00:00+00:00", 3.0),
                ("p1", "c", "purchase", "2024-07-01T00:00:00+00:00", 3.0),  # after T
            ]
        ),
        T,
    )
    assert out.height == 0


def test_amounts_sum_exactly_in_any_order() -> None:
    amounts = [0.1, 0.2, 0.3, 1e6 + 0.01, 0.07]
    rows = [
        (f"e{i}", "a", "purchase", "2024-06-01T00:00:00+00:00", x) for i, x in enumerate(amounts)
    ]
    forward = one(rows)["monetary"]
    backward = one(list(reversed(rows)))["monetary"]
    assert forward == backward == pytest.approx(1000000.68)
