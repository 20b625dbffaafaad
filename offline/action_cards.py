"""What each segment is and what to do with it: data-derived action cards.

Every line of a card comes from the data: size and revenue (with the Pareto
line: the fewest segments that hold 80% of revenue), medians, order value,
refund rate, channel mix, boundary share and holdout churn, and three
sentences: what they value (the feature where the segment's centroid stands
out most), how they interact (the dominant channel), and which lever fits,
from the small rule table `LEVERS` over the centroid's standardised
coordinates. No demographics are invented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from numpy.typing import NDArray

from offline.customer_table import CustomerTable

IntArray = NDArray[np.int64]

PARETO_SHARE = 0.8
HIGH = 0.5
"""A standardised coordinate above this (below its negative) is "high" ("low")."""

LEVERS: tuple[tuple[str, str], ...] = (
    ("recent, frequent", "loyalty and upsell: reward them and offer the next tier"),
    ("high spend, lapsing", "win-back: a personal offer before they are lost"),
    ("recent, infrequent", "onboarding: earn the second purchase"),
    ("lapsed, low spend", "low-cost reactivation, or let them go"),
    ("otherwise", "nurture: regular, relevant contact"),
)
"""The rule table, first match wins (recency is days since the last purchase, so a
high recency coordinate means lapsing)."""


def lever(z: Mapping[str, float]) -> str:
    """The lever the rule table gives a centroid's standardised coordinates.

    >>> lever({"recency_days": -1.0, "frequency": 1.2, "monetary": 0.3})
    'loyalty and upsell: reward them and offer the next tier'
    >>> lever({"recency_days": 1.0, "frequency": 0.1, "monetary": 0.9})
    'win-back: a personal offer before they are lost'
    """
    r, f, m = z["recency_days"], z["frequency"], z["monetary"]
    rules = (r < -HIGH and f > HIGH, m > HIGH and r > HIGH, r < -HIGH and f < HIGH,
             r > HIGH and m < -HIGH, True)  # fmt: skip
    return next(text for (_, text), hit in zip(LEVERS, rules, strict=True) if hit)


_PHRASES = {
    ("recency_days", -1): ("bought the most recently", "bought more recently than most"),
    ("recency_days", 1): ("have gone the longest without buying", "have not bought for a while"),
    ("frequency", 1): ("buy the most often", "buy more often than most"),
    ("frequency", -1): ("buy the least often", "buy less often than most"),
    ("monetary", 1): ("spend the most", "spend more than most"),
    ("monetary", -1): ("spend the least", "spend less than most"),
}
"""(superlative, comparative) per (feature, direction): the superlative only for the
segment that is the most extreme of all segments in that direction."""


def values(z: Mapping[str, float], peers: Sequence[Mapping[str, float]] = ()) -> str:
    """Where the segment stands out most, in words, never contradicting its `peers`.

    >>> champions = {"recency_days": -0.9, "frequency": 1.4, "monetary": 1.6}
    >>> loyal = {"recency_days": -0.5, "frequency": 0.6, "monetary": 0.8}
    >>> values(loyal, [champions, loyal])
    'spend more than most (the monetary coordinate is +0.80 sd)'
    >>> values(champions, [champions, loyal])
    'spend the most (the monetary coordinate is +1.60 sd)'
    """
    feature = max(z, key=lambda n: abs(z[n]))
    sign = 1 if z[feature] >= 0 else -1
    most = all(sign * z[feature] >= sign * peer[feature] for peer in peers)
    superlative, comparative = _PHRASES[(feature, sign)]
    phrase = superlative if most else comparative
    return f"{phrase} (the {feature} coordinate is {z[feature]:+.2f} sd)"


def interacts(mix: Mapping[str, float]) -> str:
    """The dominant channel, in words."""
    if not mix:
        return "no channel recorded on their purchases"
    channel = max(mix, key=lambda c: mix[c])
    return f"mostly through {channel} ({mix[channel]:.0%} of purchases)"


def pareto(revenue_share: Mapping[int, float]) -> set[int]:
    """The fewest segments (largest revenue first) that together hold 80% of revenue.

    >>> sorted(pareto({0: 0.7, 1: 0.2, 2: 0.1}))
    [0, 1]
    """
    held, chosen = 0.0, set()
    for segment, share in sorted(revenue_share.items(), key=lambda kv: -kv[1]):
        if held >= PARETO_SHARE:
            break
        chosen.add(segment)
        held += share
    return chosen


def behaviour(
    table: CustomerTable, segment_ids: IntArray
) -> tuple[dict[int, float], dict[int, dict[str, float]]]:
    """(refund rate, channel mix of purchases) per segment id.

    `segment_ids` line up with the table's features at T (`CustomerTable.aligned`).
    """
    counts = (
        pl.DataFrame(
            {
                "segment": segment_ids,
                "purchases": table.aligned("purchases"),
                "refunds": table.aligned("refunds"),
            }
        )
        .group_by("segment")
        .agg(pl.col("purchases").sum(), pl.col("refunds").sum())
    )
    refund_rate = {
        int(row["segment"]): float(row["refunds"]) / max(1, int(row["purchases"]))
        for row in counts.iter_rows(named=True)
    }
    mix: dict[int, dict[str, float]] = {int(s): {} for s in np.unique(segment_ids)}
    if table.channels.height == 0:
        return refund_rate, mix
    members = pl.DataFrame(
        {"customer_id": table.aligned("customer_id"), "segment": segment_ids},
        schema={"customer_id": pl.String, "segment": pl.Int64},
    )
    by = (
        table.channels.join(members, on="customer_id", how="inner")
        .group_by("segment", "channel")
        .agg(pl.col("purchases").sum().alias("len"))
    )
    totals = by.group_by("segment").agg(pl.col("len").sum().alias("total"))
    for row in by.join(totals, on="segment").iter_rows(named=True):
        mix[int(row["segment"])][str(row["channel"])] = row["len"] / row["total"]
    return refund_rate, mix


def migration(before: Sequence[int], after: Sequence[int]) -> dict[str, dict[str, int]]:
    """Customers by (segment under the previous model, segment under the new one).

    >>> migration([1, 1, 2], [1, 3, 3])
    {'1': {'1': 1, '3': 1}, '2': {'3': 1}}
    """
    table: dict[str, dict[str, int]] = {}
    for old, new in zip(before, after, strict=True):
        row = table.setdefault(str(old), {})
        row[str(new)] = row.get(str(new), 0) + 1
    return table
